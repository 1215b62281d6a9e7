/* config.h: the daemon's configuration: a typed table of variables (type, range, default),
 * read from the environment, then filled in from a dotenv file (dotenv.h) for what the
 * environment does not set. Values keep the Python script's meaning and formats (JSON maps in
 * single quotes, durations like 30, 30s, 5m, 1h, 1d). */
#ifndef PSS_CONFIG_H
#define PSS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dotenv.h"

/* One prefix rewrite (PATH_REPLACEMENTS, RCLONE_PATH_REPLACEMENTS, LOCAL_PATH_REPLACEMENTS).
 * `from` is normalized (see path_normalize in util.h) and matched case-insensitively by whole component. */
typedef struct cfg_replacement {
    char *from;
    char *to;
} cfg_replacement;

typedef struct cfg_replacements {
    cfg_replacement *v; /* sorted longest `from` first */
    size_t n;
} cfg_replacements;

/* SECTION_MAPPING item: Plex path prefix -> section id. */
typedef struct cfg_section_map {
    char *prefix; /* normalized */
    long section;
} cfg_section_map;

/* RCLONE_MOUNTS item (or the one-mount shorthand). */
typedef struct cfg_mount {
    char *root; /* normalized absolute path of the mount point (path after RCLONE_PATH_REPLACEMENTS) */
    char *url;  /* rclone RC base URL without trailing '/' */
    char *fs;   /* NULL when not set */
    char *user; /* NULL when not set */
    char *pass; /* NULL when not set */
} cfg_mount;

/* TRUSTED_PROXIES item: one address or network. IPv4 is held in its IPv4-mapped IPv6 form
 * (::ffff:a.b.c.d) with the prefix length counted on those 128 bits (a /24 becomes /120). */
typedef struct cfg_cidr {
    unsigned char addr[16]; /* network address, host bits cleared */
    unsigned prefix;        /* 0..128 */
} cfg_cidr;

/* A media server that scans folders (DESIGN.md "Targets and their libraries"). */
typedef enum { TARGET_PLEX = 0, TARGET_JELLYFIN = 1, TARGET_EMBY = 2 } target_kind;
#define TARGET_NAME_MAX 32

typedef struct cfg_target {
    char *name;                 /* [a-z0-9_-]{1,32}, unique across all targets */
    target_kind kind;
    char *url;                  /* trailing '/' removed */
    char *token;                /* never NULL ("" when not set) */
    char *token_var;            /* what a person fixes when the token is refused: "PLEX_TOKEN",
                                   "JELLYFIN_TOKEN", "EMBY_TOKEN", "MEDIA_SERVERS (family): token" */
    char *origin;               /* the variable that defined it: "PLEX_URL", "JELLYFIN_URL",
                                   "EMBY_URL", "MEDIA_SERVERS (family)" */
    cfg_replacements path_repl; /* arr path -> this target's path (own copy) */
    bool path_repl_own;         /* from its own variable or item, not PATH_REPLACEMENTS */
    cfg_section_map *section_map; /* Plex only: SECTION_MAPPING or the item's section_mapping */
    size_t n_section_map;
    uint64_t timeout_ms;        /* each call */
    bool empty_trash;           /* Plex only: PLEX_EMPTY_TRASH or the item's empty_trash */
    bool scan_path;             /* Jellyfin/Emby only: try the Targeted Scans plugin's ScanPath first */
} cfg_target;

const char *target_kind_name(target_kind k); /* "plex", "jellyfin", "emby" */

/* NOTIFY: where a person hears of what needs them (DESIGN.md "Notifications"). */
typedef enum {
    NOTIFY_DISCORD = 0,
    NOTIFY_NTFY,
    NOTIFY_APPRISE,
    NOTIFY_GOTIFY,
    NOTIFY_JSON,
    NOTIFY_TYPE_COUNT
} cfg_notify_type;

/* What a destination can be told of; `events` filters by these bits (1u << kind). */
typedef enum {
    NEV_PARKED = 0,  /* a round ended parked: what to fix */
    NEV_RESUMED,     /* a parked target or entry goes on */
    NEV_FAILING,     /* a folder still not delivered after 30 minutes of retries */
    NEV_HELD,        /* a mount's anchor holds a folder */
    NEV_RELEASED,    /* a held folder synced */
    NEV_TARGET_DOWN, /* a media server unreachable for 5 minutes */
    NEV_TARGET_UP,   /* and back */
    NEV_SCAN,        /* every finished round */
    NEV_TEST,        /* an *arr Test event, the page's test button */
    NEV_COUNT
} cfg_notify_event;

#define NOTIFY_EVENTS_ALL ((1u << NEV_COUNT) - 1u)
#define NOTIFY_EVENTS_DEFAULT (NOTIFY_EVENTS_ALL & ~(1u << NEV_SCAN))
#define CFG_NOTIFY_MAX 16

typedef struct cfg_notify {
    cfg_notify_type type;
    char *url;       /* secret (a webhook URL carries its key): never logged, shown as scheme://host */
    char *token;     /* secret; "" when not set */
    unsigned events; /* bits (1u << NEV_*) */
} cfg_notify;

const char *cfg_notify_type_name(cfg_notify_type t); /* "discord", "ntfy", ... */
const char *cfg_notify_event_name(cfg_notify_event e); /* "parked", "target_down", ... */

typedef enum { DURABILITY_FULL = 0, DURABILITY_PROCESS = 1 } cfg_durability;
typedef enum { SCAN_SCOPE_FOLDER = 0, SCAN_SCOPE_ROOT = 1 } cfg_scan_scope;

typedef struct config {
    /* Plex */
    char *plex_url;           /* PLEX_URL, trailing '/' removed; NULL/"" = not configured */
    char *plex_token;         /* PLEX_TOKEN */
    uint64_t plex_timeout_ms; /* PLEX_TIMEOUT, default 30s */
    char *plex_identifier;    /* PLEXAPI_HEADER_IDENTIFIER, default "plex-servarr-sync" */
    uint64_t section_refresh_ms; /* SECTION_REFRESH, default 15m */
    cfg_section_map *section_map; /* SECTION_MAPPING, longest prefix first */
    size_t n_section_map;

    /* server */
    int port;                 /* PORT, default 5000 */
    char *bind_address;       /* BIND_ADDRESS, default 0.0.0.0 */
    char *state_dir;          /* STATE_DIR, default $STATE_DIRECTORY (first of a ':' list), else ./state */
    cfg_durability durability;/* DURABILITY full|process */
    char *webhook_user, *webhook_pass; /* WEBHOOK_USER / WEBHOOK_PASS, NULL if unset */
    char *manual_user;        /* MANUAL_USER, default admin */
    char *manual_pass;        /* MANUAL_PASS; NULL when unset (main generates one) */
    char *trusted_proxies;    /* TRUSTED_PROXIES, NULL if unset (raw list, comma separated) */
    char *public_url;         /* PUBLIC_URL, NULL if unset: the page's address behind a proxy */
    char *url_base;           /* URL_BASE normalized ("/pss": a leading '/', no trailing one); NULL
                                 when unset, empty or "/" (everything at the root) */
    cfg_cidr *trusted;        /* TRUSTED_PROXIES parsed: IPs and CIDRs (IPv4 as ::ffff:0:0/96) */
    size_t n_trusted;

    /* rclone */
    bool use_rclone;          /* USE_RCLONE, default true (the step still needs a URL) */
    cfg_mount *mounts;        /* RCLONE_MOUNTS, or one item from RCLONE_RC_URL & co; longest root first */
    size_t n_mounts;
    uint64_t rclone_timeout_ms; /* RCLONE_TIMEOUT, default 10m */

    /* paths */
    cfg_replacements path_repl;        /* PATH_REPLACEMENTS: arr -> Plex */
    cfg_replacements rclone_path_repl; /* RCLONE_PATH_REPLACEMENTS: arr -> rclone host path */
    cfg_replacements local_path_repl;  /* LOCAL_PATH_REPLACEMENTS: arr -> path this host can stat */
    bool local_path_repl_set;          /* LOCAL_PATH_REPLACEMENTS given (else host path = Plex path) */
    char **anchors;                    /* ANCHOR_FILES (JSON list of absolute host paths) */
    size_t n_anchors;
    cfg_scan_scope scan_scope;         /* SCAN_SCOPE folder|root */

    /* targets: `plex` (PLEX_URL), `jellyfin` (JELLYFIN_URL), `emby` (EMBY_URL), then each
     * MEDIA_SERVERS item, in that order */
    cfg_target *targets;
    size_t n_targets;
    bool plex_empty_trash;             /* PLEX_EMPTY_TRASH, default false */

    /* notifications: NOTIFY */
    cfg_notify *notify;
    size_t n_notify;

    /* queue */
    uint64_t webhook_delay_ms;     /* WEBHOOK_DELAY, default 30s */
    uint64_t webhook_max_delay_ms; /* WEBHOOK_MAX_DELAY, default 10m; must be >= WEBHOOK_DELAY */
    uint64_t minimum_age_ms;       /* MINIMUM_AGE, default 0 */
    uint64_t sync_cooldown_ms;     /* SYNC_COOLDOWN, default 0 */
    uint64_t retry_max_delay_ms;   /* RETRY_MAX_DELAY, default 5m */
    int max_concurrent_syncs;      /* MAX_CONCURRENT_SYNCS, default 4, 1..256 */
    int max_folders_per_event;     /* MAX_FOLDERS_PER_EVENT, default 100, 1..10000 */
    long max_pending;              /* MAX_PENDING, default 100000, >= 100000 */
    int history_days;              /* HISTORY_DAYS, default 7, 1..3650 */

    /* limits (issue: hostile input) */
    size_t max_header_bytes;       /* MAX_HEADER_BYTES, default 16 KiB */
    size_t max_webhook_body;       /* MAX_WEBHOOK_BODY, default 16 MiB */
    size_t max_body;               /* MAX_BODY, default 64 KiB (every other route) */
    size_t max_buffered_bytes;     /* MAX_BUFFERED_BYTES, default 256 MiB (all requests together) */
    int max_connections;           /* MAX_CONNECTIONS, default 4096 */
    uint64_t header_timeout_ms;    /* HEADER_TIMEOUT, default 10s */
    uint64_t idle_timeout_ms;      /* IDLE_TIMEOUT, default 60s (keep-alive and body) */

    int log_level;                 /* LOG_LEVEL (log_level_t), default info */
    char *tz;                      /* TZ, passed to the process environment */
} config_t;

/* Duration: "30" (seconds), "30s", "5m", "1h", "1d", also "250ms"; surrounding spaces ignored.
 * 0 or -EINVAL. */
int parse_duration_ms(const char *s, uint64_t *out);

/* Build a config from env (the environment) overlaid by file_vars for keys env lacks.
 * Every variable is checked against the table; on the first bad value returns -EINVAL and err
 * reads "VARIABLE: reason (got 'value')" (the value is omitted for secrets). On success *out is
 * filled (caller frees with config_free). file_vars may be NULL. */
int config_build(config_t *out, const env_map *env, const env_map *file_vars, char *err, size_t errlen);

/* The whole start-up path: env snapshot + (env_file, or ./.env if it exists) -> config. */
int config_load(config_t *out, const env_map *env, const char *env_file, char *err, size_t errlen);

void config_free(config_t *c);

/* Print the variable table (name, default, meaning) for --help. */
void config_print_help(void);

#endif
