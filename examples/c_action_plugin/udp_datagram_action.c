/*
 * udp_datagram: a third-party action plugin in plain C99, against abi.h alone.
 *
 * Sends each event's body (the canonical event JSON) as one UDP datagram to `host`:`port`.
 * UDP is unacknowledged: OK means the kernel took the datagram, not that anyone received it.
 *  - OK      once sendto() accepted the datagram;
 *  - RETRY   on a transient socket error (send buffer full, network unreachable, ...);
 *  - FAILED  (dead-lettered, never retried) when the body is larger than max_datagram_bytes,
 *            or the kernel refuses the datagram itself (EMSGSIZE, EACCES).
 *
 * What the C++ wrapper (plugin.hpp) would do for us, done by hand here: every struct we fill
 * carries its struct_size; each token is completed exactly once on every path; views the host
 * lends us (config_json, the event) are copied or used only before the call returns; no
 * global mutable state -- the instance holds everything, and the tables are const.
 */
#define _POSIX_C_SOURCE 200809L /* getaddrinfo, strerror_r (XSI), fcntl; the build is -std=c99 */

#include "config_reader.h"

#include <fraiseql_observer/abi.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

/* The most one IPv4 UDP datagram carries: 65535 - 20 (IP header) - 8 (UDP header). */
#define UDP_MAX_PAYLOAD 65507
/* A full local send buffer drains within milliseconds: try again soon, not on the transport's
 * (slower) backoff schedule, which other transient errors use. */
#define BUFFER_FULL_RETRY_MS 100

/* ---- config -------------------------------------------------------------------------------- */

enum { KEY_HOST, KEY_PORT, KEY_MAX_DATAGRAM_BYTES, KEY_COUNT };

/* The key table (ABI 1.1): the host checks every config against it before `create`, with
 * file:line:col in its errors, and prints it with `fraiseql-observer plugins --describe`. */
static const fobs_config_key udp_keys[KEY_COUNT] = {
    [KEY_HOST] = {.struct_size = sizeof(fobs_config_key),
                  .name = "host",
                  .type = FOBS_KEY_STRING,
                  .flags = FOBS_KEY_NOT_EMPTY,
                  .default_json = "\"127.0.0.1\"",
                  .help = "Host name or address the datagrams go to (resolved when the action "
                          "starts)."},
    [KEY_PORT] = {.struct_size = sizeof(fobs_config_key),
                  .name = "port",
                  .type = FOBS_KEY_INTEGER,
                  .flags = FOBS_KEY_REQUIRED,
                  .has_range = 1,
                  .min = 1,
                  .max = 65535,
                  .help = "UDP port the datagrams go to."},
    [KEY_MAX_DATAGRAM_BYTES] = {.struct_size = sizeof(fobs_config_key),
                                .name = "max_datagram_bytes",
                                .type = FOBS_KEY_INTEGER,
                                .default_json = "65507",
                                .has_range = 1,
                                .min = 1,
                                .max = UDP_MAX_PAYLOAD,
                                .help = "An event whose body is larger is dead-lettered, not "
                                        "sent (65507: the most one IPv4 datagram carries)."},
};

/* ---- the instance -------------------------------------------------------------------------- */

/* One configured action. Written by the [main-thread] calls only: create fills the config,
 * start the socket and address; execute ([any-thread]) only reads them, and the host calls
 * no execute before start has returned. */
typedef struct udp_action {
    const fobs_host *host; /* valid until destroy returns */
    char *target_host;     /* our copy of `host`; config_json is the host's */
    char port_text[8];
    size_t max_datagram_bytes;
    int fd; /* -1 until start */
    struct sockaddr_storage address;
    socklen_t address_size;
} udp_action;

static void log_line(const udp_action *self, fobs_log_level level, const char *text) {
    fobs_str message, no_event = {NULL, 0};
    message.data = text;
    message.size = strlen(text);
    self->host->log(self->host, level, message, no_event);
}

/* [main-thread] Also releases what a failed create had built. */
static void udp_destroy(void *instance) {
    udp_action *self = instance;
    if (self->fd >= 0) close(self->fd);
    free(self->target_host);
    free(self);
}

/* [main-thread] Reads and checks the config; no socket, no name lookup: `validate` is
 * create + destroy. */
static void *udp_create(const fobs_host *host, fobs_error *err) {
    int64_t port = 0, max_bytes = 0;
    udp_action *self = calloc(1, sizeof *self);
    if (self == NULL) {
        report_error(err, 0, "", "out of memory");
        return NULL;
    }
    self->host = host;
    self->fd = -1;
    if (config_string(host->config_json, &udp_keys[KEY_HOST], &self->target_host, err) != FOBS_OK ||
        config_integer(host->config_json, &udp_keys[KEY_PORT], &port, err) != FOBS_OK ||
        config_integer(host->config_json, &udp_keys[KEY_MAX_DATAGRAM_BYTES], &max_bytes, err) !=
            FOBS_OK) {
        udp_destroy(self);
        return NULL;
    }
    snprintf(self->port_text, sizeof self->port_text, "%d", (int)port);
    self->max_datagram_bytes = (size_t)max_bytes;
    return self;
}

/* [main-thread] Resolves the target and opens a non-blocking socket, so that an execute never
 * waits (a full send buffer is a RETRY, not a stall). */
static fobs_status udp_start(void *instance, fobs_error *err) {
    udp_action *self = instance;
    struct addrinfo hints, *found = NULL;
    char numeric[INET6_ADDRSTRLEN], line[512];
    int rc, flags;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(self->target_host, self->port_text, &hints, &found);
    if (rc != 0) {
        /* A resolver that cannot answer now may later: the host retries a retriable start
         * with backoff. A name that does not exist is the config's fault, reported at `host`. */
        const int retriable = rc == EAI_AGAIN || rc == EAI_SYSTEM || rc == EAI_MEMORY;
        report_error(err, retriable, retriable ? "" : "host", "cannot resolve '%s': %s",
                     self->target_host, gai_strerror(rc));
        return retriable ? FOBS_ERR : FOBS_ERR_CONFIG;
    }
    self->fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
    if (self->fd < 0 || (flags = fcntl(self->fd, F_GETFL)) < 0 ||
        fcntl(self->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        const int e = errno;
        char why[128];
        if (strerror_r(e, why, sizeof why) != 0) snprintf(why, sizeof why, "errno %d", e);
        report_error(err, 1, "", "cannot open a UDP socket: %s", why);
        if (self->fd >= 0) close(self->fd);
        self->fd = -1;
        freeaddrinfo(found);
        return FOBS_ERR;
    }
    memcpy(&self->address, found->ai_addr, found->ai_addrlen);
    self->address_size = found->ai_addrlen;
    if (getnameinfo(found->ai_addr, found->ai_addrlen, numeric, sizeof numeric, NULL, 0,
                    NI_NUMERICHOST) != 0)
        snprintf(numeric, sizeof numeric, "?");
    freeaddrinfo(found);
    snprintf(line, sizeof line, "sending each event as one UDP datagram to %s port %s (%s)",
             self->target_host, self->port_text, numeric);
    log_line(self, FOBS_LOG_INFO, line);
    return FOBS_OK;
}

/* [main-thread] Nothing to settle: every execute has completed its token before it returned.
 * The socket stays open until destroy, so an execute that races with stop never writes to a
 * closed (or already reused) descriptor. */
static void udp_stop(void *instance) { (void)instance; }

/* Completes `done` -- exactly once per token, the caller's duty. `reason` is [borrowed] by
 * the host for the call only, so a stack buffer is fine. */
static void complete(const fobs_completion *done, fobs_outcome_kind kind, int64_t retry_after_ms,
                     const char *reason) {
    fobs_outcome outcome;
    memset(&outcome, 0, sizeof outcome);
    outcome.struct_size = sizeof outcome;
    outcome.kind = kind;
    outcome.retry_after_ms = retry_after_ms;
    outcome.reason.data = reason;
    outcome.reason.size = strlen(reason);
    done->complete(done, &outcome);
}

/* [any-thread] One event, one datagram. The body is [borrowed]: sendto copies it into the
 * kernel before we return. Concurrent calls share the socket, which is safe: each sendto
 * sends one whole datagram. */
static void udp_execute(void *instance, const fobs_event *event, const fobs_completion *done) {
    const udp_action *self = instance;
    char reason[256], why[128];
    int e;
    if (event->body.size > self->max_datagram_bytes) {
        snprintf(reason, sizeof reason,
                 "event body is %zu bytes, more than max_datagram_bytes (%zu): not sent",
                 event->body.size, self->max_datagram_bytes);
        complete(done, FOBS_OUTCOME_FAILED, -1, reason);
        return;
    }
    if (self->fd < 0) { /* not started: the lifecycle rules out this path, but never guess */
        complete(done, FOBS_OUTCOME_RETRY, -1, "udp_datagram is not started");
        return;
    }
    for (;;) {
        if (sendto(self->fd, event->body.data, event->body.size, 0,
                   (const struct sockaddr *)&self->address, self->address_size) >= 0) {
            complete(done, FOBS_OUTCOME_OK, -1, "");
            return;
        }
        if (errno != EINTR) break;
    }
    e = errno;
    if (strerror_r(e, why, sizeof why) != 0) snprintf(why, sizeof why, "errno %d", e);
    snprintf(reason, sizeof reason, "sendto %s port %s: %s", self->target_host, self->port_text, why);
    if (e == EMSGSIZE || e == EACCES) /* the same datagram would be refused again */
        complete(done, FOBS_OUTCOME_FAILED, -1, reason);
    else if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS)
        complete(done, FOBS_OUTCOME_RETRY, BUFFER_FULL_RETRY_MS, reason);
    else /* unreachable network or host, ...: the transport's backoff schedule */
        complete(done, FOBS_OUTCOME_RETRY, -1, reason);
}

/* ---- fobs.limits/1 --------------------------------------------------------------------------- */

/* [any-thread] One attempt is one sendto on a non-blocking socket: it never waits for buffer
 * space or for the network, so it is over within a millisecond. */
static uint64_t udp_max_attempt_ms(void *instance) {
    (void)instance;
    return 1;
}

/* The functions this plugin does not answer stay NULL, which the host reads as "unknown". */
static const fobs_limits_capability udp_limits = {
    .struct_size = sizeof(fobs_limits_capability),
    .max_attempt_ms = udp_max_attempt_ms,
};

/* [any-thread] */
static const void *udp_get_capability(const char *id) {
    if (strcmp(id, FOBS_CAP_LIMITS) == 0) return &udp_limits;
    return NULL;
}

/* ---- the entry point ------------------------------------------------------------------------- */

static const fobs_action_desc udp_action_desc = {
    .struct_size = sizeof(fobs_action_desc),
    .create = udp_create,
    .destroy = udp_destroy,
    .start = udp_start,
    .stop = udp_stop,
    .ready = NULL, /* always ready once started */
    .admin = NULL,
    .execute = udp_execute,
    .config_keys = udp_keys,
    .config_key_count = KEY_COUNT,
    .get_capability = udp_get_capability,
};

static const fobs_plugin_entry udp_entry = {
    .struct_size = sizeof(fobs_plugin_entry),
    .abi_major = FOBS_ABI_MAJOR,
    .abi_minor = FOBS_ABI_MINOR,
    .name = "udp_datagram", /* found as udp_datagram_action.so (<name>_action.so) */
    .version = "1.0.0",
    .description = "Sends each event's body as one UDP datagram",
    .action = &udp_action_desc,
    /* A 1.1 host: the key table, the capability and the host-side config check. */
    .min_host_minor = 1,
    .init = NULL, /* no client library with process-wide state */
    .deinit = NULL,
};

/* The one exported symbol (abi.h declares only its type, fobs_plugin_get_entry_fn). */
FOBS_EXPORT const fobs_plugin_entry *fobs_plugin_get_entry(void);
FOBS_EXPORT const fobs_plugin_entry *fobs_plugin_get_entry(void) { return &udp_entry; }
