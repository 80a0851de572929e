// The memory transport's fobs.status/1 and fobs.dlq/1 answers (shapes in abi.h), so that
// `fraiseql-observer status` and `dlq …` work with it as with any transport.
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

std::string MemoryLog::answer(std::string_view request_json, std::string op) {
    json req;
    try {
        req = json::parse(request_json);
    } catch (const json::exception &e) {
        throw std::runtime_error(std::string("request is not valid JSON: ") + e.what());
    }
    if (!req.is_object()) throw std::invalid_argument("request is not a JSON object");
    if (op.empty()) {
        if (!req.contains("op") || !req["op"].is_string())
            throw std::invalid_argument("fobs.dlq/1 request needs a string \"op\"");
        op = req["op"].get<std::string>();
        if (op.rfind("dlq_", 0) != 0) op = "dlq_" + op; // the 1.0 names, used below
    }

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
        // The generic rendering (abi.h): the log, the asked-for consumer, the DLQ, and a
        // table of every consumer group.
        json sections = json::array();
        sections.push_back({{"title", "log"},
                            {"rows", json::array({json::array({"messages", log_.size()}),
                                                  json::array({"bytes", bytes_}),
                                                  json::array({"capacity", config_.capacity}),
                                                  json::array({"last_seq", last_seq_})})}});
        if (!wanted.empty()) {
            json rows = json::array();
            if (one.is_object())
                for (const char *k : {"pending", "ack_pending", "in_flight", "redelivered", "workers"})
                    rows.push_back(json::array({k, one[k]}));
            else
                rows.push_back(json::array({"open", false}));
            sections.push_back({{"title", "consumer"}, {"name", wanted}, {"rows", rows}});
        }
        sections.push_back({{"title", "dlq"},
                            {"rows", json::array({json::array({"depth", dlq_.size()}),
                                                  json::array({"capacity", config_.dead_letter_capacity})})}});
        if (!consumers.empty()) {
            json table = {{"title", "consumer groups"},
                          {"columns", {"name", "pipeline", "open", "workers", "pending", "ack_pending"}},
                          {"rows", json::array()}};
            for (const auto &c : consumers)
                table["rows"].push_back({c["name"], c["pipeline"], c["open"], c["workers"], c["pending"],
                                         c["ack_pending"]});
            sections.push_back({{"title", "groups"}, {"rows", json::array()}, {"tables", json::array({table})}});
        }
        return json{{"summary", "in-process log (this process only)"},
                    {"sections", sections},
                    {"transport", "memory"},
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
        return json{{"entries", entries}, {"depth", dlq_.size()}, {"total", dlq_.size()}}.dump();
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
        dlq_changed();
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
        dlq_changed();
        return json{{"purged", purged}}.dump();
    }
    throw sdk::UnsupportedOperation("unknown op '" + op + "' (memory transport offers status, "
                                "and fobs.dlq/1 list, show, replay, purge)");
}

} // namespace fraiseql_observer::memory
