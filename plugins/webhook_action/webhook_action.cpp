// The `webhook` action (SPEC section 7): one signed HTTP request per event — or, with
// batch_max_events > 1, per batch of events — outcomes mapped to ok / retry(Retry-After) /
// failed for the transport (for every event of a batch alike).
#include "batcher.hpp"
#include "dispatcher.hpp"
#include "response.hpp"
#include "signing.hpp"
#include "webhook_config.hpp"

#include <fraiseql_observer/plugin.hpp>
#include <fraiseql_observer/redact.hpp>

#include <curl/curl.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>

namespace fraiseql_observer::webhook {

class WebhookAction final : public sdk::Action {
  public:
    static constexpr const auto &config_keys = webhook::config_keys;

    explicit WebhookAction(sdk::Host host)
        : Action(host), config_(WebhookConfig::parse(host.config_json())) {
        // One instance serves every pipeline that lists the action; the host names it
        // "pipeline/component" only when a single pipeline does (abi.h, instance_name). Events
        // carry no pipeline, so a shared instance could not keep batches apart.
        if (config_.batch_max_events > 1 &&
            host.instance_name().find('/') == std::string_view::npos)
            throw sdk::ConfigError(
                "batch_max_events",
                "\"batch_max_events\" > 1 needs an action used by one pipeline only (a batch never "
                "mixes pipelines), but several pipelines list this action; give each pipeline its "
                "own [actions.<name>] section");
        // Header lines that are the same for every request, built once.
        std::string ua = "User-Agent: fraiseql-observer/" + std::string(host.host_version());
        static_headers_ = {"Content-Type: application/json", ua,
                           // Stop curl from waiting for "100 Continue" before larger bodies.
                           "Expect:"};
        for (const auto &[name, value] : config_.headers) {
            // A configured Content-Type or User-Agent replaces ours.
            for (auto it = static_headers_.begin(); it != static_headers_.end();) {
                auto colon = it->find(':');
                if (colon == name.size() && curl_strnequal(it->c_str(), name.c_str(), colon))
                    it = static_headers_.erase(it);
                else
                    ++it;
            }
            static_headers_.push_back(name + ": " + value);
        }
        if (!config_.secrets.empty()) signer_ = std::make_unique<Signer>(config_.secrets);
        for (const auto &line : static_headers_) {
            curl_slist *l = curl_slist_append(shared_headers_, line.c_str());
            if (!l) throw std::bad_alloc();
            shared_headers_ = l;
        }
    }

    ~WebhookAction() override {
        stop();
        batcher_.reset();
        dispatcher_.reset(); // every job (and its link to the shared headers) is gone
        curl_slist_free_all(shared_headers_);
        if (curl_initialised_) curl_global_cleanup();
    }

    void start() override {
        if (dispatcher_) return;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        curl_initialised_ = true;
        std::string action(host().component_name());
        duration_ = host().histogram("webhook_request_duration_seconds",
                                     "Duration of webhook HTTP requests", {{"action", action}});
        static constexpr std::array<const char *, 5> classes = {"2xx", "3xx", "4xx", "5xx",
                                                                "error"};
        for (size_t i = 0; i < classes.size(); ++i)
            responses_[i] = host().counter("webhook_responses_total",
                                           "Webhook HTTP responses by status class",
                                           {{"action", action}, {"class", classes[i]}});
        auto d = std::make_unique<Dispatcher>(config_, host(),
                                              [this](Job &job, const Exchange &x) { settle(job, x); });
        d->start();
        dispatcher_ = std::move(d);
        if (config_.batch_max_events > 1) {
            batch_events_ = host().histogram(
                "webhook_batch_events", "Events per webhook batch request", {{"action", action}},
                {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000});
            batcher_ = std::make_unique<Batcher>(
                static_cast<size_t>(config_.batch_max_events),
                std::chrono::milliseconds(config_.batch_max_wait_ms),
                [this](std::vector<BatchItem> &&batch) { send_batch(std::move(batch)); });
            batcher_->start();
        }
        host().info("webhook action started: " + config_.method + " " + sdk::redact_secrets(config_.url) +
                    ", max_concurrency " + std::to_string(config_.max_concurrency) +
                    (config_.secrets.empty() ? ", unsigned" : ", signed") +
                    (batcher_ ? ", batches of up to " + std::to_string(config_.batch_max_events) +
                                    " events or " + std::to_string(config_.batch_max_wait_ms) + " ms"
                              : std::string()));
    }

    void stop() noexcept override {
        // The open batch first (its requests would need the dispatcher), then the dispatcher.
        if (batcher_) batcher_->stop();
        if (dispatcher_) dispatcher_->stop();
    }

    bool ready(std::string &why) override {
        if (dispatcher_ && dispatcher_->running()) return true;
        why = dispatcher_ ? "webhook action stopped" : "webhook action not started";
        return false;
    }

    // fobs.limits/1: one execute() is one HTTP request, bounded by timeout_ms (curl's
    // CURLOPT_TIMEOUT_MS covers connecting too); no in-process retries (the transport
    // redelivers), so one attempt is the whole of it.
    uint64_t max_attempt_ms() const override {
        constexpr uint64_t attempts_in_process = 1;
        return static_cast<uint64_t>(config_.timeout_ms) * attempts_in_process;
    }

    // fobs.limits/1: requests in flight at once (dispatcher.cpp); a batch request counts once.
    uint64_t max_concurrency() const override { return static_cast<uint64_t>(config_.max_concurrency); }

    void execute(const sdk::Event &event, sdk::Completion done) override {
        if (!dispatcher_) {
            done.retry("webhook action not started");
            return;
        }
        // The id goes into header lines (Idempotency-Key, webhook-id) and curl takes them as C
        // strings: a CR or LF would add headers or a whole second request, a NUL would cut the
        // id short. The host refuses such ids already; a plugin does not rely on its host for
        // what it puts on the wire.
        if (std::string_view bad = header_unsafe(event.id); !bad.empty()) {
            std::string reason = "event id contains " + std::string(bad) +
                                 ", which cannot be sent in a header; not sent";
            host().log(FOBS_LOG_WARN, "webhook refused an event: " + reason);
            done.fail(reason);
            return;
        }
        if (batcher_) {
            batcher_->add(event.id, event.body, std::move(done));
            return;
        }
        auto job = std::make_unique<Job>();
        job->event_id = std::string(event.id);
        job->body = std::string(event.body);
        job->done = std::move(done);
        submit(std::move(job));
    }

  private:
    // Batcher (filling thread or timer): one request for the whole batch, whose webhook-id is
    // derived from its events' ids; the tokens ride along in batch order.
    void send_batch(std::vector<BatchItem> &&batch) {
        batch_events_.observe(static_cast<double>(batch.size()));
        auto job = std::make_unique<Job>();
        job->event_id = batch_webhook_id(batch);
        job->body = batch_body(batch);
        job->done = std::move(batch.front().done);
        job->more.reserve(batch.size() - 1);
        for (size_t i = 1; i < batch.size(); ++i) job->more.push_back(std::move(batch[i].done));
        batch.clear(); // the copies of ids and bodies are no longer needed
        submit(std::move(job));
    }

    // Adds the per-request headers (Idempotency-Key, signatures over the whole body) and queues
    // the request. `job.event_id` is the event's id, or the batch's webhook-id.
    void submit(std::unique_ptr<Job> job) {
        append_header(*job, "Idempotency-Key: " + job->event_id);
        if (signer_) {
            int64_t ts = std::chrono::duration_cast<std::chrono::seconds>(host().realtime()).count();
            append_header(*job, "webhook-id: " + job->event_id);
            append_header(*job, "webhook-timestamp: " + std::to_string(ts));
            append_header(*job, "webhook-signature: " +
                                    signer_->standard_webhooks(job->event_id, ts, job->body));
            if (config_.fraiseql_signature)
                append_header(*job, "X-FraiseQL-Signature-256: " + signer_->fraiseql(ts, job->body));
        }
        // Link the lines every request shares after this request's own ones (no copies).
        curl_slist *last = job->headers;
        while (last->next) last = last->next;
        last->next = shared_headers_;
        job->own_last = last;
        dispatcher_->submit(std::move(job));
    }

    // What makes `value` unfit for a header line ("CR", "LF", "NUL", "a control character"),
    // or "" when it is fine.
    static std::string_view header_unsafe(std::string_view value) {
        for (char ch : value) {
            auto c = static_cast<unsigned char>(ch);
            if (c == '\r') return "CR";
            if (c == '\n') return "LF";
            if (c == 0) return "NUL";
            if ((c < 0x20 && c != '\t') || c == 0x7f) return "a control character";
        }
        return {};
    }

    static void append_header(Job &job, const std::string &line) {
        // On allocation failure curl returns NULL and the list is left intact; the request
        // then goes out without that header, so fail it here instead.
        curl_slist *l = curl_slist_append(job.headers, line.c_str());
        if (l) job.headers = l;
        else throw std::bad_alloc();
    }

    // Loop thread: turn the exchange into an outcome, count it, complete the token.
    void settle(Job &job, const Exchange &x) {
        int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(host().realtime()).count();
        Verdict v = classify(x, config_.follow_redirects, now_s);
        double secs =
            static_cast<double>(static_cast<uint64_t>(host().monotonic().count()) - job.started_ns) /
            1e9;
        duration_.observe(secs);
        responses_[class_index(v.status_class)].add(1);
        // A batch's outcome is every one of its events' outcome; the reason names the batch
        // (each event's DLQ entry then says which request failed it).
        std::string reason = std::move(v.reason);
        if (config_.batch_max_events > 1 && v.kind != FOBS_OUTCOME_OK)
            reason += " (batch " + job.event_id + " of " + std::to_string(job.events()) + " events)";
        switch (v.kind) {
        case FOBS_OUTCOME_OK:
            job.done.ok();
            for (auto &d : job.more) d.ok();
            break;
        case FOBS_OUTCOME_RETRY: {
            if (host().log_enabled(FOBS_LOG_DEBUG))
                host().log(FOBS_LOG_DEBUG, "webhook will be retried: " + reason, job.event_id);
            auto after = std::chrono::milliseconds(v.retry_after_ms);
            job.done.retry(reason, after);
            for (auto &d : job.more) d.retry(reason, after);
            break;
        }
        default:
            host().log(FOBS_LOG_WARN, "webhook failed permanently: " + reason, job.event_id);
            job.done.fail(reason);
            for (auto &d : job.more) d.fail(reason);
            break;
        }
    }

    static size_t class_index(std::string_view c) {
        if (c == "2xx") return 0;
        if (c == "3xx") return 1;
        if (c == "4xx") return 2;
        if (c == "5xx") return 3;
        return 4;
    }

    WebhookConfig config_;
    std::vector<std::string> static_headers_;
    curl_slist *shared_headers_ = nullptr; // static_headers_ as one list shared by all jobs
    std::unique_ptr<Signer> signer_;        // only with secrets
    std::unique_ptr<Dispatcher> dispatcher_;
    std::unique_ptr<Batcher> batcher_; // only with batch_max_events > 1
    sdk::Metric batch_events_;
    bool curl_initialised_ = false;
    sdk::Metric duration_;
    std::array<sdk::Metric, 5> responses_;
};

} // namespace fraiseql_observer::webhook

FOBS_PLUGIN("webhook", FOBS_WEBHOOK_VERSION,
            "HTTP webhooks with Standard Webhooks signing, on libcurl multi",
            fraiseql_observer::webhook::WebhookAction)
