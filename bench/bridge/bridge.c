/* A hand-pipelined PostgreSQL -> NATS JetStream -> webhook bridge in C: what a strong engineer
 * writes instead of using fraiseql-observer, and the anchor bench/run.sh measures us against
 * (issue 15). One process, three threads, the same libraries we use:
 *
 *   listen   libpq LISTEN; every notification -> js_PublishMsgAsync with a Nats-Msg-Id (the
 *            event id), at most --window (1000) PubAcks outstanding; a failed PubAck re-sends the
 *            same message (same id: JetStream drops the duplicate if the first one was stored).
 *   fetch    a durable pull consumer, Fetch(--batch 500); never holds more than --max-held
 *            fetched-but-unsettled messages; hands them to the http thread.
 *   http     libcurl multi, --concurrency (32) kept-alive transfers; a 2xx acks the message,
 *            anything else naks it with a 1 s delay.
 *
 * No JSON library: the subject and the msg id come from the payload's first "id",
 * "entity_type" and "operation" fields (the trigger writes them first). It keeps no copy of a
 * notification it has not yet published, like every LISTEN bridge (a crash loses those).
 *
 *   fobs_bridge --conninfo C --channel CH --nats-url U --stream S --prefix P --durable D
 *               --url WEBHOOK [--window 1000] [--batch 500] [--concurrency 32] [--max-held 1000]
 *               [--ready-file F] [--send-asap]
 * Runs until SIGTERM/SIGINT; creates the stream (file storage, 5-minute duplicate window) and
 * the durable consumer (explicit ack) afresh at start. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <libpq-fe.h>
#include <nats/nats.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct options {
    const char *conninfo, *channel, *nats_url, *stream, *prefix, *durable, *url, *ready_file;
    int window, batch, concurrency, max_held;
    bool send_asap;
};

static struct options opt = {.window = 1000, .batch = 500, .concurrency = 32, .max_held = 1000};
static atomic_bool stopping;
static natsConnection *nc;
static jsCtx *js;

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&stopping, true);
}

static void die(const char *what, natsStatus s) {
    fprintf(stderr, "bridge: %s: %s %s\n", what, natsStatus_GetText(s), nats_GetLastError(NULL));
    exit(1);
}

/* ---- listen -> publish ----------------------------------------------------------------- */

/* Failed PubAcks: the messages to send again, taken by the listen thread. */
static pthread_mutex_t resend_mu = PTHREAD_MUTEX_INITIALIZER;
static natsMsg **resend;
static size_t resend_len, resend_cap;
static atomic_long publish_errors;

static void on_puback(jsCtx *ctx, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)ctx, (void)pa, (void)closure;
    if (!pae) {
        natsMsg_Destroy(msg);
        return;
    }
    atomic_fetch_add(&publish_errors, 1);
    pthread_mutex_lock(&resend_mu);
    if (resend_len == resend_cap) {
        resend_cap = resend_cap ? 2 * resend_cap : 64;
        resend = realloc(resend, resend_cap * sizeof *resend);
    }
    resend[resend_len++] = msg;
    pthread_mutex_unlock(&resend_mu);
}

/* The string value of the first "key" field, copied into out (no unescaping: ids, entity
 * types and operations are plain). Returns its length, or -1. */
static int json_string_field(const char *json, const char *key, char *out, size_t cap) {
    char pattern[64];
    int n = snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = strstr(json, pattern);
    if (!p) return -1;
    p += n;
    while (*p == ' ') ++p;
    if (*p++ != ':') return -1;
    while (*p == ' ') ++p;
    if (*p++ != '"') return -1;
    const char *end = strchr(p, '"');
    if (!end || (size_t)(end - p) >= cap) return -1;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
    return (int)(end - p);
}

static void publish_async(natsMsg *msg) {
    /* StallWait is long: a full window blocks here (back-pressure), it does not fail. */
    natsStatus s;
    while ((s = js_PublishMsgAsync(js, &msg, NULL)) != NATS_OK) {
        if (atomic_load(&stopping)) {
            natsMsg_Destroy(msg);
            return;
        }
        fprintf(stderr, "bridge: publish: %s (retrying)\n", natsStatus_GetText(s));
        usleep(10000);
    }
}

static void publish_notification(const char *payload) {
    char id[256], type[128], op[64], subject[512];
    if (json_string_field(payload, "id", id, sizeof id) < 0 ||
        json_string_field(payload, "entity_type", type, sizeof type) < 0 ||
        json_string_field(payload, "operation", op, sizeof op) < 0) {
        fprintf(stderr, "bridge: notification without id/entity_type/operation, skipped\n");
        return;
    }
    snprintf(subject, sizeof subject, "%s.%s.%s", opt.prefix, type, op);
    natsMsg *msg = NULL;
    natsStatus s = natsMsg_Create(&msg, subject, NULL, payload, (int)strlen(payload));
    if (s == NATS_OK) s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
    if (s != NATS_OK) die("message", s);
    publish_async(msg);
}

static void listen_loop(PGconn *pg) {
    while (!atomic_load(&stopping)) {
        pthread_mutex_lock(&resend_mu);
        size_t n = resend_len;
        natsMsg **again = NULL;
        if (n) {
            again = malloc(n * sizeof *again);
            memcpy(again, resend, n * sizeof *again);
            resend_len = 0;
        }
        pthread_mutex_unlock(&resend_mu);
        for (size_t i = 0; i < n; ++i) publish_async(again[i]);
        free(again);

        struct pollfd pfd = {.fd = PQsocket(pg), .events = POLLIN};
        int r = poll(&pfd, 1, 100);
        if (r < 0 && errno != EINTR) break;
        if (r <= 0) continue;
        if (!PQconsumeInput(pg)) {
            fprintf(stderr, "bridge: PostgreSQL connection lost: %s", PQerrorMessage(pg));
            break;
        }
        PGnotify *note;
        while ((note = PQnotifies(pg)) != NULL) {
            publish_notification(note->extra);
            PQfreemem(note);
        }
    }
}

static void *listen_thread(void *arg) {
    pthread_setname_np(pthread_self(), "bridge-listen");
    listen_loop(arg);
    atomic_store(&stopping, true); /* a lost PostgreSQL connection ends the bridge */
    return NULL;
}

/* ---- fetch -> http ----------------------------------------------------------------------- */

/* Fetched messages waiting for a transfer slot: a ring, guarded by held_mu; `held` counts
 * them plus those in a transfer (acked or naked ones leave it). */
static pthread_mutex_t held_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t room_cv = PTHREAD_COND_INITIALIZER;
static natsMsg **ring;
static size_t ring_head, ring_len, ring_cap;
static int held;
static CURLM *multi;

static void *fetch_thread(void *arg) {
    natsSubscription *sub = arg;
    pthread_setname_np(pthread_self(), "bridge-fetch");
    while (!atomic_load(&stopping)) {
        pthread_mutex_lock(&held_mu);
        while (held >= opt.max_held && !atomic_load(&stopping)) pthread_cond_wait(&room_cv, &held_mu);
        int want = opt.max_held - held;
        pthread_mutex_unlock(&held_mu);
        if (atomic_load(&stopping)) break;
        if (want > opt.batch) want = opt.batch;
        /* cnats 3.4.1 overflows Fetch's array when more than half a batch is already queued
         * in the subscription (NOTES.md): take what is queued one message at a time. */
        int queued = 0;
        natsSubscription_GetPending(sub, &queued, NULL);
        if (queued > 0) want = 1;
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus s = natsSubscription_Fetch(&list, sub, want, 1000, &jerr);
        if (s != NATS_OK && s != NATS_TIMEOUT) {
            fprintf(stderr, "bridge: fetch: %s\n", natsStatus_GetText(s));
            usleep(100000);
        }
        if (list.Count == 0) {
            natsMsgList_Destroy(&list);
            continue;
        }
        pthread_mutex_lock(&held_mu);
        if (ring_len + (size_t)list.Count > ring_cap) {
            size_t cap = ring_cap ? ring_cap : 1024;
            while (cap < ring_len + (size_t)list.Count) cap *= 2;
            natsMsg **grown = malloc(cap * sizeof *grown);
            for (size_t i = 0; i < ring_len; ++i) grown[i] = ring[(ring_head + i) % ring_cap];
            free(ring);
            ring = grown, ring_cap = cap, ring_head = 0;
        }
        for (int i = 0; i < list.Count; ++i) {
            ring[(ring_head + ring_len++) % ring_cap] = list.Msgs[i];
            list.Msgs[i] = NULL;
        }
        held += list.Count;
        pthread_mutex_unlock(&held_mu);
        natsMsgList_Destroy(&list);
        curl_multi_wakeup(multi);
    }
    return NULL;
}

struct transfer {
    CURL *easy;
    natsMsg *msg;
    struct curl_slist *headers;
};

static size_t discard(char *p, size_t size, size_t n, void *u) {
    (void)p, (void)u;
    return size * n;
}

static void start_transfer(struct transfer *t, natsMsg *msg) {
    t->msg = msg;
    curl_slist_free_all(t->headers);
    t->headers = curl_slist_append(NULL, "Content-Type: application/json");
    const char *id = NULL;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id) {
        char line[300];
        snprintf(line, sizeof line, "Idempotency-Key: %s", id);
        t->headers = curl_slist_append(t->headers, line);
    }
    curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, natsMsg_GetData(msg));
    curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE, (long)natsMsg_GetDataLength(msg));
    curl_multi_add_handle(multi, t->easy);
}

static void http_loop(void) {
    struct transfer *slots = calloc((size_t)opt.concurrency, sizeof *slots);
    struct transfer **idle = calloc((size_t)opt.concurrency, sizeof *idle);
    int n_idle = 0;
    for (int i = 0; i < opt.concurrency; ++i) {
        slots[i].easy = curl_easy_init();
        curl_easy_setopt(slots[i].easy, CURLOPT_URL, opt.url);
        curl_easy_setopt(slots[i].easy, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(slots[i].easy, CURLOPT_NOSIGNAL, 1L); /* no SIGPIPE juggling per request */
        curl_easy_setopt(slots[i].easy, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(slots[i].easy, CURLOPT_PRIVATE, &slots[i]);
        idle[n_idle++] = &slots[i];
    }
    while (!atomic_load(&stopping)) {
        /* Start what waits, as far as there are free transfers. */
        pthread_mutex_lock(&held_mu);
        while (n_idle > 0 && ring_len > 0) {
            natsMsg *m = ring[ring_head];
            ring_head = (ring_head + 1) % ring_cap;
            --ring_len;
            start_transfer(idle[--n_idle], m);
        }
        pthread_mutex_unlock(&held_mu);
        int running = 0;
        curl_multi_perform(multi, &running);
        /* Settled messages are freed after the sweep, together: libnats hands every freed
         * message to its garbage-collector thread and wakes it when it is idle. */
        natsMsg *done[64];
        int left = 0, settled = 0, n_done = 0;
        CURLMsg *cm;
        while ((cm = curl_multi_info_read(multi, &left)) != NULL) {
            if (cm->msg != CURLMSG_DONE) continue;
            struct transfer *t = NULL;
            curl_easy_getinfo(cm->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            long status = 0;
            curl_easy_getinfo(cm->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            curl_multi_remove_handle(multi, cm->easy_handle);
            if (cm->data.result == CURLE_OK && status >= 200 && status < 300) natsMsg_Ack(t->msg, NULL);
            else natsMsg_NakWithDelay(t->msg, 1000, NULL);
            if (n_done == (int)(sizeof done / sizeof *done)) {
                for (int i = 0; i < n_done; ++i) natsMsg_Destroy(done[i]);
                n_done = 0;
            }
            done[n_done++] = t->msg;
            t->msg = NULL;
            idle[n_idle++] = t;
            ++settled;
        }
        for (int i = 0; i < n_done; ++i) natsMsg_Destroy(done[i]);
        if (settled) {
            pthread_mutex_lock(&held_mu);
            bool was_full = held >= opt.max_held;
            held -= settled;
            pthread_mutex_unlock(&held_mu);
            if (was_full) pthread_cond_signal(&room_cv);
            continue; /* free slots: start the waiting messages before sleeping */
        }
        /* Sleeps until a socket is ready or the fetch thread hands over (curl_multi_wakeup). */
        curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    for (int i = 0; i < opt.concurrency; ++i) {
        if (slots[i].msg) {
            curl_multi_remove_handle(multi, slots[i].easy);
            natsMsg_Nak(slots[i].msg, NULL);
            natsMsg_Destroy(slots[i].msg);
        }
        curl_slist_free_all(slots[i].headers);
        curl_easy_cleanup(slots[i].easy);
    }
    free(slots);
    free(idle);
}

static void *http_thread(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "bridge-http");
    http_loop();
    return NULL;
}

/* ---- set-up ------------------------------------------------------------------------------ */

static void setup_jetstream(natsSubscription **sub) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = opt.window;
    jo.PublishAsync.StallWait = 60000;
    jo.PublishAsync.AckHandler = on_puback;
    /* --send-asap: every publish, pull request and ack is written at once instead of after
     * cnats' flusher thread waited ~1 ms for more (lower latency, a write syscall each). */
    natsOptions *no = NULL;
    natsStatus s = natsOptions_Create(&no);
    if (s == NATS_OK) s = natsOptions_SetURL(no, opt.nats_url);
    if (s == NATS_OK && opt.send_asap) s = natsOptions_SetSendAsap(no, true);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, no);
    natsOptions_Destroy(no);
    if (s != NATS_OK) die("connect", s);
    if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK) die("jetstream", s);

    jsErrCode jerr = 0;
    js_DeleteStream(js, opt.stream, NULL, &jerr);
    char subjects[256];
    snprintf(subjects, sizeof subjects, "%s.>", opt.prefix);
    const char *subject_list[] = {subjects};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = opt.stream;
    sc.Subjects = subject_list;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Duplicates = 5LL * 60 * 1000000000LL;
    if ((s = js_AddStream(NULL, js, &sc, NULL, &jerr)) != NATS_OK) die("add stream", s);

    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = opt.durable;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = 30LL * 1000000000LL;
    cc.MaxAckPending = 20000;
    if ((s = js_AddConsumer(NULL, js, opt.stream, &cc, NULL, &jerr)) != NATS_OK) die("add consumer", s);

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = opt.stream;
    so.Consumer = opt.durable;
    so.ManualAck = true;
    if ((s = js_PullSubscribe(sub, js, subjects, opt.durable, NULL, &so, &jerr)) != NATS_OK)
        die("pull subscribe", s);
    natsSubscription_SetPendingLimits(*sub, -1, -1);
}

static PGconn *setup_listen(void) {
    PGconn *pg = PQconnectdb(opt.conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "bridge: PostgreSQL: %s", PQerrorMessage(pg));
        exit(1);
    }
    char *ident = PQescapeIdentifier(pg, opt.channel, strlen(opt.channel));
    char sql[512];
    snprintf(sql, sizeof sql, "LISTEN %s", ident);
    PQfreemem(ident);
    PGresult *res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "bridge: %s: %s", sql, PQerrorMessage(pg));
        exit(1);
    }
    PQclear(res);
    PQsetnonblocking(pg, 1);
    return pg;
}

static void parse_args(int argc, char **argv) {
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(k, "--send-asap")) {
            opt.send_asap = true;
            --i; /* a flag: no value */
        } else if (!strcmp(k, "--conninfo")) opt.conninfo = v;
        else if (!strcmp(k, "--channel")) opt.channel = v;
        else if (!strcmp(k, "--nats-url")) opt.nats_url = v;
        else if (!strcmp(k, "--stream")) opt.stream = v;
        else if (!strcmp(k, "--prefix")) opt.prefix = v;
        else if (!strcmp(k, "--durable")) opt.durable = v;
        else if (!strcmp(k, "--url")) opt.url = v;
        else if (!strcmp(k, "--ready-file")) opt.ready_file = v;
        else if (!strcmp(k, "--window")) opt.window = atoi(v);
        else if (!strcmp(k, "--batch")) opt.batch = atoi(v);
        else if (!strcmp(k, "--concurrency")) opt.concurrency = atoi(v);
        else if (!strcmp(k, "--max-held")) opt.max_held = atoi(v);
        else {
            fprintf(stderr, "bridge: unknown option %s\n", k);
            exit(2);
        }
    }
    if (!opt.conninfo || !opt.channel || !opt.nats_url || !opt.stream || !opt.prefix || !opt.durable ||
        !opt.url || opt.window < 1 || opt.batch < 1 || opt.concurrency < 1 || opt.max_held < 1) {
        fprintf(stderr, "usage: fobs_bridge --conninfo C --channel CH --nats-url U --stream S --prefix P "
                        "--durable D --url WEBHOOK [--window 1000] [--batch 500] [--concurrency 32] "
                        "[--max-held 1000] [--ready-file F] [--send-asap]\n");
        exit(2);
    }
}

int main(int argc, char **argv) {
    parse_args(argc, argv);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)opt.concurrency);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)opt.concurrency);

    natsSubscription *sub = NULL;
    setup_jetstream(&sub);
    PGconn *pg = setup_listen();
    /* The work runs on three named threads; the main thread (and cnats' own threads, unnamed)
     * keep the process name, so per-thread CPU shows which is which. */
    pthread_t fetcher, http, listener;
    pthread_create(&http, NULL, http_thread, NULL);
    pthread_create(&fetcher, NULL, fetch_thread, sub);
    pthread_create(&listener, NULL, listen_thread, pg);
    if (opt.ready_file) {
        FILE *f = fopen(opt.ready_file, "w");
        if (f) fputs("ready\n", f), fclose(f);
    }
    pthread_join(listener, NULL);

    atomic_store(&stopping, true);
    pthread_mutex_lock(&held_mu);
    pthread_cond_broadcast(&room_cv);
    pthread_mutex_unlock(&held_mu);
    curl_multi_wakeup(multi);
    pthread_join(fetcher, NULL);
    pthread_join(http, NULL);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 5000;
    js_PublishAsyncComplete(js, &po);
    if (atomic_load(&publish_errors))
        fprintf(stderr, "bridge: %ld PubAck errors (re-sent)\n", atomic_load(&publish_errors));
    PQfinish(pg);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return 0;
}
