/* config.c: the configuration: a typed table of variables (type, range, default) parsed from the
 * environment over a dotenv file (dotenv.c reads it), and the rules between variables; every
 * value at fault is reported, each in one line naming its variable. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_files.h"
#include "config_json.h"
#include "config_keys.h"
#include "log.h"
#include "util.h"

#define REPORT_LINE_MAX 1024
#define WHY_MAX 512

#define MS_SEC 1000LL
#define MS_MIN (60 * MS_SEC)
#define MS_HOUR (60 * MS_MIN)
#define MS_DAY (24 * MS_HOUR)

_Static_assert(sizeof(cfg_durability) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(cfg_scan_scope) == sizeof(int), "enums are stored as int");

/* ---------------------------------------------------------------- small string helpers */

/* "250ms", "30s", "5m", "1h", "1d", "90s": the shortest exact spelling, for messages. */
static void fmt_duration(uint64_t ms, char *out, size_t outlen)
{
    static const struct {
        uint64_t ms;
        const char *unit;
    } units[] = {{(uint64_t)MS_DAY, "d"},
                 {(uint64_t)MS_HOUR, "h"},
                 {(uint64_t)MS_MIN, "m"},
                 {(uint64_t)MS_SEC, "s"}};
    for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
        if (ms && ms % units[i].ms == 0) {
            snprintf(out, outlen, "%llu%s", (unsigned long long)(ms / units[i].ms), units[i].unit);
            return;
        }
    }
    snprintf(out, outlen, "%llu%s", (unsigned long long)ms, ms ? "ms" : "");
}

/* ---------------------------------------------------------------- the option table */

typedef enum {
    OPT_STRING,
    OPT_INT,
    OPT_BOOL,
    OPT_DURATION,
    OPT_ENUM,
    OPT_JSON,
    OPT_PATH,
} opt_type;

enum {
    OPT_SECRET = 1u << 0,   /* never echo the value */
    OPT_URL = 1u << 1,      /* string: http(s) URL, trailing '/' dropped */
    OPT_IP = 1u << 2,       /* string: IPv4 or IPv6 literal */
    OPT_ABSOLUTE = 1u << 3, /* path: must start with '/' */
    OPT_FILE = 1u << 4,     /* may come from the file named by NAME_FILE (container secrets) */
    OPT_SERVER = 1u << 5,   /* URL of a media server: a web app's address (/web) is made right */
    OPT_URL_BASE = 1u << 6, /* string: a path every route goes under (cfg_url_base_normalize) */
};

#define OPTS_MAX 96 /* the table's rows at most (a failed row is remembered per row) */

/* Everything config_build fills: the config plus the variables that only combine into it
 * after the table pass (the one-mount rclone shorthand). */
/* A path replacement map that may be unset (then another one stands in). */
typedef struct opt_repl {
    cfg_replacements r;
    bool set;
} opt_repl;

typedef struct cfg_ctx {
    config_t c;
    char *rc_url, *mount_root, *rclone_fs, *rc_user, *rc_pass;
    cfg_mount *mounts; /* from RCLONE_MOUNTS */
    size_t n_mounts;
    char *jf_url, *jf_token, *emby_url, *emby_token;
    char *plex_ca, *jf_ca, *emby_ca; /* PLEX_CA_FILE, JELLYFIN_CA_FILE, EMBY_CA_FILE */
    opt_repl jf_repl, emby_repl;
    char *media_servers; /* MEDIA_SERVERS' text, read once the defaults are known */
    const env_map *env, *file;
    config_report *rep;    /* where every error and warning goes */
    bool failed[OPTS_MAX]; /* rows whose value was refused: the rules between variables skip them */
} cfg_ctx;

typedef struct cfg_opt cfg_opt;
typedef int (*opt_enum_fn)(const char *v, int *out);
/* Parse a JSON value's text into the context (config_json.c); 0, or -EINVAL with `why` set. */
typedef int (*opt_json_fn)(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen);

struct cfg_opt {
    const char *name;
    opt_type type;
    unsigned flags;
    long long min, max;  /* int: the value; duration: milliseconds */
    const char *def;     /* default, as text parsed like a value; NULL = unset */
    const char *def_env; /* when set in the environment, its first ':' entry is the default */
    size_t off, size;    /* the field in cfg_ctx */
    opt_enum_fn parse_enum;
    const char *choices; /* enum: the accepted words, for messages and --help */
    opt_json_fn json;
    const char *help;
};

#define FIELD(f) .off = offsetof(cfg_ctx, f), .size = sizeof(((cfg_ctx *)0)->f)

/* ---------------------------------------------------------------- the report */

static void lines_add(char ***v, size_t *n, const char *line)
{
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = xstrdup(line);
}

static void lines_addv(char ***v, size_t *n, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
static void lines_addv(char ***v, size_t *n, const char *fmt, va_list ap)
{
    char line[REPORT_LINE_MAX];
    vsnprintf(line, sizeof line, fmt, ap);
    lines_add(v, n, line);
}

static void rep_error(cfg_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rep_error(cfg_ctx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lines_addv(&x->rep->errors, &x->rep->n_errors, fmt, ap);
    va_end(ap);
}

static void rep_warn(cfg_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rep_warn(cfg_ctx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lines_addv(&x->rep->warnings, &x->rep->n_warnings, fmt, ap);
    va_end(ap);
}

void config_report_free(config_report *r)
{
    for (size_t i = 0; i < r->n_errors; i++)
        free(r->errors[i]);
    for (size_t i = 0; i < r->n_warnings; i++)
        free(r->warnings[i]);
    free(r->errors);
    free(r->warnings);
    memset(r, 0, sizeof *r);
}

void config_report_log(const config_report *r, const char *what)
{
    for (size_t i = 0; i < r->n_warnings; i++)
        log_warn("%s", log_esc(r->warnings[i]));
    for (size_t i = 0; i < r->n_errors; i++)
        log_error("%s: %s", what, log_esc(r->errors[i]));
}

static int enum_durability(const char *v, int *out);
static int enum_scan_scope(const char *v, int *out);
static int enum_log_level(const char *v, int *out);
static int json_replacements(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen);
static int json_sections(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen);
static int json_anchors(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen);
static int json_mounts(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen);
static int json_opt_replacements(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen);
static int json_media_servers(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen);
static int json_notify(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen);

static const cfg_opt opts[] = {
    /* Plex */
    {.name = "PLEX_URL", .type = OPT_STRING, .flags = OPT_URL | OPT_SERVER, FIELD(c.plex_url),
     .help = "Plex base URL, e.g. http://127.0.0.1:32400 (unset: no Plex calls)"},
    {.name = "PLEX_TOKEN", .type = OPT_STRING, .flags = OPT_SECRET | OPT_FILE, FIELD(c.plex_token),
     .help = "Plex token (X-Plex-Token)"},
    {.name = "PLEX_CA_FILE", .type = OPT_PATH, .flags = OPT_ABSOLUTE, FIELD(plex_ca),
     .help = "PEM file of the CA that signed Plex's https certificate (a self-signed one: the certificate)"},
    {.name = "PLEX_TIMEOUT", .type = OPT_DURATION, .min = MS_SEC, .max = MS_HOUR, .def = "30s",
     FIELD(c.plex_timeout_ms), .help = "limit for one Plex request"},
    {.name = "PLEXAPI_HEADER_IDENTIFIER", .type = OPT_STRING, .def = "plex-servarr-sync",
     FIELD(c.plex_identifier), .help = "X-Plex-Client-Identifier sent to Plex"},
    {.name = "SECTION_REFRESH", .type = OPT_DURATION, .min = MS_SEC, .max = MS_DAY, .def = "15m",
     FIELD(c.section_refresh_ms), .help = "how often Plex's library list is re-read"},
    {.name = "SECTION_MAPPING", .type = OPT_JSON, .json = json_sections,
     .help = "JSON map of Plex path prefix -> section id, tried before Plex's library list"},
    {.name = "PLEX_EMPTY_TRASH", .type = OPT_BOOL, .def = "false", FIELD(c.plex_empty_trash),
     .help = "empty a Plex section's trash after a round with deletes, when its mounts are verified"},

    /* Jellyfin, Emby, more servers */
    {.name = "JELLYFIN_URL", .type = OPT_STRING, .flags = OPT_URL | OPT_SERVER, FIELD(jf_url),
     .help = "Jellyfin base URL: a target named jellyfin (needs JELLYFIN_TOKEN)"},
    {.name = "JELLYFIN_TOKEN", .type = OPT_STRING, .flags = OPT_SECRET | OPT_FILE, FIELD(jf_token),
     .help = "Jellyfin API key"},
    {.name = "JELLYFIN_CA_FILE", .type = OPT_PATH, .flags = OPT_ABSOLUTE, FIELD(jf_ca),
     .help = "PEM file of the CA that signed Jellyfin's https certificate"},
    {.name = "JELLYFIN_PATH_REPLACEMENTS", .type = OPT_JSON, .json = json_opt_replacements, FIELD(jf_repl),
     .help = "JSON map of *arr path prefix -> Jellyfin path prefix (unset: PATH_REPLACEMENTS)"},
    {.name = "EMBY_URL", .type = OPT_STRING, .flags = OPT_URL | OPT_SERVER, FIELD(emby_url),
     .help = "Emby base URL: a target named emby (needs EMBY_TOKEN)"},
    {.name = "EMBY_TOKEN", .type = OPT_STRING, .flags = OPT_SECRET | OPT_FILE, FIELD(emby_token),
     .help = "Emby API key"},
    {.name = "EMBY_CA_FILE", .type = OPT_PATH, .flags = OPT_ABSOLUTE, FIELD(emby_ca),
     .help = "PEM file of the CA that signed Emby's https certificate"},
    {.name = "EMBY_PATH_REPLACEMENTS", .type = OPT_JSON, .json = json_opt_replacements, FIELD(emby_repl),
     .help = "JSON map of *arr path prefix -> Emby path prefix (unset: PATH_REPLACEMENTS)"},
    {.name = "MEDIA_SERVERS", .type = OPT_JSON, .flags = OPT_SECRET, .json = json_media_servers,
     .help = "JSON list of {name, type: plex|jellyfin|emby, url, token|token_file, path_replacements, "
             "section_mapping, timeout, empty_trash, scan_path, ca_file}, one per server"},

    /* notifications */
    {.name = "NOTIFY", .type = OPT_JSON, .flags = OPT_SECRET, .json = json_notify,
     .help = "JSON list of {type: discord|ntfy|apprise|gotify|json, url, token|token_file, events}, one per "
             "destination of notifications (events: parked, resumed, failing, held, released, target_down, "
             "target_up, scan, test; default all but scan)"},

    /* server */
    {.name = "PORT", .type = OPT_INT, .min = 1, .max = 65535, .def = "5000", FIELD(c.port),
     .help = "TCP port to listen on (restart to change)"},
    {.name = "BIND_ADDRESS", .type = OPT_STRING, .flags = OPT_IP, .def = "0.0.0.0",
     FIELD(c.bind_address), .help = "IPv4 or IPv6 address to listen on (restart to change)"},
    {.name = "STATE_DIR", .type = OPT_PATH, .def = "./state", .def_env = "STATE_DIRECTORY",
     FIELD(c.state_dir),
     .help = "directory of the database and the generated password (restart to change)"},
    {.name = "DURABILITY", .type = OPT_ENUM, .def = "full", .parse_enum = enum_durability,
     .choices = "full|process", FIELD(c.durability),
     .help = "full: survives power loss; process: survives a crash of the process"},
    {.name = "WEBHOOK_USER", .type = OPT_STRING, FIELD(c.webhook_user),
     .help = "Basic auth user the *arr webhooks must send (unset: no auth)"},
    {.name = "WEBHOOK_PASS", .type = OPT_STRING, .flags = OPT_SECRET | OPT_FILE, FIELD(c.webhook_pass),
     .help = "Basic auth password for the webhooks"},
    {.name = "MANUAL_USER", .type = OPT_STRING, .def = "admin", FIELD(c.manual_user),
     .help = "user for the UI and the manual trigger"},
    {.name = "MANUAL_PASS", .type = OPT_STRING, .flags = OPT_SECRET | OPT_FILE, FIELD(c.manual_pass),
     .help = "password for the UI (unset: generated once into STATE_DIR)"},
    {.name = "TRUSTED_PROXIES", .type = OPT_STRING, FIELD(c.trusted_proxies),
     .help = "comma-separated proxy IPs or CIDRs (10.0.0.0/8, ::1) whose X-Forwarded-For is believed"},
    {.name = "PUBLIC_URL", .type = OPT_STRING, .flags = OPT_URL, FIELD(c.public_url),
     .help = "the page's address behind a reverse proxy (https://media.example.org/sync): its origin is this site's"},
    {.name = "URL_BASE", .type = OPT_STRING, .flags = OPT_URL_BASE, FIELD(c.url_base),
     .help = "path every address is served under, for a reverse proxy (/pss: the page at /pss/, webhooks at "
             "/pss/webhook/sonarr)"},

    /* rclone */
    {.name = "USE_RCLONE", .type = OPT_BOOL, .def = "true", FIELD(c.use_rclone),
     .help = "refresh rclone's VFS before each scan"},
    {.name = "RCLONE_MOUNTS", .type = OPT_JSON, .flags = OPT_SECRET, .json = json_mounts,
     .help = "JSON list of {root, url, fs, user, pass}, one per rclone mount"},
    {.name = "RCLONE_RC_URL", .type = OPT_STRING, .flags = OPT_URL, FIELD(rc_url),
     .help = "rclone remote-control URL of the one mount (shorthand for RCLONE_MOUNTS)"},
    {.name = "RCLONE_MOUNT_ROOT", .type = OPT_PATH, .flags = OPT_ABSOLUTE, FIELD(mount_root),
     .help = "where that mount is mounted (unset: /)"},
    {.name = "RCLONE_FS", .type = OPT_STRING, FIELD(rclone_fs),
     .help = "rclone fs= parameter of that mount (needed when rclone serves several)"},
    {.name = "RCLONE_RC_USER", .type = OPT_STRING, FIELD(rc_user), .help = "rclone RC user"},
    {.name = "RCLONE_RC_PASS", .type = OPT_STRING, .flags = OPT_SECRET | OPT_FILE, FIELD(rc_pass),
     .help = "rclone RC password"},
    {.name = "RCLONE_TIMEOUT", .type = OPT_DURATION, .min = MS_SEC, .max = MS_DAY, .def = "10m",
     FIELD(c.rclone_timeout_ms), .help = "limit for one rclone call"},

    /* paths */
    {.name = "PATH_REPLACEMENTS", .type = OPT_JSON, .json = json_replacements,
     FIELD(c.path_repl), .help = "JSON map of *arr path prefix -> Plex path prefix"},
    {.name = "RCLONE_PATH_REPLACEMENTS", .type = OPT_JSON, .json = json_replacements,
     FIELD(c.rclone_path_repl), .help = "JSON map of *arr path prefix -> rclone host path prefix"},
    {.name = "LOCAL_PATH_REPLACEMENTS", .type = OPT_JSON, .json = json_replacements,
     FIELD(c.local_path_repl),
     .help = "JSON map of *arr path prefix -> path this host can stat (unset: the Plex path)"},
    {.name = "ANCHOR_FILES", .type = OPT_JSON, .json = json_anchors,
     .help = "JSON list of files whose absence holds scans below their directory"},
    {.name = "SCAN_SCOPE", .type = OPT_ENUM, .def = "folder", .parse_enum = enum_scan_scope,
     .choices = "folder|root", FIELD(c.scan_scope),
     .help = "folder: the changed folder; root: the series/movie folder"},

    /* queue */
    {.name = "WEBHOOK_DELAY", .type = OPT_DURATION, .min = 0, .max = MS_DAY, .def = "30s",
     FIELD(c.webhook_delay_ms), .help = "quiet time after the last event before a folder syncs"},
    {.name = "WEBHOOK_MAX_DELAY", .type = OPT_DURATION, .min = 0, .max = 7 * MS_DAY, .def = "10m",
     FIELD(c.webhook_max_delay_ms),
     .help = "longest wait from a folder's first event (>= WEBHOOK_DELAY)"},
    {.name = "MINIMUM_AGE", .type = OPT_DURATION, .min = 0, .max = 7 * MS_DAY, .def = "0",
     FIELD(c.minimum_age_ms), .help = "files must be at least this old before a scan"},
    {.name = "SYNC_COOLDOWN", .type = OPT_DURATION, .min = 0, .max = MS_DAY, .def = "0",
     FIELD(c.sync_cooldown_ms), .help = "least time between two scans of one folder"},
    {.name = "RETRY_MAX_DELAY", .type = OPT_DURATION, .min = MS_SEC, .max = MS_DAY, .def = "5m",
     FIELD(c.retry_max_delay_ms), .help = "cap of the backoff between retries"},
    {.name = "MAX_CONCURRENT_SYNCS", .type = OPT_INT, .min = 1, .max = 256, .def = "4",
     FIELD(c.max_concurrent_syncs), .help = "folders synced at the same time"},
    {.name = "MAX_FOLDERS_PER_EVENT", .type = OPT_INT, .min = 1, .max = 10000, .def = "100",
     FIELD(c.max_folders_per_event), .help = "past this, an event scans its root folder instead"},
    {.name = "MAX_PENDING", .type = OPT_INT, .min = 100000, .max = 100000000, .def = "100000",
     FIELD(c.max_pending), .help = "most queued folders (at least 100000)"},
    {.name = "HISTORY_DAYS", .type = OPT_INT, .min = 1, .max = 3650, .def = "7",
     FIELD(c.history_days), .help = "days of history kept"},

    /* limits */
    {.name = "MAX_HEADER_BYTES", .type = OPT_INT, .min = 1024, .max = 1024 * 1024, .def = "16384",
     FIELD(c.max_header_bytes), .help = "largest request head, in bytes"},
    {.name = "MAX_WEBHOOK_BODY", .type = OPT_INT, .min = 1024, .max = 256 * 1024 * 1024,
     .def = "16777216", FIELD(c.max_webhook_body), .help = "largest webhook body, in bytes"},
    {.name = "MAX_BODY", .type = OPT_INT, .min = 1024, .max = 16 * 1024 * 1024, .def = "65536",
     FIELD(c.max_body), .help = "largest body of every other request, in bytes"},
    {.name = "MAX_BUFFERED_BYTES", .type = OPT_INT, .min = 1024 * 1024, .max = 64LL * 1024 * 1024 * 1024,
     .def = "268435456", FIELD(c.max_buffered_bytes),
     .help = "bytes held by all connections together (requests, responses); 503 beyond"},
    {.name = "MAX_CONNECTIONS", .type = OPT_INT, .min = 1, .max = 1000000, .def = "4096",
     FIELD(c.max_connections), .help = "most open client connections"},
    {.name = "HEADER_TIMEOUT", .type = OPT_DURATION, .min = MS_SEC, .max = 10 * MS_MIN, .def = "10s",
     FIELD(c.header_timeout_ms), .help = "time a client has to send a request head"},
    {.name = "IDLE_TIMEOUT", .type = OPT_DURATION, .min = MS_SEC, .max = MS_HOUR, .def = "60s",
     FIELD(c.idle_timeout_ms), .help = "idle time before a connection is closed"},

    {.name = "LOG_LEVEL", .type = OPT_ENUM, .def = "info", .parse_enum = enum_log_level,
     .choices = "error|warn|info|debug", FIELD(c.log_level), .help = "least severe level logged"},
    {.name = "TZ", .type = OPT_STRING, FIELD(c.tz), .help = "time zone of the log timestamps"},
};

static int enum_word(const char *v, const char *const *words, size_t n, int *out)
{
    for (size_t i = 0; i < n; i++) {
        if (str_eq_ci(v, words[i])) {
            *out = (int)i;
            return 0;
        }
    }
    return -1;
}

static int enum_durability(const char *v, int *out)
{
    static const char *const w[] = {[DURABILITY_FULL] = "full", [DURABILITY_PROCESS] = "process"};
    return enum_word(v, w, ARRAY_SIZE(w), out);
}

static int enum_scan_scope(const char *v, int *out)
{
    static const char *const w[] = {[SCAN_SCOPE_FOLDER] = "folder", [SCAN_SCOPE_ROOT] = "root"};
    return enum_word(v, w, ARRAY_SIZE(w), out);
}

static int enum_log_level(const char *v, int *out)
{
    log_level_t l;
    if (log_level_parse(v, &l) != 0)
        return -1;
    *out = (int)l;
    return 0;
}

/* ---------------------------------------------------------------- storing values */

static void *opt_field(cfg_ctx *x, const cfg_opt *o)
{
    return (char *)x + o->off;
}

static void store_int(cfg_ctx *x, const cfg_opt *o, long long v)
{
    /* int, long and size_t fields share this path; every range is non-negative, so one
     * fixed-width store of the right size writes the same bits for signed and unsigned. */
    if (o->size == sizeof(int32_t)) {
        int32_t i = (int32_t)v;
        memcpy(opt_field(x, o), &i, sizeof i);
    } else if (o->size == sizeof(int64_t)) {
        int64_t i = v;
        memcpy(opt_field(x, o), &i, sizeof i);
    } else {
        log_fatal("config: %s has a field of unexpected size %zu", o->name, o->size);
    }
}

static void store_str(cfg_ctx *x, const cfg_opt *o, char *s)
{
    char **p = opt_field(x, o);
    free(*p);
    *p = s;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (str_eq_ci(v, yes[i])) {
            *out = true;
            return 0;
        }
        if (str_eq_ci(v, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

static int opt_int(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    char *t = str_trim_dup(v);
    uint64_t u = 0;
    int rc = str_parse_u64(t, &u);
    free(t);
    if (rc == -EINVAL) {
        errbuf_set(why, whylen, "not a whole number");
        return -EINVAL;
    }
    if (rc || u < (uint64_t)o->min || u > (uint64_t)o->max) {
        errbuf_set(why, whylen, "must be between %lld and %lld", o->min, o->max);
        return -EINVAL;
    }
    store_int(x, o, (long long)u);
    return 0;
}

static int opt_duration(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    uint64_t ms;
    if (parse_duration_ms(v, &ms) != 0) {
        errbuf_set(why, whylen, "not a duration (use 30, 30s, 5m, 1h, 1d or 250ms)");
        return -EINVAL;
    }
    if (ms < (uint64_t)o->min || ms > (uint64_t)o->max) {
        char lo[32], hi[32];
        fmt_duration((uint64_t)o->min, lo, sizeof lo);
        fmt_duration((uint64_t)o->max, hi, sizeof hi);
        errbuf_set(why, whylen, "must be between %s and %s", lo, hi);
        return -EINVAL;
    }
    memcpy(opt_field(x, o), &ms, sizeof ms);
    return 0;
}

static int opt_string(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    if (strlen(v) > CFG_VALUE_MAX) {
        errbuf_set(why, whylen, "longer than %d bytes", CFG_VALUE_MAX);
        return -EINVAL;
    }
    char *s = (o->flags & (OPT_URL | OPT_IP | OPT_URL_BASE)) ? str_trim_dup(v) : xstrdup(v);
    if (str_has_ctl(s)) {
        errbuf_set(why, whylen, "contains a control character");
        goto bad;
    }
    if (o->flags & OPT_URL) {
        char *given = xstrdup(s);
        const char *r = cfg_url_check(s);
        /* Made right, not refused: the fix is certain (README.md, "Configuration"). */
        if (!r && (o->flags & OPT_SERVER) && cfg_url_web_strip(s))
            rep_warn(x, "%s: '%s' is the address of the server's web app, not of its API: using '%s' (set %s=%s to "
                     "drop this warning)", o->name, log_esc(given), log_esc(s), o->name, log_esc(s));
        free(given);
        if (r) {
            errbuf_set(why, whylen, "%s", r);
            goto bad;
        }
    }
    if (o->flags & OPT_URL_BASE) {
        const char *r = cfg_url_base_normalize(&s);
        if (r) {
            errbuf_set(why, whylen, "%s", r);
            goto bad;
        }
        if (!*s) { /* "/" is the root: no base */
            free(s);
            s = NULL;
        }
    }
    if (o->flags & OPT_IP) {
        unsigned char addr[sizeof(struct in6_addr)];
        if (inet_pton(AF_INET, s, addr) != 1 && inet_pton(AF_INET6, s, addr) != 1) {
            errbuf_set(why, whylen, "not an IPv4 or IPv6 address");
            goto bad;
        }
    }
    store_str(x, o, s);
    return 0;
bad:
    free(s);
    return -EINVAL;
}

static int opt_path(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    if (strlen(v) > CFG_VALUE_MAX) {
        errbuf_set(why, whylen, "longer than %d bytes", CFG_VALUE_MAX);
        return -EINVAL;
    }
    if (str_has_ctl(v)) {
        errbuf_set(why, whylen, "contains a control character");
        return -EINVAL;
    }
    char *p = path_normalize(v);
    if ((o->flags & OPT_ABSOLUTE) && p[0] != '/') {
        errbuf_set(why, whylen, "must be an absolute path");
        free(p);
        return -EINVAL;
    }
    store_str(x, o, p);
    return 0;
}

/* The JSON variables' parsers (config_json.c), each pointed at its fields. */
static int json_replacements(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    return cfg_json_replacements(o->name, v, opt_field(x, o), why, whylen);
}

static int json_sections(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    return cfg_json_sections(o->name, v, &x->c.section_map, &x->c.n_section_map, why, whylen);
}

static int json_anchors(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    (void)o;
    return cfg_json_anchors(v, &x->c.anchors, &x->c.n_anchors, why, whylen);
}

static int json_mounts(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    (void)o;
    return cfg_json_mounts(v, &x->mounts, &x->n_mounts, why, whylen);
}

static int json_opt_replacements(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    opt_repl *r = opt_field(x, o);
    r->set = true;
    return cfg_json_replacements(o->name, v, &r->r, why, whylen);
}

static int json_media_servers(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    (void)o;
    (void)why;
    (void)whylen;
    free(x->media_servers);
    x->media_servers = xstrdup(v); /* read in targets_combine, once PLEX_TIMEOUT & co are known */
    return 0;
}

static void notify_item_error(void *ud, const char *why)
{
    rep_error(ud, "NOTIFY: %s", why);
}

/* NOTIFY holds webhook URLs and tokens: its reasons (config_json.c) quote neither. Each bad item
 * is reported here; only a bad value as a whole comes back in `why`. */
static int json_notify(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    (void)o;
    cfg_json_sink sink = {.error = notify_item_error, .ud = x};
    int rc = cfg_json_notify(v, cfg_secret_file_read, &sink, &x->c.notify, &x->c.n_notify, why, whylen);
    return rc && !why[0] ? 0 : rc; /* 0: the bad items are told already, and the build fails on them */
}

/* ---------------------------------------------------------------- config_build */

/* A variable's raw text: the environment's (even empty, as python-dotenv never overrides a
 * variable that exists), else the file's; NULL when neither has it. */
static const char *var_get(const cfg_ctx *x, const char *key)
{
    const char *v = env_map_get(x->env, key);
    return v ? v : env_map_get(x->file, key);
}

/* An OPT_FILE option named in NAME_FILE: *out is the file's content, or stays NULL when NAME_FILE
 * is not set. Setting both NAME and NAME_FILE is an error: which one wins would be a guess. */
static int opt_file_text(const cfg_ctx *x, const cfg_opt *o, char **out, char *err, size_t errlen)
{
    char var[64];
    snprintf(var, sizeof var, "%s_FILE", o->name);
    const char *path = var_get(x, var);
    if (!path || !*path)
        return 0;
    const char *direct = var_get(x, o->name);
    if (direct && *direct) {
        errbuf_set(err, errlen, "%s: %s is set too; set only one of them", var, o->name);
        return -EINVAL;
    }
    return cfg_secret_file_read(var, path, out, err, errlen);
}

/* The text an option takes: from NAME_FILE for OPT_FILE options when that is set, else the
 * variable's own text; "" means unset, which gives the default. *out is a new string or NULL;
 * *from_file tells which (for messages). 0, or -EINVAL with err set. */
static int opt_text(const cfg_ctx *x, const cfg_opt *o, char **out, bool *from_file, char *err, size_t errlen)
{
    *out = NULL;
    *from_file = false;
    if (o->flags & OPT_FILE) {
        int rc = opt_file_text(x, o, out, err, errlen);
        if (rc)
            return rc;
        if (*out && **out) {
            *from_file = true;
            return 0;
        }
        free(*out);
        *out = NULL;
    }
    const char *v = var_get(x, o->name);
    if (v && *v) {
        *out = xstrdup(v);
        return 0;
    }
    if (o->def_env) {
        const char *d = env_map_get(x->env, o->def_env);
        if (d && *d && *d != ':') {
            *out = xstrndup(d, strcspn(d, ":"));
            return 0;
        }
    }
    *out = xstrdup(o->def);
    return 0;
}

static void opt_fail(cfg_ctx *x, const cfg_opt *o, bool from_file, const char *v, const char *why)
{
    if (o->flags & OPT_SECRET)
        rep_error(x, "%s%s: %s", o->name, from_file ? "_FILE" : "", why);
    else
        rep_error(x, "%s: %s (got '%s')", o->name, why, log_esc(v));
}

/* v parsed into o's field: 0, or -EINVAL with why set. */
static int opt_parse(cfg_ctx *x, const cfg_opt *o, const char *v, char *why, size_t whylen)
{
    int rc = 0;
    switch (o->type) {
    case OPT_STRING:
        return opt_string(x, o, v, why, whylen);
    case OPT_PATH:
        return opt_path(x, o, v, why, whylen);
    case OPT_INT:
        return opt_int(x, o, v, why, whylen);
    case OPT_DURATION:
        return opt_duration(x, o, v, why, whylen);
    case OPT_BOOL: {
        char *t = str_trim_dup(v);
        bool b;
        rc = parse_bool(t, &b);
        free(t);
        if (rc)
            errbuf_set(why, whylen, "not a boolean (use true/false, yes/no, on/off or 1/0)");
        else
            memcpy(opt_field(x, o), &b, sizeof b);
        return rc;
    }
    case OPT_ENUM: {
        char *t = str_trim_dup(v);
        int e;
        rc = o->parse_enum(t, &e);
        free(t);
        if (rc)
            errbuf_set(why, whylen, "must be one of %s", o->choices);
        else
            store_int(x, o, e);
        return rc;
    }
    case OPT_JSON:
        return o->json(x, o, v, why, whylen);
    }
    return -EINVAL;
}

/* One row of the table. A refused value is reported, the row remembered as failed, and its
 * default stored, so that the rows and rules after it see sane values and the reading goes on:
 * every bad value is told at once. */
static void opt_apply(cfg_ctx *x, size_t row)
{
    const cfg_opt *o = &opts[row];
    char why[WHY_MAX];
    char *v;
    bool from_file;
    if (opt_text(x, o, &v, &from_file, why, sizeof why) != 0) {
        rep_error(x, "%s", why);
        x->failed[row] = true;
        return;
    }
    if (!v)
        return;
    if (opt_parse(x, o, v, why, sizeof why) != 0) {
        opt_fail(x, o, from_file, v, why);
        x->failed[row] = true;
        if (o->def && opt_parse(x, o, o->def, why, sizeof why) != 0)
            log_fatal("config: the default of %s is refused: %s", o->name, why);
    }
    free(v);
}

static size_t opt_row(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
        if (strcmp(opts[i].name, name) == 0)
            return i;
    log_fatal("config: no option %s in the table", name);
}

static bool opt_failed(const cfg_ctx *x, const char *name)
{
    return x->failed[opt_row(name)];
}

/* Whether the person set `name` (or NAME_FILE), rather than leaving it to its default. */
static bool opt_set(const cfg_ctx *x, const char *name)
{
    const char *v = var_get(x, name);
    if (v && *v)
        return true;
    char var[64];
    snprintf(var, sizeof var, "%s_FILE", name);
    v = (opts[opt_row(name)].flags & OPT_FILE) ? var_get(x, var) : NULL;
    return v && *v;
}

/* A rule between variables, reported against `name` (with its value when it has one). */
static void cross_fail(cfg_ctx *x, const char *name, const char *why)
{
    const cfg_opt *o = &opts[opt_row(name)];
    char *v;
    bool from_file;
    char scratch[WHY_MAX]; /* the table pass already read this option without error */
    if (opt_text(x, o, &v, &from_file, scratch, sizeof scratch) == 0 && v)
        opt_fail(x, o, from_file, v, why);
    else
        rep_error(x, "%s: %s", name, why);
    free(v);
}

static void ctx_free(cfg_ctx *x)
{
    config_free(&x->c);
    free(x->rc_url);
    free(x->mount_root);
    free(x->rclone_fs);
    free(x->rc_user);
    free(x->rc_pass);
    for (size_t i = 0; i < x->n_mounts; i++)
        cfg_mount_free(&x->mounts[i]);
    free(x->mounts);
    free(x->jf_url);
    free(x->jf_token);
    free(x->emby_url);
    free(x->emby_token);
    free(x->plex_ca);
    free(x->jf_ca);
    free(x->emby_ca);
    cfg_replacements_free(&x->jf_repl.r);
    cfg_replacements_free(&x->emby_repl.r);
    free(x->media_servers);
}

/* Combine RCLONE_MOUNTS or the one-mount shorthand into c.mounts. */
static void mounts_combine(cfg_ctx *x)
{
    config_t *c = &x->c;
    bool extras = x->mount_root || x->rclone_fs || x->rc_user || x->rc_pass;
    if (x->n_mounts && x->rc_url) {
        cross_fail(x, "RCLONE_MOUNTS", "cannot be used together with RCLONE_RC_URL (list that mount in RCLONE_MOUNTS)");
        return;
    }
    if (x->n_mounts) {
        if (extras)
            rep_warn(x, "RCLONE_MOUNT_ROOT, RCLONE_FS, RCLONE_RC_USER and RCLONE_RC_PASS are ignored "
                     "because RCLONE_MOUNTS is set");
        c->mounts = x->mounts;
        c->n_mounts = x->n_mounts;
        x->mounts = NULL;
        x->n_mounts = 0;
    } else if (x->rc_url) {
        c->mounts = xcalloc(1, sizeof *c->mounts);
        c->n_mounts = 1;
        c->mounts[0].root = x->mount_root ? x->mount_root : xstrdup("/");
        c->mounts[0].url = x->rc_url;
        c->mounts[0].fs = x->rclone_fs;
        c->mounts[0].user = x->rc_user;
        c->mounts[0].pass = x->rc_pass;
        x->mount_root = x->rc_url = x->rclone_fs = x->rc_user = x->rc_pass = NULL;
    } else if (extras && !opt_failed(x, "RCLONE_RC_URL")) {
        rep_warn(x, "RCLONE_MOUNT_ROOT, RCLONE_FS, RCLONE_RC_USER and RCLONE_RC_PASS are ignored "
                 "because RCLONE_RC_URL is not set");
    }
    if (!c->use_rclone) {
        /* Checked above all the same, so turning the step back on cannot reveal a bad value. */
        for (size_t i = 0; i < c->n_mounts; i++)
            cfg_mount_free(&c->mounts[i]);
        free(c->mounts);
        c->mounts = NULL;
        c->n_mounts = 0;
    }
}

/* The rule small <= big between two variables (sv and bv: their values as a person writes them;
 * longer/shorter: the words for "more" and "less"), broken. It is blamed on the variable the
 * person set: when only `small` is, `big` holds a default they may never have heard of, and the
 * message says so and how to raise it. */
static void order_fail(cfg_ctx *x, const char *small, const char *big, const char *sv, const char *bv,
                       const char *longer, const char *shorter)
{
    char why[WHY_MAX];
    if (opt_set(x, small) && !opt_set(x, big)) {
        snprintf(why, sizeof why, "%s is %s than %s, which is %s by default: also set %s=%s or %s, or set a %s %s",
                 sv, longer, big, bv, big, sv, longer, shorter, small);
        cross_fail(x, small, why);
        return;
    }
    snprintf(why, sizeof why, "must not be %s than %s (%s%s): set %s=%s or %s, or a %s %s", shorter, small, sv,
             opt_set(x, small) ? "" : ", its default", big, sv, longer, shorter, small);
    cross_fail(x, big, why);
}

static void cross_checks(cfg_ctx *x)
{
    const config_t *c = &x->c;
    if (c->webhook_max_delay_ms < c->webhook_delay_ms && !opt_failed(x, "WEBHOOK_DELAY") &&
        !opt_failed(x, "WEBHOOK_MAX_DELAY")) {
        char sv[32], bv[32];
        fmt_duration(c->webhook_delay_ms, sv, sizeof sv);
        fmt_duration(c->webhook_max_delay_ms, bv, sizeof bv);
        order_fail(x, "WEBHOOK_DELAY", "WEBHOOK_MAX_DELAY", sv, bv, "longer", "shorter");
    }
    /* Auth with half a credential would either lock every *arr app out or let anyone in. */
    if (c->webhook_user && !c->webhook_pass && !opt_failed(x, "WEBHOOK_PASS"))
        cross_fail(x, "WEBHOOK_PASS", "must be set when WEBHOOK_USER is set");
    if (c->webhook_pass && !c->webhook_user && !opt_failed(x, "WEBHOOK_USER"))
        cross_fail(x, "WEBHOOK_USER", "must be set when WEBHOOK_PASS is set");
    if (c->max_buffered_bytes < c->max_webhook_body && !opt_failed(x, "MAX_WEBHOOK_BODY") &&
        !opt_failed(x, "MAX_BUFFERED_BYTES")) {
        char sv[32], bv[32];
        snprintf(sv, sizeof sv, "%zu", c->max_webhook_body);
        snprintf(bv, sizeof bv, "%zu", c->max_buffered_bytes);
        order_fail(x, "MAX_WEBHOOK_BODY", "MAX_BUFFERED_BYTES", sv, bv, "larger", "smaller");
    }
}

/* ---------------------------------------------------------------- targets */

static cfg_target *target_push(config_t *c, target_kind kind, const char *name)
{
    c->targets = xrealloc(c->targets, (c->n_targets + 1) * sizeof *c->targets);
    cfg_target *t = &c->targets[c->n_targets++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->name = xstrdup(name);
    return t;
}

static const char *const shorthand_url_var[] = {[TARGET_PLEX] = "PLEX_URL", [TARGET_JELLYFIN] = "JELLYFIN_URL",
                                                [TARGET_EMBY] = "EMBY_URL"};
static const char *const shorthand_ca_var[] = {[TARGET_PLEX] = "PLEX_CA_FILE",
                                               [TARGET_JELLYFIN] = "JELLYFIN_CA_FILE",
                                               [TARGET_EMBY] = "EMBY_CA_FILE"};

/* A target named by the shorthand variables (PLEX_URL, JELLYFIN_URL, EMBY_URL). */
static void target_shorthand(config_t *c, target_kind kind, const char *url, const char *token,
                             const cfg_replacements *repl, const char *ca_file)
{
    static const char *const token_var[] = {[TARGET_PLEX] = "PLEX_TOKEN", [TARGET_JELLYFIN] = "JELLYFIN_TOKEN",
                                            [TARGET_EMBY] = "EMBY_TOKEN"};
    cfg_target *t = target_push(c, kind, target_kind_name(kind));
    t->url = xstrdup(url);
    t->token = xstrdup(token ? token : "");
    t->token_var = xstrdup(token_var[kind]);
    t->origin = xstrdup(shorthand_url_var[kind]);
    t->ca_file = xstrdup(ca_file);
    t->ca_var = xstrdup(shorthand_ca_var[kind]);
    cfg_replacements_copy(repl, &t->path_repl);
    t->timeout_ms = c->plex_timeout_ms;
    if (kind == TARGET_PLEX) {
        cfg_section_map_copy(c->section_map, c->n_section_map, &t->section_map, &t->n_section_map);
        t->empty_trash = c->plex_empty_trash;
    }
}

/* PLEX_CA_FILE & co: the file checked; a note when its server is not set or not https. The file
 * to use, or NULL. */
static const char *target_ca(cfg_ctx *x, target_kind kind, const char *ca, const char *url)
{
    if (!ca)
        return NULL;
    const char *var = shorthand_ca_var[kind], *url_var = shorthand_url_var[kind];
    char why[WHY_MAX];
    if (cfg_ca_file_check(var, ca, why, sizeof why) != 0) {
        rep_error(x, "%s", why);
        return NULL;
    }
    if (!url && !opt_failed(x, url_var))
        rep_warn(x, "%s is set but %s is not: the CA file is not used", var, url_var);
    else if (url && ascii_strncasecmp(url, "https://", 8) != 0)
        rep_warn(x, "%s is used only with an https:// address, and %s is http://", var, url_var);
    return ca;
}

/* JELLYFIN_URL or EMBY_URL with its token (their APIs always need a key) and its own map, or
 * PATH_REPLACEMENTS. */
static void target_media_browser(cfg_ctx *x, target_kind kind, const char *url, const char *token,
                                 const opt_repl *repl, const char *ca)
{
    bool jf = kind == TARGET_JELLYFIN;
    ca = target_ca(x, kind, ca, url);
    if (!url)
        return;
    if (!token || !*token) {
        if (!opt_failed(x, jf ? "JELLYFIN_TOKEN" : "EMBY_TOKEN"))
            cross_fail(x, jf ? "JELLYFIN_TOKEN" : "EMBY_TOKEN",
                       jf ? "must be set when JELLYFIN_URL is set (Jellyfin's API always needs a key)"
                          : "must be set when EMBY_URL is set (Emby's API always needs a key)");
        return;
    }
    target_shorthand(&x->c, kind, url, token, repl->set ? &repl->r : &x->c.path_repl, ca);
    x->c.targets[x->c.n_targets - 1].path_repl_own = repl->set;
}

/* What config_json.c says of a list's items, into the report under the variable's name. */
typedef struct list_sink {
    cfg_ctx *x;
    const char *var;
} list_sink;

static void list_error(void *ud, const char *why)
{
    list_sink *s = ud;
    rep_error(s->x, "%s: %s", s->var, why);
}

static void list_warn(void *ud, const char *text)
{
    list_sink *s = ud;
    rep_warn(s->x, "%s: %s", s->var, text);
}

/* MEDIA_SERVERS after the shorthands; a name must be unique across every target. */
static void targets_from_list(cfg_ctx *x)
{
    config_t *c = &x->c;
    list_sink ls = {.x = x, .var = "MEDIA_SERVERS"};
    cfg_json_sink sink = {.error = list_error, .warn = list_warn, .ud = &ls};
    cfg_target_defaults d = {.path_repl = &c->path_repl, .timeout_ms = c->plex_timeout_ms,
                             .empty_trash = c->plex_empty_trash, .read_secret = cfg_secret_file_read,
                             .check_ca_file = cfg_ca_file_check, .sink = &sink};
    cfg_target *items = NULL;
    size_t n = 0;
    char why[WHY_MAX];
    if (cfg_json_targets(x->media_servers, &d, &items, &n, why, sizeof why) != 0 && why[0])
        rep_error(x, "MEDIA_SERVERS: %s", why);
    for (size_t i = 0; i < n; i++) {
        bool taken = !items[i].name; /* a bad item, already told */
        for (size_t j = 0; j < c->n_targets && !taken; j++) {
            if (strcmp(c->targets[j].name, items[i].name) == 0) {
                rep_error(x, "MEDIA_SERVERS: item %zu (%s): the name is already used by %s", i + 1, items[i].name,
                          c->targets[j].origin);
                taken = true;
            }
        }
        if (!taken && c->n_targets >= CFG_TARGETS_MAX) {
            rep_error(x, "MEDIA_SERVERS: more than %d media servers in all (PLEX_URL, JELLYFIN_URL, EMBY_URL and "
                      "MEDIA_SERVERS together)", CFG_TARGETS_MAX);
            break;
        }
        if (!taken) {
            c->targets = xrealloc(c->targets, (c->n_targets + 1) * sizeof *c->targets);
            c->targets[c->n_targets++] = items[i];
            memset(&items[i], 0, sizeof items[i]);
        }
    }
    for (size_t i = 0; i < n; i++)
        cfg_target_free(&items[i]);
    free(items);
}

/* config_t.targets: `plex` (PLEX_URL), `jellyfin`, `emby`, then each MEDIA_SERVERS item. */
static void targets_combine(cfg_ctx *x)
{
    config_t *c = &x->c;
    const char *plex_url = c->plex_url && *c->plex_url ? c->plex_url : NULL;
    const char *plex_ca = target_ca(x, TARGET_PLEX, x->plex_ca, plex_url);
    if (plex_url)
        target_shorthand(c, TARGET_PLEX, c->plex_url, c->plex_token, &c->path_repl, plex_ca);
    target_media_browser(x, TARGET_JELLYFIN, x->jf_url, x->jf_token, &x->jf_repl, x->jf_ca);
    target_media_browser(x, TARGET_EMBY, x->emby_url, x->emby_token, &x->emby_repl, x->emby_ca);
    if (x->media_servers)
        targets_from_list(x);
}

/* One TRUSTED_PROXIES item ("192.0.2.7", "10.0.0.0/8", "::1", "fd00::/8") into *out. */
static bool cidr_parse(const char *s, size_t len, cfg_cidr *out)
{
    char text[64];
    if (len == 0 || len >= sizeof text)
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    char *slash = strchr(text, '/');
    long prefix = -1;
    if (slash) {
        *slash = '\0';
        const char *d = slash + 1;
        if (!*d || strlen(d) > 3)
            return false;
        prefix = 0;
        for (; *d; d++) {
            if (*d < '0' || *d > '9')
                return false;
            prefix = prefix * 10 + (*d - '0');
        }
    }
    unsigned char a4[4];
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, text, a4) == 1) {
        if (prefix > 32)
            return false;
        out->addr[10] = out->addr[11] = 0xff;
        memcpy(out->addr + 12, a4, 4);
        out->prefix = prefix < 0 ? 128 : (unsigned)prefix + 96;
    } else if (inet_pton(AF_INET6, text, out->addr) == 1) {
        if (prefix > 128)
            return false;
        out->prefix = prefix < 0 ? 128 : (unsigned)prefix;
    } else {
        return false;
    }
    for (unsigned bit = out->prefix; bit < 128; bit++) /* network address: host bits cleared */
        out->addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
    return true;
}

/* TRUSTED_PROXIES: comma-separated IPs and CIDRs (spaces around items ignored). */
static void trusted_parse(cfg_ctx *x)
{
    config_t *c = &x->c;
    const char *p = c->trusted_proxies;
    if (!p)
        return;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && (*b == ' ' || *b == '\t'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > b) {
            cfg_cidr one;
            if (!cidr_parse(b, (size_t)(e - b), &one)) {
                cross_fail(x, "TRUSTED_PROXIES",
                           "each item must be an IPv4 or IPv6 address, optionally with a /prefix");
                return;
            }
            c->trusted = xrealloc(c->trusted, (c->n_trusted + 1) * sizeof *c->trusted);
            c->trusted[c->n_trusted++] = one;
        }
        p = *end ? end + 1 : end;
    }
}

/* On failure *out is left untouched, so a reload can build straight over a live config only
 * after success (build into a scratch config_t, then swap). */
int config_build_report(config_t *out, const env_map *env, const env_map *file_vars, config_report *rep)
{
    _Static_assert(ARRAY_SIZE(opts) <= OPTS_MAX, "raise OPTS_MAX");
    cfg_ctx x;
    memset(&x, 0, sizeof x);
    x.env = env;
    x.file = file_vars;
    x.rep = rep;
    size_t errors_before = rep->n_errors;
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
        opt_apply(&x, i);
    x.c.local_path_repl_set = x.c.local_path_repl.n > 0;
    cross_checks(&x);
    trusted_parse(&x);
    mounts_combine(&x);
    targets_combine(&x);
    int rc = rep->n_errors > errors_before ? -EINVAL : 0;
    if (rc == 0) {
        *out = x.c;
        memset(&x.c, 0, sizeof x.c);
    }
    ctx_free(&x);
    return rc;
}

/* The first error of a report into err, with how many more there are. */
static void report_first(const config_report *r, char *err, size_t errlen)
{
    if (r->n_errors > 1)
        errbuf_set(err, errlen, "%s (and %zu more error%s)", r->errors[0], r->n_errors - 1,
                   r->n_errors == 2 ? "" : "s");
    else if (r->n_errors == 1)
        errbuf_set(err, errlen, "%s", r->errors[0]);
    else
        errbuf_set(err, errlen, "invalid configuration");
}

int config_build(config_t *out, const env_map *env, const env_map *file_vars, char *err, size_t errlen)
{
    config_report rep = {0};
    int rc = config_build_report(out, env, file_vars, &rep);
    for (size_t i = 0; i < rep.n_warnings; i++)
        log_warn("%s", log_esc(rep.warnings[i]));
    if (rc)
        report_first(&rep, err, errlen);
    config_report_free(&rep);
    return rc;
}

static void keys_warn(void *ud, const char *line)
{
    config_report *rep = ud;
    lines_add(&rep->warnings, &rep->n_warnings, line);
}

/* Every name config_build reads from an env file: the table's, and NAME_FILE for its secrets. */
static void env_file_keys_check(const env_map *file, const char *path, const env_map *env, config_report *rep)
{
    const char *known[2 * ARRAY_SIZE(opts)];
    char files[ARRAY_SIZE(opts)][64];
    size_t n = 0, nf = 0;
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
        known[n++] = opts[i].name;
        if (opts[i].flags & OPT_FILE) {
            snprintf(files[nf], sizeof files[nf], "%s_FILE", opts[i].name);
            known[n++] = files[nf++];
        }
    }
    config_keys_check(file, path, env, known, n, keys_warn, rep);
}

int config_load(config_t *out, const env_map *env, const char *env_file, config_report *rep)
{
    env_map file = {0};
    char err[512];
    const char *path = env_file ? env_file : "./.env";
    int rc = dotenv_load(path, &file, err, sizeof err);
    if (rc == -ENOENT && !env_file) {
        rc = 0; /* ./.env is optional; one that exists but cannot be read or parsed is an error */
    } else if (rc) {
        lines_add(&rep->errors, &rep->n_errors, err);
        goto out;
    } else {
        log_debug("read %s", log_esc(path));
        env_file_keys_check(&file, path, env, rep);
    }
    rc = config_build_report(out, env, &file, rep);
out:
    env_map_free(&file);
    return rc;
}

void config_free(config_t *c)
{
    if (!c)
        return;
    free(c->plex_url);
    free(c->public_url);
    free(c->url_base);
    free(c->plex_token);
    free(c->plex_identifier);
    for (size_t i = 0; i < c->n_section_map; i++)
        free(c->section_map[i].prefix);
    free(c->section_map);
    free(c->bind_address);
    free(c->state_dir);
    free(c->webhook_user);
    free(c->webhook_pass);
    free(c->manual_user);
    free(c->manual_pass);
    free(c->trusted_proxies);
    free(c->trusted);
    for (size_t i = 0; i < c->n_mounts; i++)
        cfg_mount_free(&c->mounts[i]);
    free(c->mounts);
    cfg_replacements_free(&c->path_repl);
    cfg_replacements_free(&c->rclone_path_repl);
    cfg_replacements_free(&c->local_path_repl);
    for (size_t i = 0; i < c->n_anchors; i++)
        free(c->anchors[i]);
    free(c->anchors);
    for (size_t i = 0; i < c->n_targets; i++)
        cfg_target_free(&c->targets[i]);
    free(c->targets);
    for (size_t i = 0; i < c->n_notify; i++)
        cfg_notify_free(&c->notify[i]);
    free(c->notify);
    free(c->tz);
    memset(c, 0, sizeof *c);
}

void config_print_help(void)
{
    printf("Configuration (environment variables; a .env file or --env-file fills in the rest).\n"
           "Durations: 30 (seconds), 30s, 5m, 1h, 1d, 250ms. JSON values may be wrapped in '...'.\n\n");
    printf("%-26s %-18s %s\n", "VARIABLE", "DEFAULT", "MEANING");
    for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
        const cfg_opt *o = &opts[i];
        printf("%-26s %-18s %s", o->name, o->def ? o->def : "-", o->help);
        if (o->choices)
            printf(" (%s)", o->choices);
        if (o->def_env)
            printf(" (default: $%s when set)", o->def_env);
        putchar('\n');
        if (o->flags & OPT_FILE) {
            char var[64];
            snprintf(var, sizeof var, "%s_FILE", o->name);
            printf("%-26s %-18s file holding %s (one trailing newline dropped; not both)\n", var, "-", o->name);
        }
    }
}
