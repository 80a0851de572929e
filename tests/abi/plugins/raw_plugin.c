/*
 * A plugin written against the raw C ABI, compiled once per variant: every FOBS_BREAK_* macro
 * (set by tests/abi/CMakeLists.txt) breaks exactly one rule the loader checks, so each variant
 * must be refused with its own message (FOBS_BREAK_CREATE_FAILS loads, but its `create` fails).
 * Without any macro it is a valid plugin ("raw_ok") offering an action and a transport, which
 * proves that the C header alone is enough.
 */
#include <fraiseql_observer/abi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(FOBS_RAW_V10)
/* A plugin as built against the 1.0 headers: 1.0 entry and descriptor sizes, no
 * capabilities, and the 1.0 admin ops the host's CLI falls back to. */
#define FOBS_PLUGIN_NAME "raw_v10"
#define FOBS_ENTRY_MINOR 0
#define FOBS_ENTRY_SIZE offsetof(fobs_plugin_entry, min_host_minor)
#define FOBS_TRANSPORT_DESC_SIZE offsetof(fobs_transport_desc, config_keys)
#define FOBS_ACTION_DESC_SIZE offsetof(fobs_action_desc, config_keys)
#define FOBS_TRANSPORT_ADMIN raw_admin
#elif defined(FOBS_RAW_NAME)
#define FOBS_PLUGIN_NAME FOBS_RAW_NAME
#elif defined(FOBS_BREAK_BAD_NAME)
#define FOBS_PLUGIN_NAME "Raw-OK" /* names are [a-z0-9_]+ */
#elif defined(FOBS_BREAK_CREATE_FAILS)
#define FOBS_PLUGIN_NAME "raw_create_fails"
#else
#define FOBS_PLUGIN_NAME "raw_ok"
#endif
#if defined(FOBS_BREAK_EMPTY_VERSION)
#define FOBS_PLUGIN_VERSION ""
#else
#define FOBS_PLUGIN_VERSION "1.0.0"
#endif
#ifndef FOBS_ENTRY_MAJOR
#define FOBS_ENTRY_MAJOR FOBS_ABI_MAJOR
#endif
#ifndef FOBS_ENTRY_MINOR
#define FOBS_ENTRY_MINOR FOBS_ABI_MINOR
#endif
#ifndef FOBS_ENTRY_MIN_HOST_MINOR
#define FOBS_ENTRY_MIN_HOST_MINOR FOBS_ENTRY_MINOR
#endif
#ifndef FOBS_ENTRY_SIZE
#define FOBS_ENTRY_SIZE sizeof(fobs_plugin_entry)
#endif
#ifndef FOBS_TRANSPORT_DESC_SIZE
#define FOBS_TRANSPORT_DESC_SIZE sizeof(fobs_transport_desc)
#endif
#ifndef FOBS_TRANSPORT_ADMIN
#define FOBS_TRANSPORT_ADMIN NULL
#endif
#ifndef FOBS_ACTION_DESC_SIZE
#define FOBS_ACTION_DESC_SIZE sizeof(fobs_action_desc)
#endif
/* FOBS_FN(flag, f) is NULL instead of `f` when FOBS_BREAK_NULL_<f> is defined. */
#define FOBS_FN(flag, fn) ((flag) ? NULL : (fn))

typedef struct raw_instance {
    const fobs_host *host;
    int started;
} raw_instance;

static void copy_text(char *dst, size_t cap, const char *src) {
    size_t n;
    if (dst == NULL || cap == 0) return;
    n = strlen(src);
    if (n > cap - 1) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* With $FOBS_ABI_LIFECYCLE_LOG set, every library and instance lifecycle call appends one line
 * ("init", "create", "destroy", "deinit") to that file, so a test can see each happen once
 * and in order (a file, because the library is unloaded when the test reads it). */
static void lifecycle(const char *what) {
    const char *path = getenv("FOBS_ABI_LIFECYCLE_LOG");
    FILE *f;
    if (path == NULL || *path == '\0') return;
    f = fopen(path, "a");
    if (f == NULL) return;
    fprintf(f, "%s\n", what);
    fclose(f);
}

static void *raw_create(const fobs_host *host, fobs_error *err) {
    raw_instance *self;
#ifdef FOBS_BREAK_CREATE_FAILS
    /* The plugin's own words and the offending key must reach the operator unchanged. */
    copy_text(err->message, err->message_capacity, "raw plugin: 'endpoint' must be an https URL");
    copy_text(err->key_path, err->key_path_capacity, "target.endpoint");
    err->retriable = 0;
    return NULL;
#else
    (void)err;
#endif
    self = (raw_instance *)calloc(1, sizeof(*self));
    if (self == NULL) {
        copy_text(err->message, err->message_capacity, "out of memory");
        return NULL;
    }
    self->host = host;
    lifecycle("create");
    return self;
}

static void raw_destroy(void *self) {
    lifecycle("destroy");
    free(self);
}

#if FOBS_ABI_MINOR >= 1
static fobs_status raw_init(fobs_error *err) {
#ifdef FOBS_BREAK_INIT_FAILS
    copy_text(err->message, err->message_capacity, "raw plugin: the client library did not start");
    return FOBS_ERR;
#else
    (void)err;
    lifecycle("init");
    return FOBS_OK;
#endif
}

static void raw_deinit(void) { lifecycle("deinit"); }
#endif

static fobs_status raw_start(void *self, fobs_error *err) {
    (void)err;
    ((raw_instance *)self)->started = 1;
    return FOBS_OK;
}

static void raw_stop(void *self) { ((raw_instance *)self)->started = 0; }

static void complete_ok(const fobs_completion *done) {
    fobs_outcome o;
    memset(&o, 0, sizeof(o));
    o.struct_size = sizeof(o);
    o.kind = FOBS_OUTCOME_OK;
    o.retry_after_ms = -1;
    done->complete(done, &o);
}

static void raw_execute(void *self, const fobs_event *event, const fobs_completion *done) {
    (void)self;
    (void)event;
    complete_ok(done);
}

static void raw_publish(void *self, const fobs_event *event, const fobs_completion *done) {
    (void)self;
    (void)event;
    complete_ok(done);
}

static fobs_status raw_consumer_open(void *self, const fobs_consumer_options *options,
                                     const fobs_consumer_sink *sink, void **consumer,
                                     fobs_error *err) {
    (void)options;
    (void)sink;
    (void)err;
    *consumer = self;
    return FOBS_OK;
}

static void raw_consumer_close(void *self, void *consumer) {
    (void)self;
    (void)consumer;
}

#ifdef FOBS_RAW_V10
static int contains(fobs_str s, const char *needle) {
    size_t n = strlen(needle), i;
    for (i = 0; i + n <= s.size; ++i)
        if (memcmp(s.data + i, needle, n) == 0) return 1;
    return 0;
}

/* The 1.0 way: free-form ops, shapes the component chose. */
static fobs_status raw_admin(void *self, fobs_str request, fobs_write_fn write, void *closure,
                             fobs_error *err) {
    static const char status[] =
        "{\"backlog\":5,\"queue\":{\"name\":\"legacy\",\"depth\":2},"
        "\"workers\":[{\"id\":\"w1\",\"busy\":true}]}";
    static const char list[] = "{\"depth\":0,\"entries\":[]}";
    const char *answer = NULL;
    fobs_str out;
    (void)self;
    (void)err;
    if (contains(request, "\"op\":\"status\"")) answer = status;
    else if (contains(request, "\"op\":\"dlq_list\"")) answer = list;
    if (answer == NULL) return FOBS_ERR_UNSUPPORTED;
    out.data = answer;
    out.size = strlen(answer);
    write(closure, out);
    return FOBS_OK;
}
#endif

#ifdef FOBS_BREAK_NULL_create
#define NULL_create 1
#else
#define NULL_create 0
#endif
#ifdef FOBS_BREAK_NULL_destroy
#define NULL_destroy 1
#else
#define NULL_destroy 0
#endif
#ifdef FOBS_BREAK_NULL_start
#define NULL_start 1
#else
#define NULL_start 0
#endif
#ifdef FOBS_BREAK_NULL_stop
#define NULL_stop 1
#else
#define NULL_stop 0
#endif
#ifdef FOBS_BREAK_NULL_execute
#define NULL_execute 1
#else
#define NULL_execute 0
#endif
#ifdef FOBS_BREAK_NULL_publish
#define NULL_publish 1
#else
#define NULL_publish 0
#endif
#ifdef FOBS_BREAK_NULL_consumer_open
#define NULL_consumer_open 1
#else
#define NULL_consumer_open 0
#endif
#ifdef FOBS_BREAK_NULL_consumer_close
#define NULL_consumer_close 1
#else
#define NULL_consumer_close 0
#endif

/* create/destroy/start/stop are NULLed in the action descriptor; publish & co. in the
 * transport descriptor. */
/* unused (and so marked) in the variants that offer no component */
__attribute__((unused)) static const fobs_action_desc raw_action = {
    FOBS_ACTION_DESC_SIZE,
    FOBS_FN(NULL_create, raw_create),
    FOBS_FN(NULL_destroy, raw_destroy),
    FOBS_FN(NULL_start, raw_start),
    FOBS_FN(NULL_stop, raw_stop),
    NULL, /* ready: optional */
    NULL, /* admin: optional */
    FOBS_FN(NULL_execute, raw_execute),
#if FOBS_ABI_MINOR >= 1
    NULL, /* config_keys: checks its config itself */
    0,
    NULL, /* get_capability */
#endif
};

__attribute__((unused)) static const fobs_transport_desc raw_transport = {
    FOBS_TRANSPORT_DESC_SIZE,
    raw_create,
    raw_destroy,
    raw_start,
    raw_stop,
    NULL,
    FOBS_TRANSPORT_ADMIN,
    FOBS_FN(NULL_publish, raw_publish),
    FOBS_FN(NULL_consumer_open, raw_consumer_open),
    FOBS_FN(NULL_consumer_close, raw_consumer_close),
#if FOBS_ABI_MINOR >= 1
    NULL,
    0,
    NULL,
#endif
};

#ifdef FOBS_BREAK_NO_NAME
#define ENTRY_NAME NULL
#else
#define ENTRY_NAME FOBS_PLUGIN_NAME
#endif

#ifdef FOBS_BREAK_NO_COMPONENT
#define ENTRY_ACTION NULL
#define ENTRY_TRANSPORT NULL
#else
#define ENTRY_ACTION (&raw_action)
#define ENTRY_TRANSPORT (&raw_transport)
#endif

__attribute__((unused)) static const fobs_plugin_entry raw_entry = {
    (uint32_t)(FOBS_ENTRY_SIZE),
    FOBS_ENTRY_MAJOR,
    FOBS_ENTRY_MINOR,
    ENTRY_NAME,
    FOBS_PLUGIN_VERSION,
    "raw C ABI test plugin",
    NULL,
    ENTRY_TRANSPORT,
    ENTRY_ACTION,
#if FOBS_ABI_MINOR >= 1 /* built against the frozen 1.0 header, the entry ends above */
    FOBS_ENTRY_MIN_HOST_MINOR,
    raw_init,
    raw_deinit,
#endif
};

#ifdef FOBS_BREAK_NO_ENTRY
/* Looks like a plugin to a careless loader, but exports the wrong name. */
FOBS_EXPORT const fobs_plugin_entry *fobs_plugin_get_entry_v1(void) { return &raw_entry; }
#else
FOBS_EXPORT const fobs_plugin_entry *fobs_plugin_get_entry(void) {
#ifdef FOBS_BREAK_ENTRY_NULL
    return NULL;
#else
    return &raw_entry;
#endif
}
#endif

#ifdef FOBS_BREAK_UNDEFINED_SYMBOL
/* Never defined anywhere: with immediate binding (RTLD_NOW) the library must fail to load
 * instead of crashing the host at the first call. */
extern void fobs_test_function_that_does_not_exist(void);
FOBS_EXPORT void fobs_test_calls_missing(void) { fobs_test_function_that_does_not_exist(); }
#endif
