// Test support: the host side of a source, for testing a source plugin on its own. Each record
// the source emits is normalised like the host does (SPEC section 4), recorded, and its token
// completed: FAILED for a rejected payload, RETRY once for payloads the test chooses, held
// (never completed, as by a process that died) beyond a count the test chooses, else OK.
#pragma once

#include "event.hpp"
#include "instance.hpp"

#include <fraiseql_observer/plugin.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace fobs_test {

namespace recorder_detail {
namespace host = fraiseql_observer::host;
namespace sdk = fraiseql_observer::sdk;
using namespace std::chrono_literals;

struct Record {
    std::string payload;
    int64_t txid = -1;
    std::string channel;
    bool rejected = false;
    std::string reason;
    host::EventData event; // when accepted
};

class Recorder {
  public:
    /// Accepted records beyond this many are held (their tokens never completed by us).
    size_t hold_after = SIZE_MAX;
    /// RETRY the first time a payload matching this is seen.
    std::function<bool(const std::string &payload)> retry_first;

    host::EmitFn fn() {
        return [this](const fobs_source_record &r, sdk::Completion done) {
            Record rec;
            rec.payload = std::string(sdk::view(r.payload));
            rec.txid = r.txid;
            rec.channel = std::string(sdk::view(r.channel));
            auto result = host::normalize_event(rec.payload, "app_db", rec.txid, 1'700'000'000'000'000'000ull);
            std::lock_guard lk(mu_);
            if (retry_first && retry_first(rec.payload) && retried_.insert(rec.payload).second) {
                ++retries_;
                done.retry("test: try again", 30ms);
                return;
            }
            if (auto *rej = std::get_if<host::Rejection>(&result)) {
                rec.rejected = true;
                rec.reason = rej->reason;
                records_.push_back(rec);
                done.fail(rej->reason);
                return;
            }
            rec.event = std::get<host::EventData>(result);
            records_.push_back(rec);
            if (++accepted_ > hold_after) {
                held_.push_back(std::move(done));
                held_ids_.insert(rec.event.entity_id);
                return;
            }
            confirmed_ids_.insert(rec.event.entity_id);
            done.ok();
        };
    }
    std::vector<Record> records() {
        std::lock_guard lk(mu_);
        return records_;
    }
    size_t size() {
        std::lock_guard lk(mu_);
        return records_.size();
    }
    size_t held() {
        std::lock_guard lk(mu_);
        return held_.size();
    }
    std::set<std::string> held_ids() {
        std::lock_guard lk(mu_);
        return held_ids_;
    }
    std::set<std::string> confirmed_ids() {
        std::lock_guard lk(mu_);
        return confirmed_ids_;
    }
    /// Drops held tokens (they complete as RETRY, like a process that died).
    void drop_held() {
        std::vector<sdk::Completion> h;
        {
            std::lock_guard lk(mu_);
            h.swap(held_);
        }
    }
    int retries() {
        std::lock_guard lk(mu_);
        return retries_;
    }
    std::set<std::string> distinct_entity_ids() {
        std::lock_guard lk(mu_);
        std::set<std::string> s;
        for (const auto &r : records_)
            if (!r.rejected) s.insert(r.event.entity_id);
        return s;
    }

  private:
    std::mutex mu_;
    std::vector<Record> records_;
    std::vector<sdk::Completion> held_;
    std::set<std::string> held_ids_, confirmed_ids_, retried_;
    size_t accepted_ = 0;
    int retries_ = 0;
};

} // namespace recorder_detail

using recorder_detail::Record;
using recorder_detail::Recorder;

} // namespace fobs_test
