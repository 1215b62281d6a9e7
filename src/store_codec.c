/* store_codec.c: how the store spells a row's values: the persisted names of entry states,
 * history statuses and delivery states, and the file and delivery lists as BLOBs. Pure (no
 * SQLite), below store.c, which lends it to its readers through store_internal.h. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_internal.h"
#include "util.h"

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* Persisted state names: our own table so the database does not depend on how the queue spells
 * them in its API. */
static const char *const state_names[] = {
    [ENTRY_UNRESOLVED] = "unresolved", [ENTRY_WAITING] = "waiting",   [ENTRY_AGING] = "aging",
    [ENTRY_HELD] = "held",             [ENTRY_READY] = "ready",       [ENTRY_CHECKING] = "checking",
    [ENTRY_SYNCING] = "syncing",       [ENTRY_RETRY] = "retry",       [ENTRY_PARKED] = "parked",
};
_Static_assert(ARRAY_SIZE(state_names) == ENTRY_STATE_COUNT, "a state has no persisted name");

static const char *const hist_names[] = {
    [HIST_OK] = "ok",
    [HIST_FAILED] = "failed",
    [HIST_PARKED] = "parked",
    [HIST_SKIPPED] = "skipped",
    [HIST_RETRYING] = "retrying",
    [HIST_WARNING] = "warning",
    [HIST_CANCELLED] = "cancelled",
};
_Static_assert(ARRAY_SIZE(hist_names) == HIST_STATUS_COUNT, "a history status has no name");

const char *hist_status_name(hist_status st)
{
    if ((unsigned)st < ARRAY_SIZE(hist_names))
        return hist_names[st];
    return "unknown";
}

const char *store_state_name(entry_state st)
{
    if ((unsigned)st < ARRAY_SIZE(state_names))
        return state_names[st];
    return state_names[ENTRY_WAITING];
}

bool store_state_parse(const char *name, entry_state *out)
{
    for (size_t i = 0; name && i < ARRAY_SIZE(state_names); i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *out = (entry_state)i;
            return true;
        }
    }
    return false;
}

/* ---- files encoding ---- */

void store_files_encode(const char *const *files, size_t n, unsigned char **out, size_t *outlen)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(nz(files[i])) + 1;
    *out = NULL;
    *outlen = len;
    if (len == 0)
        return;
    unsigned char *p = xmalloc(len);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(nz(files[i])) + 1;
        memcpy(p + off, nz(files[i]), l);
        off += l;
    }
    *out = p;
}

void store_files_decode(const void *blob, size_t len, store_files_view *fv)
{
    fv->bytes = NULL;
    fv->v = NULL;
    fv->n = 0;
    if (!blob || len == 0)
        return;
    fv->bytes = xmalloc(len + 1);
    memcpy(fv->bytes, blob, len);
    fv->bytes[len] = '\0'; /* a truncated last path still ends */
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (fv->bytes[i] == '\0')
            n++;
    if (fv->bytes[len - 1] != '\0')
        n++;
    fv->v = xcalloc(n, sizeof *fv->v);
    size_t off = 0;
    while (off < len && fv->n < n) {
        fv->v[fv->n++] = fv->bytes + off;
        off += strlen(fv->bytes + off) + 1;
    }
}

void store_files_view_free(store_files_view *fv)
{
    free(fv->bytes);
    free(fv->v);
}

/* Deliveries are a BLOB of four strings each (target, library, state, error; "" = no error),
 * encoded like the files. */
static const char *const delivery_names[] = {
    [DELIVERY_PENDING] = "pending", [DELIVERY_UNRESOLVED] = "unresolved", [DELIVERY_DONE] = "done",
    [DELIVERY_RETRY] = "retry",     [DELIVERY_PARKED] = "parked",
};
_Static_assert(ARRAY_SIZE(delivery_names) == DELIVERY_STATE_COUNT, "a delivery state has no persisted name");

void store_deliveries_encode(const q_entry *e, unsigned char **out, size_t *outlen)
{
    const char **v = xcalloc(e->n_deliv * 4 + 1, sizeof *v);
    for (size_t i = 0; i < e->n_deliv; i++) {
        const q_delivery *d = &e->deliv[i];
        v[4 * i] = d->target;
        v[4 * i + 1] = d->library;
        v[4 * i + 2] = (unsigned)d->state < DELIVERY_STATE_COUNT ? delivery_names[d->state] : "pending";
        v[4 * i + 3] = d->error ? d->error : "";
    }
    store_files_encode(v, e->n_deliv * 4, out, outlen);
    free(v);
}

/* Into e->deliv (the strings point into fv, which the caller frees after use). */
void store_deliveries_decode(const void *blob, size_t len, store_files_view *fv, q_entry *e)
{
    store_files_decode(blob, len, fv);
    size_t n = fv->n / 4;
    if (n > QUEUE_MAX_DELIVERIES)
        n = QUEUE_MAX_DELIVERIES; /* a queue never wrote more */
    e->deliv = n ? xcalloc(n, sizeof *e->deliv) : NULL;
    e->n_deliv = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        q_delivery *d = &e->deliv[i];
        d->target = fv->v[4 * i];
        d->library = fv->v[4 * i + 1];
        d->state = DELIVERY_PENDING;
        for (size_t k = 0; k < ARRAY_SIZE(delivery_names); k++)
            if (strcmp(fv->v[4 * i + 2], delivery_names[k]) == 0)
                d->state = (delivery_state)k;
        d->error = fv->v[4 * i + 3][0] ? fv->v[4 * i + 3] : NULL;
    }
}
