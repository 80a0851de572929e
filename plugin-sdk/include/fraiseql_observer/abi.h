/*
 * fraiseql-observer plugin ABI, version 1.1 (C99). Every 1.0 plugin loads unchanged.
 *
 * This header is the whole contract between the fraiseql-observer host and a plugin. Every
 * source, transport and action -- the shipped ones too -- is a shared library that exports one
 * symbol, `fobs_plugin_get_entry`, and talks to the host only through the types below.
 *
 * Rules that keep old plugins loading into new hosts (and the other way round):
 *  - Only C types cross the boundary: fixed-width integers, doubles, `fobs_str` views, function
 *    pointers and opaque `void *`. No C++ types, and no exception ever unwinds through a
 *    function declared here.
 *  - Every struct starts with `uint32_t struct_size` (set to `sizeof` by whoever fills it in) and
 *    only ever grows at its end. A reader never touches a field that lies beyond the
 *    `struct_size` it was given; use FOBS_HAS_FIELD() for fields added after 1.0.
 *  - A plugin built for ABI major M, minor m loads into a host of major M, minor n >= m, or
 *    (1.1) into an older host of minor n >= the entry's `min_host_minor`, where the host uses
 *    only the fields it knows. Anything else is refused with a message naming both versions
 *    and the file.
 *
 * Thread and lifetime tags used in the comments below:
 *  [main-thread]  called by the host's main (control) thread only, never concurrently with
 *                 another [main-thread] call on the same instance.
 *  [any-thread]   may be called from any thread, concurrently; the callee must be thread-safe.
 *  [borrowed]     the pointer (or view) is valid only for the duration of the call; copy what
 *                 you need to keep.
 *  [until-X]      valid until X happens.
 */
#ifndef FRAISEQL_OBSERVER_ABI_H
#define FRAISEQL_OBSERVER_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------- */
/* Versions and export                                                                      */
/* ---------------------------------------------------------------------------------------- */

#define FOBS_ABI_MAJOR 1
#define FOBS_ABI_MINOR 1

/* The one symbol a plugin library exports. */
#define FOBS_ENTRY_SYMBOL "fobs_plugin_get_entry"

#if defined(_WIN32)
#define FOBS_EXPORT __declspec(dllexport)
#else
#define FOBS_EXPORT __attribute__((visibility("default")))
#endif

/* True when the struct at `ptr` (not NULL), whose writer set `struct_size`, contains `field`
 * entirely. */
#define FOBS_HAS_FIELD(ptr, type, field)                                                       \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/* ---------------------------------------------------------------------------------------- */
/* Basic types                                                                              */
/* ---------------------------------------------------------------------------------------- */

/* A borrowed UTF-8 string view: `size` bytes at `data`, not necessarily NUL-terminated.
 * `data` may be NULL only when `size` is 0. Ownership and lifetime are stated where used. */
typedef struct fobs_str {
    const char *data;
    size_t size;
} fobs_str;

/* Status codes returned by functions that can fail synchronously. */
typedef int32_t fobs_status;
enum {
    FOBS_OK = 0,
    FOBS_ERR = 1,          /* failed; details in the fobs_error the caller passed */
    FOBS_ERR_CONFIG = 2,   /* the configuration is invalid; `key_path` names the key */
    FOBS_ERR_UNSUPPORTED = 3 /* the optional operation is not offered */
};

/* Error report, librdkafka-style: the caller owns both buffers and passes their capacity;
 * the callee writes NUL-terminated text (truncating if needed). Either buffer may be NULL
 * with capacity 0. `retriable` tells whether trying again later could succeed. */
typedef struct fobs_error {
    uint32_t struct_size;
    char *message;          /* human-readable reason */
    size_t message_capacity;
    char *key_path;         /* config key the error is about, dot-separated, relative to the
                               component's own table ("jetstream.max_deliver"); "" if none */
    size_t key_path_capacity;
    int32_t retriable;      /* 1 = transient, 0 = permanent */
} fobs_error;

/* Log levels (same order as spdlog's). */
typedef int32_t fobs_log_level;
enum {
    FOBS_LOG_TRACE = 0,
    FOBS_LOG_DEBUG = 1,
    FOBS_LOG_INFO = 2,
    FOBS_LOG_WARN = 3,
    FOBS_LOG_ERROR = 4
};

/* Metric types for the metrics host service. */
typedef int32_t fobs_metric_type;
enum {
    FOBS_METRIC_COUNTER = 0,
    FOBS_METRIC_GAUGE = 1,
    FOBS_METRIC_HISTOGRAM = 2
};

/* A metric label (name = value). Both views are [borrowed]. */
typedef struct fobs_label {
    fobs_str name;
    fobs_str value;
} fobs_label;

/* Opaque handle to one metric series (family + label values), owned by the host. */
typedef struct fobs_metric fobs_metric;

/* ---------------------------------------------------------------------------------------- */
/* Outcomes and completion tokens                                                           */
/* ---------------------------------------------------------------------------------------- */

/* What happened to one unit of work. */
typedef int32_t fobs_outcome_kind;
enum {
    FOBS_OUTCOME_OK = 0,     /* done; never needs doing again */
    FOBS_OUTCOME_RETRY = 1,  /* transient failure; do it again later */
    FOBS_OUTCOME_FAILED = 2  /* permanent failure; do not retry (dead-letter / reject) */
};

/* The result reported through a completion. [borrowed] for the duration of `complete`. */
typedef struct fobs_outcome {
    uint32_t struct_size;
    fobs_outcome_kind kind;
    /* RETRY only: how long to wait before the next attempt, in milliseconds, or -1 to let the
     * receiver choose (e.g. the transport's backoff schedule). Ignored for OK and FAILED. */
    int64_t retry_after_ms;
    /* Why (RETRY / FAILED): a short human-readable reason. May be empty. */
    fobs_str reason;
    /* Who reached the outcome (e.g. the action's name), filled in by the host when it
     * aggregates; plugins may leave it empty. */
    fobs_str component;
} fobs_outcome;

/* A completion token: every unit of work handed across the boundary carries one, and whoever
 * receives the work calls `complete` exactly once, from any thread, when the work is settled.
 *
 * The side that creates the token owns its memory; it stays valid until `complete` is called
 * and may be freed inside that call, so calling `complete` a second time (or touching the token
 * afterwards) is a contract violation with undefined behaviour. A plugin that can no longer
 * finish the work must still complete with RETRY; the C++ wrapper does this automatically when a
 * Completion object is dropped.
 *
 * `complete` may run on the caller's thread before the function that handed over the work
 * returns; it must not block for long and must not call back into the same component. */
typedef struct fobs_completion {
    uint32_t struct_size;
    void *ctx; /* owned by the token's creator */
    void (*complete)(const struct fobs_completion *self, const fobs_outcome *outcome); /* [any-thread] */
} fobs_completion;

/* ---------------------------------------------------------------------------------------- */
/* Events                                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* One normalised event (SPEC section 4). All views are [borrowed] for the duration of the
 * call that passes the event; copy what must outlive it. `body` is the canonical event JSON
 * and is exactly what transports store and actions send. */
typedef struct fobs_event {
    uint32_t struct_size;
    fobs_str id;           /* stable event id (UUID text) */
    fobs_str entity_type;  /* a valid NATS subject token */
    fobs_str operation;    /* upper-case, a valid NATS subject token */
    fobs_str entity_id;
    fobs_str source;       /* name of the source that produced it; may be empty */
    fobs_str body;         /* canonical JSON object */
    /* Consuming side only: 1 for the first delivery, 2 for the first redelivery, ...
     * 0 when unknown (and on the publishing side). */
    uint32_t delivery_count;
    /* Consuming side only: a transport-specific position (e.g. JetStream stream sequence),
     * 0 when not applicable. */
    uint64_t sequence;
} fobs_event;

/* ---------------------------------------------------------------------------------------- */
/* Host services                                                                            */
/* ---------------------------------------------------------------------------------------- */

/* The host's services for one plugin instance. Passed to `create`; the pointer and everything
 * it points to stay valid [until-destroy] of that instance returns. All functions are
 * [any-thread] and never fail in a way the plugin must handle. */
typedef struct fobs_host {
    uint32_t struct_size;
    uint16_t abi_major; /* the host's ABI version */
    uint16_t abi_minor;
    void *ctx;          /* host-owned; pass `self` back, do not touch */

    fobs_str host_version;  /* e.g. "0.1.0" */
    fobs_str instance_name; /* logger name: "pipeline/component" or "component" */
    fobs_str component_name; /* the config name of this instance ("order_webhook") */
    fobs_str config_json;    /* this instance's config table as a JSON object (env
                                interpolation already applied) */

    /* Logging through the host's logger for this instance. `event_id` may be empty; when set,
     * structured logs carry it as a field. */
    void (*log)(const struct fobs_host *self, fobs_log_level level, fobs_str message,
                fobs_str event_id);
    /* 1 if a message at `level` would be written (to skip formatting work), else 0. */
    int32_t (*log_enabled)(const struct fobs_host *self, fobs_log_level level);

    /* Clocks. monotonic: for durations. realtime: nanoseconds since the Unix epoch. */
    uint64_t (*monotonic_ns)(const struct fobs_host *self);
    uint64_t (*realtime_ns)(const struct fobs_host *self);

    /* Metrics. `name` is without the "fraiseql_observer_" prefix, which the host adds;
     * label names and values are [borrowed]. Returns a series handle owned by the host and
     * valid [until-destroy], or NULL when the name, type, label names or buckets conflict with
     * an already registered family of the same name (the host logs why). `buckets` are upper
     * bounds in ascending order for histograms (NULL/0 = the host's default latency buckets:
     * 0.0005 s ... 60 s); ignored for other types. Calling it twice with the same arguments
     * returns the same handle. */
    fobs_metric *(*metric)(const struct fobs_host *self, fobs_metric_type type, fobs_str name,
                           fobs_str help, const fobs_label *labels, size_t label_count,
                           const double *buckets, size_t bucket_count);
    /* Counter: add `value` (>= 0). Gauge: add `value` (may be negative). NULL handle: no-op. */
    void (*metric_add)(const struct fobs_host *self, fobs_metric *metric, double value);
    /* Gauge only: set to `value`. NULL handle: no-op. */
    void (*metric_set)(const struct fobs_host *self, fobs_metric *metric, double value);
    /* Histogram only: record one observation. NULL handle: no-op. */
    void (*metric_observe)(const struct fobs_host *self, fobs_metric *metric, double value);

    /* ABI 1.1 (check with FOBS_HAS_FIELD(host, fobs_host, decode_event)) */
    /* The host owns the envelope: a transport that stores only the canonical `body` gets the
     * event's fields back from the host's own JSON reader instead of parsing the body itself.
     * On success calls `fn` once with an event whose id, entity_type, operation, entity_id,
     * source and body are filled in (views [borrowed] for the duration of `fn`; delivery_count
     * and sequence are 0: the transport sets its own) and returns FOBS_OK; returns FOBS_ERR
     * with the reason in `err` (`fn` not called) when `body` is not a canonical event body. */
    fobs_status (*decode_event)(const struct fobs_host *self, fobs_str body,
                                void (*fn)(void *closure, const struct fobs_event *event),
                                void *closure, struct fobs_error *err);
} fobs_host;

/* Sink through which a source hands records to the host. Owned by the host, valid from
 * `start` [until-stop] returns. */
typedef struct fobs_source_record {
    uint32_t struct_size;
    fobs_str payload;   /* the raw change as JSON text (SPEC section 4) [borrowed] */
    int64_t txid;       /* the producing transaction's id, or -1 when unknown */
    fobs_str channel;   /* where it came from (e.g. the NOTIFY channel); may be empty */
} fobs_source_record;

typedef struct fobs_source_sink {
    uint32_t struct_size;
    void *ctx; /* host-owned */
    /* [any-thread, but never from inside a completion callback] Hand one record to the host.
     * The host validates and normalises it, then publishes it to every pipeline fed by this
     * source. `done` is completed exactly once: OK when every transport confirmed the event
     * (or no pipeline wanted it), FAILED with the reason when the record was rejected (not
     * JSON, missing fields, invalid subject token ...), RETRY when it could not be published
     * (e.g. shutdown). Any of these may complete `done` before `emit` returns: set up whatever
     * the completion needs before calling `emit`.
     * `emit` may block to apply back-pressure when too many records are in flight. */
    void (*emit)(const struct fobs_source_sink *self, const fobs_source_record *record,
                 const fobs_completion *done);
} fobs_source_sink;

/* Sink through which a transport's consumer hands events to the host. Owned by the host,
 * valid from `consumer_open` [until-consumer_close] returns. */
typedef struct fobs_consumer_sink {
    uint32_t struct_size;
    void *ctx; /* host-owned */
    /* [any-thread] Deliver one event. The host runs the pipeline's actions and completes
     * `done` exactly once: OK -> acknowledge; RETRY -> redeliver after `retry_after_ms` (or the
     * transport's backoff when -1); FAILED -> dead-letter, then never redeliver.
     * May block to apply back-pressure when the pipeline has too many events in flight, which
     * is how a slow action slows consumption. */
    void (*deliver)(const struct fobs_consumer_sink *self, const fobs_event *event,
                    const fobs_completion *done);
} fobs_consumer_sink;

/* Options for one durable consumer. All views [borrowed] for the call. */
typedef struct fobs_consumer_options {
    uint32_t struct_size;
    fobs_str pipeline;        /* pipeline name (for metrics labels and logs) */
    fobs_str consumer_name;   /* durable consumer name; shared by competing workers */
    const fobs_str *entity_types; /* optional filter hint; NULL/0 = all */
    size_t entity_type_count;
    const fobs_str *operations;   /* optional filter hint; NULL/0 = all */
    size_t operation_count;
    uint32_t max_in_flight;   /* events the host accepts concurrently for this consumer */

    /* ABI 1.1 (check with FOBS_HAS_FIELD) */
    /* The longest single attempt of the pipeline's slowest action, in milliseconds (from each
     * action's fobs.limits/1), or 0 when unknown. A transport with an acknowledgement deadline
     * (JetStream's ack_wait) compares it with that deadline. */
    uint64_t max_attempt_ms;
    /* [out, optional] A transport that delivers only events matching the filter hints above
     * (e.g. JetStream filter subjects: the others are never fetched) sets `*filters_applied`
     * to 1 before `consumer_open` returns; the host then skips its own filter. Left at 0
     * (or when NULL), the host filters every delivered event itself and acks what it drops. */
    int32_t *filters_applied;
} fobs_consumer_options;

/* Receives the text answer of an admin operation, possibly in several chunks. */
typedef void (*fobs_write_fn)(void *closure, fobs_str chunk);

/* ---------------------------------------------------------------------------------------- */
/* Config key tables (ABI 1.1)                                                              */
/* ---------------------------------------------------------------------------------------- */

/* The type of one config key. */
typedef int32_t fobs_key_type;
enum {
    FOBS_KEY_STRING = 0,
    FOBS_KEY_INTEGER = 1,     /* a TOML integer (a float such as 3.0 is refused) */
    FOBS_KEY_NUMBER = 2,      /* integer or float */
    FOBS_KEY_BOOLEAN = 3,
    FOBS_KEY_STRING_LIST = 4, /* array of strings */
    FOBS_KEY_INTEGER_LIST = 5,/* array of integers */
    FOBS_KEY_STRING_MAP = 6,  /* table whose values are all strings (e.g. HTTP headers) */
    FOBS_KEY_NUMBER_LIST = 7, /* array of numbers (integers or floats) */
    FOBS_KEY_STRING_OR_LIST = 8 /* a string, or an array of strings (e.g. several URLs) */
};

/* Flags of one config key. */
enum {
    FOBS_KEY_REQUIRED = 1u << 0, /* must be present */
    FOBS_KEY_SECRET = 1u << 1,   /* its value never appears in any output (logs, errors,
                                    `validate`, `status`); STRING_MAP: every value is secret */
    FOBS_KEY_NOT_EMPTY = 1u << 2 /* STRING: not ""; lists and maps: at least one element,
                                    and no string element is "" */
};

/* One key a component accepts. A component that publishes a table has the host check its
 * config before `create`: every key present must be in the table (nested tables are written
 * as dot paths, "jetstream.max_deliver"; the parent "jetstream" needs no entry of its own),
 * have its type, lie in [min, max] when `has_range` (numbers, and each element of an
 * INTEGER_LIST / NUMBER_LIST), be one of `choices` when given (each element of a string
 * list), not be empty when NOT_EMPTY, and every REQUIRED key must be there. The errors carry
 * file:line:col, also for array elements, whose key paths are written "channels[1]".
 * The component still receives the whole config as JSON, defaults NOT filled in (it applies
 * `default_json` itself -- the C++ wrapper's sdk::ConfigReader does; the host prints it in
 * `plugins --describe`). A table is an array of `config_key_count` entries that all have the
 * same `struct_size`, which is the array's stride: a host steps through a table written by a
 * newer SDK (whose entries grew) by that size, never by its own sizeof. */
typedef struct fobs_config_key {
    uint32_t struct_size;
    const char *name;         /* dot path relative to the component's table */
    fobs_key_type type;
    uint32_t flags;           /* FOBS_KEY_REQUIRED | FOBS_KEY_SECRET */
    const char *default_json; /* the default as JSON text ("5000", "\"nats\"", "[1,2]"), or
                                 NULL when there is none */
    int32_t has_range;        /* 1: numeric values (and INTEGER_LIST elements) must lie in
                                 [min, max] */
    double min;
    double max;
    const char *const *choices; /* STRING / STRING_LIST / STRING_OR_LIST: NULL-terminated
                                   list of allowed values, or NULL for any */
    const char *help;         /* one line */
} fobs_config_key;

/* ---------------------------------------------------------------------------------------- */
/* Capabilities (ABI 1.1)                                                                   */
/* ---------------------------------------------------------------------------------------- */

/* Optional features a component offers are found by a versioned id ("fobs.status/1"), in
 * the manner of CLAP's extensions: `get_capability(id)` returns a pointer to a static struct
 * of functions (beginning with `struct_size`) or NULL when the component does not offer it.
 * A new version of a capability is a new id; ids are never reused with another shape. The
 * shapes of the shipped ids are documented with their #define below. */
/* fobs.status/1 (fobs_json_capability) -- what `fraiseql-observer status` prints for any
 * component, without knowing which plugin it is.
 *  request: {"consumer": "NAME"}  -- transports: the pipeline's durable consumer, "" for a
 *           publisher-only pipeline (no consumer section); sources get {}. Unknown members
 *           are ignored.
 *  answer:  {"summary": "one line, e.g. the connection state",        (optional)
 *            "sections": [                                              (required)
 *              {"title": "stream",  "name": "FOBS_EVENTS",               (name optional)
 *               "rows": [["messages", 12], ["bytes", 3400], ...],        key/value pairs, in order;
 *                                                                        values: string, number,
 *                                                                        boolean or null
 *               "tables": [{"title": "replicas",                         (optional)
 *                           "columns": ["server", "current", "lag"],
 *                           "rows": [["n1", true, 0], ...]}]},
 *              ...],
 *            ...any other members: the component's own machine-readable figures, printed
 *            as they are by `status --json` (documented by the plugin) }
 *  The CLI's text output uses only summary, sections, rows and tables. */
#define FOBS_CAP_STATUS "fobs.status/1"
/* fobs.dlq/1 (fobs_json_capability) -- the dead-letter queue of a transport.
 *  request: {"op": "list", "limit": N}            (limit optional, default 100)
 *           {"op": "show", "seq": N}
 *           {"op": "replay", "seq": N} | {"op": "replay", "all": true}
 *           {"op": "purge", "seq": N}  | {"op": "purge", "all": true}
 *  an entry: {"seq": N, "id": "...", "subject": "...", "entity_type": "...",
 *             "operation": "...", "reason": "...", "action": "...", "delivery_count": N,
 *             "time_unix_ms": N, ...}   (any member but seq and id may be missing;
 *                                        "show" adds "body": the event's JSON text)
 *  answers: list   {"depth": N, "entries": [entry, ...]}
 *           show   entry
 *           replay one JSON object per line: {"progress": {"done": D, "total": T}} lines
 *                  as it goes (at least one per second for --all), then the result
 *                  {"replayed": N, "entries": [{"dlq_seq": N, "id": "...", "seq": N}],
 *                   "not_replayed": N, "error": "..."}   (the last two only when some failed)
 *           purge  {"purged": N} */
#define FOBS_CAP_DLQ "fobs.dlq/1"
/* fobs.sql/1 (fobs_json_capability) -- the SQL an operator runs once to set up a source.
 *  request: {"mode": "outbox" | "cdc", "schema": "NAME"}  (both optional: without them, the
 *           component's configured mode and schema)
 *  answer:  {"sql": "..."}
 *  A mode the component does not serve: FOBS_ERR_UNSUPPORTED. The component is created but
 *  never started for this call: it must not connect. */
#define FOBS_CAP_SQL "fobs.sql/1"
/* fobs.limits/1 (fobs_limits_capability) -- see the struct below. The host gives the longest
 * attempt of a pipeline's actions to its transport (fobs_consumer_options.max_attempt_ms). */
#define FOBS_CAP_LIMITS "fobs.limits/1"

/* A capability whose request and answer are JSON objects: `request` [borrowed] is the
 * request object, the answer is written through `write` (possibly in several chunks; an
 * answer that reports progress writes one JSON object per line, the last one being the
 * result). Returns FOBS_OK, FOBS_ERR with `err`, or FOBS_ERR_UNSUPPORTED for a request it
 * does not know. [main-thread] */
typedef struct fobs_json_capability {
    uint32_t struct_size;
    fobs_status (*call)(void *self, fobs_str request, fobs_write_fn write, void *closure,
                        fobs_error *err);
} fobs_json_capability;

/* fobs.limits/1 [any-thread, after create]: what the host needs to know to size timeouts
 * and windows around this component, e.g. an action's longest single attempt. Every entry
 * answers from the component's configuration (it may be called on a created, never started
 * instance, as `validate` does). */
typedef struct fobs_limits_capability {
    uint32_t struct_size;
    /* The longest one `execute` (or `publish`) attempt can take before the component itself
     * gives up, in milliseconds; 0 when unbounded or unknown. */
    uint64_t (*max_attempt_ms)(void *self);
    /* A transport: how long an event its consumer delivered waits, unsettled, before it is
     * delivered again (JetStream: ack_wait, or the first backoff step when shorter), in
     * milliseconds; 0 when never or unknown. `fraiseql-observer validate` warns when it is
     * less than twice a pipeline's longest action attempt. NULL = unknown. */
    uint64_t (*redelivery_after_ms)(void *self);

    /* Appended later in 1.1 (check with FOBS_HAS_FIELD(cap, fobs_limits_capability, ...); a
     * NULL function is the same as answering 0). With ordering = "entity" the host sizes its
     * per-key window and its handling of a failing event from these; `validate` and `run`
     * warn about a window too small for the actions, and about on_failure = "skip" with a
     * transport that answers 0 to max_deliveries. */
    /* A transport: deliveries of one event to one consumer before the transport gives up on
     * it (dead-letters or drops it; JetStream: max_deliver); 0 when unknown, UINT64_MAX when
     * unlimited. The host needs it to tell a failing event's last delivery. */
    uint64_t (*max_deliveries)(void *self);
    /* A transport: events one consumer may hold unsettled at once, counting those awaiting a
     * redelivery after a RETRY (JetStream: max_ack_pending); beyond it the transport delivers
     * nothing new. 0 when unknown, UINT64_MAX when unlimited. */
    uint64_t (*max_unacked)(void *self);
    /* An action: how many attempts it runs at once (the webhook: requests in flight, its
     * max_concurrency, a batch request counting once). 0 when unknown. */
    uint64_t (*max_concurrency)(void *self);
} fobs_limits_capability;

/* ---------------------------------------------------------------------------------------- */
/* Components                                                                               */
/* ---------------------------------------------------------------------------------------- */

/* Functions common to every component kind, at the start of every descriptor.
 *
 * Lifecycle: create -> start -> ... -> stop -> destroy; `create` followed directly by
 * `destroy` is how `fraiseql-observer validate` checks a config, so `create` must parse and
 * check the config but open no connection and start no thread.
 *
 *  create  [main-thread] Build an instance from `host->config_json`. On failure return NULL
 *          and fill `err` (key_path = the offending key, relative to the component's table).
 *  destroy [main-thread] Free the instance. Called after `stop` (or directly after `create`).
 *  start   [main-thread] Connect, spawn threads. FOBS_OK or an error in `err`. A component
 *          whose peer is unreachable should rather start, retry in the background with backoff,
 *          and report not-ready, than fail. If it fails anyway with `err->retriable` = 1
 *          (1.1 hosts), the host calls `start` again with backoff (0.5 s doubling to 30 s),
 *          logging each failure, and the run is not ready meanwhile; a failure with
 *          `retriable` = 0 ends the run. Between two `start` calls nothing else is called.
 *  stop    [main-thread] Stop producing/accepting work and settle what is in flight within a
 *          reasonable time; when it returns, the component calls no host function any more
 *          except completing tokens it still holds.
 *  ready   [any-thread, optional] 1 when connected and working, else 0 with the reason in
 *          `why`. NULL means always ready.
 *  admin   [main-thread, optional] Answer an admin request. `request` is a JSON object with at
 *          least {"op": "..."}; the answer is JSON written through `write`. Unknown ops return
 *          FOBS_ERR_UNSUPPORTED. NULL means no admin operations. Since 1.1 the host's CLI
 *          asks for capabilities (fobs.status/1, fobs.dlq/1, fobs.sql/1) and falls back to
 *          `admin` ops "status", "dlq_list", "dlq_show", "dlq_replay", "dlq_purge" and "sql"
 *          only for a component that offers no capability (1.0 plugins).
 */
#define FOBS_COMPONENT_COMMON_FIELDS                                                           \
    uint32_t struct_size;                                                                      \
    void *(*create)(const fobs_host *host, fobs_error *err);                                   \
    void (*destroy)(void *self);                                                               \
    fobs_status (*start)(void *self, fobs_error *err);                                         \
    void (*stop)(void *self);                                                                  \
    int32_t (*ready)(void *self, fobs_error *why);                                             \
    fobs_status (*admin)(void *self, fobs_str request, fobs_write_fn write, void *closure,     \
                         fobs_error *err)

/* Fields every component descriptor gained in ABI 1.1, appended at its end (read them only
 * when FOBS_HAS_FIELD says they are there; NULL/0 = not offered):
 *  config_keys, config_key_count  the component's config key table (see fobs_config_key);
 *                                 NULL: the component checks its JSON config itself.
 *  get_capability [any-thread]    the capability struct for `id` (e.g. FOBS_CAP_STATUS), or
 *                                 NULL. Static: the functions take the instance as `self`. */
#define FOBS_COMPONENT_V11_FIELDS                                                              \
    const fobs_config_key *config_keys;                                                        \
    size_t config_key_count;                                                                   \
    const void *(*get_capability)(const char *id)

/* A source: turns changes into records. It runs its own threads between start and stop and
 * hands records to the host through `sink`, which `start` receives. */
typedef struct fobs_source_desc {
    uint32_t struct_size;
    void *(*create)(const fobs_host *host, fobs_error *err);
    void (*destroy)(void *self);
    /* [main-thread] `sink` is valid [until-stop] returns. */
    fobs_status (*start)(void *self, const fobs_source_sink *sink, fobs_error *err);
    void (*stop)(void *self);
    int32_t (*ready)(void *self, fobs_error *why);
    fobs_status (*admin)(void *self, fobs_str request, fobs_write_fn write, void *closure,
                         fobs_error *err);
    /* ABI 1.1 */
    FOBS_COMPONENT_V11_FIELDS;
} fobs_source_desc;

/* A transport: a durable log between the publishing and the consuming half. */
typedef struct fobs_transport_desc {
    FOBS_COMPONENT_COMMON_FIELDS;
    /* [any-thread] Publish one event durably. `done` is completed exactly once: OK only once
     * the event is stored durably (e.g. JetStream PubAck), RETRY/FAILED otherwise. The same
     * event id published twice must be stored once (de-duplication). May block to apply
     * back-pressure when too many publishes are in flight. */
    void (*publish)(void *self, const fobs_event *event, const fobs_completion *done);
    /* [main-thread] Open a durable consumer delivering to `sink` from transport-owned threads.
     * Returns an opaque consumer handle in `*consumer`. */
    fobs_status (*consumer_open)(void *self, const fobs_consumer_options *options,
                                 const fobs_consumer_sink *sink, void **consumer,
                                 fobs_error *err);
    /* [main-thread] Stop fetching, wait (bounded) for delivered events to be completed, settle
     * them, and release the consumer. No `deliver` call happens after it returns. */
    void (*consumer_close)(void *self, void *consumer);
    /* ABI 1.1 */
    FOBS_COMPONENT_V11_FIELDS;
} fobs_transport_desc;

/* An action: does something with each consumed event. */
typedef struct fobs_action_desc {
    FOBS_COMPONENT_COMMON_FIELDS;
    /* [any-thread] Run the action for one event; complete `done` exactly once, from any
     * thread: OK on success, RETRY for transient failures (with retry_after_ms when the peer
     * said when), FAILED for permanent ones. May be called concurrently; may block to apply
     * back-pressure. */
    void (*execute)(void *self, const fobs_event *event, const fobs_completion *done);
    /* ABI 1.1 */
    FOBS_COMPONENT_V11_FIELDS;
} fobs_action_desc;

/* ---------------------------------------------------------------------------------------- */
/* The entry point                                                                          */
/* ---------------------------------------------------------------------------------------- */

/* Static description of a plugin library. Must stay valid while the library is loaded. */
typedef struct fobs_plugin_entry {
    /* These three fields never move, in any ABI version. */
    uint32_t struct_size;
    uint16_t abi_major; /* FOBS_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor; /* FOBS_ABI_MINOR the plugin was built with */

    const char *name;        /* the name configs use ("nats", "webhook"); [a-z0-9_]+ */
    const char *version;     /* the plugin's own version ("1.2.0") */
    const char *description; /* one line; may be NULL */

    /* The components this plugin offers; at least one is non-NULL. */
    const fobs_source_desc *source;
    const fobs_transport_desc *transport;
    const fobs_action_desc *action;

    /* ABI 1.1 (read only when FOBS_HAS_FIELD says they are there) */
    /* The oldest host ABI minor (same major) this plugin works with: it uses no field or
     * function added after that minor unless the host's `abi_minor` says it is there. A 1.0
     * entry, which lacks the field, needs its own `abi_minor`. */
    uint16_t min_host_minor;
    /* [main-thread, optional] Called once after loading, before the first component is
     * created, and once after the last component was destroyed, before unloading: for
     * library-wide setup and teardown of client libraries. `init` failing refuses the
     * plugin with its message. */
    fobs_status (*init)(fobs_error *err);
    void (*deinit)(void);
} fobs_plugin_entry;

/* Exported by every plugin library under this exact name (C linkage, default visibility).
 * [main-thread] Called once after loading; returns a pointer to static storage. */
typedef const fobs_plugin_entry *(*fobs_plugin_get_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* FRAISEQL_OBSERVER_ABI_H */
