// Admin operations of the memory transport, in the same JSON shapes as the nats transport so
// that `fraiseql-observer status` and `dlq …` work the same with either.
#include "memory_log.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <stdexcept>

namespace fraiseql_observer::memory {
namespace {

using nlohmann::json;

json entry_json(const DeadLetter &d) {
    return json{{"seq", d.seq},
                {"dlq_seq", d.seq}, // the nats transport's name for the same field
                {"id", d.event->id},
                {"subject", d.event->entity_type + "." + d.event->operation},
                {"entity_type", d.event->entity_type},
                {"operation", d.event->operation},
                {"entity_id", d.event->entity_id},
                {"reason", d.reason},
                {"action", d.action},
                {"delivery_count", d.delivery_count},
                {"original_seq", d.original_seq},
                {"pipeline", d.pipeline},
                {"consumer", d.consumer},
                {"time_unix_ms", d.time_unix_ms}};
}

uint64_t seq_arg(const json &req) {
    const auto &v = req.at("seq");
    if (!v.is_number_integer() || v.get<int64_t>() < 1)
        throw std::runtime_error("'seq' must be a positive integer");
    return v.get<uint64_t>();
}

} // namespace

std::string MemoryLog::admin(std::string_view request_json) {
    json req;
    try {
        req = json::parse(request_json);
    } catch (const json::exception &e) {
        throw std::runtime_error(std::string("admin request is not valid JSON: ") + e.what());
    }
    if (!req.is_object() || !req.contains("op") || !req["op"].is_string())
        throw std::invalid_argument("admin request needs a string \"op\"");
    const std::string op = req["op"];

    std::unique_lock lock(mu_);
    auto find_dlq = [&](uint64_t seq) {
        return std::find_if(dlq_.begin(), dlq_.end(),
                            [&](const DeadLetter &d) { return d.seq == seq; });
    };

    if (op == "status") {
        // Like the nats transport, {"consumer": name} also answers that one group as an object
        // (what `fraiseql-observer status` prints); null when it does not exist.
        const std::string wanted = req.contains("consumer") && req["consumer"].is_string()
                                       ? req["consumer"].get<std::string>()
                                       : std::string();
        json consumers = json::array();
        json one = nullptr;
        for (const auto &[name, g] : groups_) {
            uint64_t redelivered_now = 0, in_flight = 0;
            for (const auto &[seq, u] : g->unsettled) {
                if (u.delivery_count > 1 || !u.in_flight) ++redelivered_now;
                if (u.in_flight) ++in_flight;
            }
            consumers.push_back(json{{"name", name},
                                     {"pipeline", g->pipeline},
                                     {"open", g->open()},
                                     {"workers", g->consumers.size()},
                                     {"pending", g->undelivered},
                                     {"ack_pending", g->unsettled.size()},
                                     {"in_flight", in_flight},
                                     {"redelivered", redelivered_now},
                                     {"redeliveries_total", g->redelivered}});
            if (name == wanted) one = consumers.back();
        }
        return json{{"transport", "memory"},
                    {"messages", log_.size()},
                    {"bytes", bytes_},
                    {"capacity", config_.capacity},
                    {"last_seq", last_seq_},
                    {"consumers", consumers},
                    {"consumer", one},
                    {"dlq_depth", dlq_.size()},
                    {"dlq", {{"depth", dlq_.size()}, {"capacity", config_.dead_letter_capacity}}}}
            .dump();
    }
    if (op == "dlq_list") {
        uint64_t limit = 100;
        if (req.contains("limit")) {
            if (!req["limit"].is_number_integer() || req["limit"].get<int64_t>() < 0)
                throw std::runtime_error("'limit' must be a non-negative integer");
            limit = req["limit"].get<uint64_t>();
        }
        json entries = json::array();
        for (const auto &d : dlq_) {
            if (entries.size() >= limit) break;
            entries.push_back(entry_json(d));
        }
        return json{{"entries", entries}, {"total", dlq_.size()}}.dump();
    }
    if (op == "dlq_show") {
        if (!req.contains("seq")) throw std::runtime_error("dlq_show needs \"seq\"");
        const uint64_t seq = seq_arg(req);
        auto it = find_dlq(seq);
        if (it == dlq_.end()) throw std::runtime_error("no DLQ entry with seq " + std::to_string(seq));
        json e = entry_json(*it);
        e["body"] = it->event->body;
        return e.dump();
    }
    if (op == "dlq_replay") {
        std::vector<uint64_t> wanted;
        if (req.contains("seq")) {
            const uint64_t seq = seq_arg(req);
            if (find_dlq(seq) == dlq_.end())
                throw std::runtime_error("no DLQ entry with seq " + std::to_string(seq));
            wanted.push_back(seq);
        } else if (req.value("all", false) == true) {
            for (const auto &d : dlq_) wanted.push_back(d.seq);
        } else {
            throw std::runtime_error("dlq_replay needs \"seq\" or \"all\": true");
        }
        // Re-enqueue with a new sequence; replays bypass de-duplication on purpose (the id is
        // the same, and the original was stored within the window).
        uint64_t replayed = 0;
        json details = json::array();
        for (uint64_t seq : wanted) {
            if (log_.size() >= config_.capacity) break; // admin never blocks
            auto it = find_dlq(seq);
            EventPtr ev = it->event;
            dlq_.erase(it);
            const std::string id = ev->id;
            const uint64_t new_seq = append(std::move(ev));
            details.push_back(json{{"dlq_seq", seq}, {"id", id}, {"seq", new_seq}});
            ++replayed;
        }
        lock.unlock();
        if (replayed > 0) published_.add(double(replayed));
        json answer{{"replayed", replayed}, {"entries", details}};
        if (replayed < wanted.size()) {
            answer["not_replayed"] = wanted.size() - replayed;
            answer["error"] = "transport full";
        }
        return answer.dump();
    }
    if (op == "dlq_purge") {
        uint64_t purged = 0;
        if (req.contains("seq")) {
            auto it = find_dlq(seq_arg(req));
            if (it != dlq_.end()) {
                dlq_.erase(it);
                purged = 1;
            }
        } else {
            purged = dlq_.size();
            dlq_.clear();
        }
        return json{{"purged", purged}}.dump();
    }
    throw sdk::UnsupportedOperation("unknown admin op '" + op + "' (memory transport offers status, "
                                "dlq_list, dlq_show, dlq_replay, dlq_purge)");
}

} // namespace fraiseql_observer::memory
