#include "key_order.hpp"

#include <algorithm>
#include <iterator>
#include <vector>

namespace fraiseql_observer::host {

KeyOrder::KeyOrder(size_t capacity) : capacity_(std::max<size_t>(1, capacity)) {}

std::string KeyOrder::key_of(std::string_view entity_type, std::string_view entity_id) {
    // entity_type is a subject token (no NUL, bounded); its length first keeps "a"+"bc" and
    // "ab"+"c" apart whatever bytes entity_id holds.
    std::string k = std::to_string(entity_type.size());
    k += ':';
    k += entity_type;
    k += entity_id;
    return k;
}

bool KeyOrder::admit(Item item) {
    std::vector<Work> work;
    bool parked = false;
    {
        std::lock_guard lock(mu_);
        const uint64_t arrival = ++arrivals_;
        KeyState &st = keys_[item.key];
        // A redelivery of an event this process handed back: it takes its old place.
        for (auto it = st.awaited.begin(); it != st.awaited.end(); ++it) {
            if (item.position != 0 ? it->first == item.position : it->second == item.id) {
                item.position = it->first;
                st.awaited.erase(it);
                --awaited_;
                break;
            }
        }
        if (item.position == 0) item.position = arrival;
        uint64_t earliest = UINT64_MAX;
        if (!st.parked.empty()) earliest = st.parked.begin()->first.first;
        if (!st.awaited.empty()) earliest = std::min(earliest, st.awaited.begin()->first);
        if (!holding_ && !st.running && item.position < earliest) {
            st.running = true;
            ++running_;
            Ticket t{item.key, item.position, item.id};
            work.push_back([start = std::move(item.start), t = std::move(t)] { start(t); });
        } else if (draining_) {
            work.push_back(std::move(item.give_back));
            if (st.idle()) keys_.erase(item.key);
        } else {
            parked = true;
            const Slot slot{item.position, arrival};
            parked_index_.emplace(slot, item.key);
            st.parked.emplace(slot, std::move(item));
            ++parked_;
            // Full and nothing running: no completion will ever free a slot, and the awaited
            // redeliveries cannot come in. Hand back the newest parked event (the last of its
            // key, so its key keeps its order: it is awaited like a retried one).
            if (running_ == 0 && running_ + parked_ >= capacity_ && holding_) {
                // The transport hands out no more: whatever was coming back has come.
                holding_ = false;
                advance_all(work);
            } else if (running_ == 0 && running_ + parked_ >= capacity_) {
                auto newest = std::prev(parked_index_.end());
                KeyState &vs = keys_.at(newest->second);
                auto node = vs.parked.extract(newest->first);
                vs.awaited.emplace(node.key().first, node.mapped().id);
                ++awaited_;
                --parked_;
                parked_index_.erase(newest);
                work.push_back(std::move(node.mapped().give_back));
            }
        }
    }
    run(work);
    return parked;
}

void KeyOrder::finish(const Ticket &t, Settled how) {
    std::vector<Work> work;
    {
        std::lock_guard lock(mu_);
        auto it = keys_.find(t.key);
        if (it == keys_.end() || !it->second.running) return; // not admitted here: ignore
        KeyState &st = it->second;
        st.running = false;
        --running_;
        // The redelivery may already be here (parked with the same position) when the
        // transport was faster than the caller: then nothing more is awaited.
        auto back = st.parked.lower_bound(Slot{t.position, 0});
        const bool already_back = back != st.parked.end() && back->first.first == t.position;
        if (how == Settled::redelivery_expected && !draining_ && !already_back) {
            st.awaited.emplace(t.position, t.id);
            ++awaited_;
        }
        advance(st, work);
        if (st.idle()) keys_.erase(it);
    }
    run(work);
}

void KeyOrder::advance(KeyState &st, std::vector<Work> &out) {
    if (holding_ || st.running || st.parked.empty()) return;
    auto first = st.parked.begin();
    if (!st.awaited.empty() && st.awaited.begin()->first < first->first.first) return;
    auto node = st.parked.extract(first);
    parked_index_.erase(node.key());
    --parked_;
    st.running = true;
    ++running_;
    Item &item = node.mapped();
    Ticket t{item.key, item.position, item.id};
    out.push_back([start = std::move(item.start), t = std::move(t)] { start(t); });
}

void KeyOrder::hold() {
    std::lock_guard lock(mu_);
    holding_ = true;
}

bool KeyOrder::release() {
    std::vector<Work> work;
    {
        std::lock_guard lock(mu_);
        if (!holding_) return false;
        holding_ = false;
        advance_all(work);
    }
    run(work);
    return true;
}

void KeyOrder::advance_all(std::vector<Work> &out) {
    // Keys in the order of their earliest parked event: the stream's order across keys.
    std::vector<std::string> order;
    for (const auto &[slot, key] : parked_index_) order.push_back(key);
    for (const auto &key : order) {
        auto it = keys_.find(key);
        if (it != keys_.end()) advance(it->second, out);
    }
}

void KeyOrder::drain() {
    std::vector<Work> work;
    {
        std::lock_guard lock(mu_);
        draining_ = true;
        holding_ = false;
        for (auto it = keys_.begin(); it != keys_.end();) {
            for (auto &[slot, item] : it->second.parked) work.push_back(std::move(item.give_back));
            it->second.parked.clear();
            awaited_ -= it->second.awaited.size();
            it->second.awaited.clear();
            it = it->second.idle() ? keys_.erase(it) : std::next(it);
        }
        parked_index_.clear();
        parked_ = 0;
    }
    run(work);
}

size_t KeyOrder::parked() const {
    std::lock_guard lock(mu_);
    return parked_;
}

size_t KeyOrder::running() const {
    std::lock_guard lock(mu_);
    return running_;
}

size_t KeyOrder::awaited() const {
    std::lock_guard lock(mu_);
    return awaited_;
}

void KeyOrder::run(std::vector<Work> &work) {
    // An action that completes synchronously finishes its event inside start(), which may
    // start the key's next event, and so on: the outermost call on this thread runs them one
    // after the other instead of nesting one stack frame per event.
    thread_local std::vector<Work> *queue = nullptr;
    if (queue) {
        for (auto &w : work) queue->push_back(std::move(w));
        return;
    }
    std::vector<Work> mine = std::move(work);
    queue = &mine;
    struct Reset {
        ~Reset() { queue = nullptr; }
    } reset;
    for (size_t i = 0; i < mine.size(); ++i) {
        Work w = std::move(mine[i]); // push_back may reallocate `mine` while w runs
        if (w) w();
    }
}

} // namespace fraiseql_observer::host
