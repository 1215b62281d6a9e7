/* sources.c: what each sender last sent (sources.h): counted and remembered as requests are
 * taken or refused, staged into the store once per loop turn. */
#include "sources.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const names[SOURCE_COUNT] = {"sonarr", "radarr", "lidarr", "readarr", "manual"};

source_id source_of(arr_app app)
{
    return ARR_APP_HAS_PAYLOAD(app) ? (source_id)app : SOURCE_MANUAL;
}

const char *source_name(source_id id)
{
    return (unsigned)id < SOURCE_COUNT ? names[id] : "unknown";
}

static void set_text(char **dst, const char *text)
{
    char *t = xstrdup(text);
    free(*dst);
    *dst = t;
}

void sources_note(sources *s, arr_app app, const char *type, const char *title, bool test, uint64_t at)
{
    source_seen *x = &s->v[source_of(app)];
    x->events++;
    if (!x->last_type || strcmp(x->last_type, type ? type : "") != 0) /* mostly the same word */
        set_text(&x->last_type, type ? type : "");
    set_text(&x->last_title, title);
    x->last_at = at;
    if (test)
        x->last_test_at = at;
    x->dirty = true;
}

void sources_note_refused(sources *s, arr_app app, int status, const char *reason, uint64_t at)
{
    source_seen *x = &s->v[source_of(app)];
    x->refused_at = at;
    x->refused_status = status;
    set_text(&x->refused_reason, reason);
}

static void stage(const source_seen *x, source_id id, store_t *st)
{
    store_source row = {
        .app = names[id],
        .events = x->events,
        .last_type = x->last_type,
        .last_title = x->last_title,
        .last_at = x->last_at,
        .last_test_at = x->last_test_at,
    };
    store_stage_source(st, &row);
}

void sources_flush(sources *s, store_t *st)
{
    for (int i = 0; i < SOURCE_COUNT; i++) {
        if (!s->v[i].dirty)
            continue;
        stage(&s->v[i], (source_id)i, st);
        s->v[i].dirty = false;
    }
}

void sources_stage_all(sources *s, store_t *st)
{
    for (int i = 0; i < SOURCE_COUNT; i++)
        if (s->v[i].last_at)
            stage(&s->v[i], (source_id)i, st);
}

void sources_load(sources *s, const store_source *row)
{
    for (int i = 0; i < SOURCE_COUNT; i++) {
        if (strcmp(row->app, names[i]) != 0)
            continue;
        source_seen *x = &s->v[i];
        x->events = row->events;
        set_text(&x->last_type, row->last_type);
        set_text(&x->last_title, row->last_title);
        x->last_at = row->last_at;
        x->last_test_at = row->last_test_at;
        return;
    }
}

void sources_free(sources *s)
{
    for (int i = 0; i < SOURCE_COUNT; i++) {
        free(s->v[i].last_type);
        free(s->v[i].last_title);
        free(s->v[i].refused_reason);
    }
    memset(s, 0, sizeof *s);
}
