// The per-key sequencer alone (host/key_order): order within a key, concurrency across keys,
// a retried head keeping the later events of its key parked until its redelivery is done,
// skip (the head dead-lettered: the key moves on), the full-window valve, drain, and
// synchronous completions without recursion.
#include "key_order.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

namespace {

using fraiseql_observer::host::KeyOrder;
using Settled = KeyOrder::Settled;

// Records what the sequencer starts and hands back; the test finishes events by hand.
struct Recorder {
    std::vector<std::string> started;     // "key/position"
    std::vector<std::string> given_back;  // "key/position"
    std::map<std::string, KeyOrder::Ticket> running; // by "key/position"

    KeyOrder::Item item(const std::string &key, uint64_t pos, std::string id = {}) {
        KeyOrder::Item it;
        it.key = key;
        it.position = pos;
        it.id = id.empty() ? key + "-" + std::to_string(pos) : id;
        it.start = [this](const KeyOrder::Ticket &t) {
            std::string name = t.key + "/" + std::to_string(t.position);
            started.push_back(name);
            running[name] = t;
        };
        it.give_back = [this, name = key + "/" + std::to_string(pos)] { given_back.push_back(name); };
        return it;
    }
    void finish(KeyOrder &o, const std::string &name, Settled how) {
        auto it = running.find(name);
        ASSERT_NE(it, running.end()) << name << " is not running";
        KeyOrder::Ticket t = it->second;
        running.erase(it);
        o.finish(t, how);
    }
};

TEST(KeyOrder, one_event_per_key_in_flight_in_stream_order) {
    KeyOrder o(100);
    Recorder r;
    EXPECT_FALSE(o.admit(r.item("A", 1)));
    EXPECT_TRUE(o.admit(r.item("A", 2)));
    EXPECT_TRUE(o.admit(r.item("A", 3)));
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/1"}));
    EXPECT_EQ(o.parked(), 2u);
    r.finish(o, "A/1", Settled::done);
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/1", "A/2"}));
    r.finish(o, "A/2", Settled::done);
    r.finish(o, "A/3", Settled::done);
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/1", "A/2", "A/3"}));
    EXPECT_EQ(o.parked(), 0u);
    EXPECT_EQ(o.running(), 0u);
}

TEST(KeyOrder, other_keys_are_not_held_up) {
    KeyOrder o(100);
    Recorder r;
    o.admit(r.item("A", 1));
    o.admit(r.item("A", 2));
    EXPECT_FALSE(o.admit(r.item("B", 3)));
    EXPECT_FALSE(o.admit(r.item("C", 4)));
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/1", "B/3", "C/4"}));
    EXPECT_EQ(o.running(), 3u);
    EXPECT_EQ(o.parked(), 1u);
}

TEST(KeyOrder, retried_head_keeps_later_events_parked_until_its_redelivery_succeeds) {
    KeyOrder o(100);
    Recorder r;
    o.admit(r.item("A", 10));
    o.admit(r.item("A", 11));
    r.finish(o, "A/10", Settled::redelivery_expected); // nak'ed: comes back later
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/10"}));
    EXPECT_EQ(o.parked(), 1u);
    EXPECT_EQ(o.awaited(), 1u);
    // A later event of the key arrives before the redelivery: it waits too.
    EXPECT_TRUE(o.admit(r.item("A", 12)));
    // The redelivery (same stream position) runs first, and fails again.
    EXPECT_FALSE(o.admit(r.item("A", 10)));
    r.finish(o, "A/10", Settled::redelivery_expected);
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/10", "A/10"}));
    EXPECT_FALSE(o.admit(r.item("A", 10)));
    r.finish(o, "A/10", Settled::done);
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/10", "A/10", "A/10", "A/11"}));
    r.finish(o, "A/11", Settled::done);
    r.finish(o, "A/12", Settled::done);
    EXPECT_EQ(r.started.back(), "A/12");
    EXPECT_EQ(o.awaited(), 0u);
}

TEST(KeyOrder, a_redelivery_that_arrives_before_its_head_finished_is_not_awaited_again) {
    // nak with no delay: the transport can deliver the event again before the thread that
    // nak'ed it told the sequencer. It parks (the key is still running) and runs next; no
    // stale awaited position may block the key afterwards.
    KeyOrder o(100);
    Recorder r;
    o.admit(r.item("A", 1));
    o.admit(r.item("A", 2));
    EXPECT_TRUE(o.admit(r.item("A", 1))); // the redelivery, early
    r.finish(o, "A/1", Settled::redelivery_expected);
    EXPECT_EQ(o.awaited(), 0u);
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/1", "A/1"}));
    r.finish(o, "A/1", Settled::done);
    r.finish(o, "A/2", Settled::done);
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/1", "A/1", "A/2"}));
    EXPECT_EQ(o.running(), 0u);
}

TEST(KeyOrder, skip_a_dead_lettered_head_lets_the_key_move_on) {
    // "skip": after its last delivery the head is dead-lettered (Settled::done): no
    // redelivery is awaited and the next event of the key starts.
    KeyOrder o(100);
    Recorder r;
    o.admit(r.item("A", 1));
    o.admit(r.item("A", 2));
    r.finish(o, "A/1", Settled::redelivery_expected);
    EXPECT_FALSE(o.admit(r.item("A", 1)));
    r.finish(o, "A/1", Settled::done); // the last delivery failed: DLQ
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/1", "A/1", "A/2"}));
}

TEST(KeyOrder, redeliveries_without_positions_are_matched_by_event_id) {
    KeyOrder o(100);
    Recorder r;
    o.admit(r.item("A", 0, "e1"));
    o.admit(r.item("A", 0, "e2"));
    auto first = r.running.begin()->first;
    r.finish(o, first, Settled::redelivery_expected);
    EXPECT_TRUE(o.admit(r.item("A", 0, "e3")));
    EXPECT_FALSE(o.admit(r.item("A", 0, "e1"))); // takes e1's old place, ahead of e2 and e3
    ASSERT_EQ(r.started.size(), 2u);
    r.finish(o, r.running.begin()->first, Settled::done);
    ASSERT_EQ(r.started.size(), 3u);
    EXPECT_EQ(r.running.begin()->second.id, "e2");
}

TEST(KeyOrder, an_earlier_position_arriving_late_goes_before_the_parked_ones) {
    KeyOrder o(100);
    Recorder r;
    o.admit(r.item("A", 5));
    o.admit(r.item("A", 9));
    o.admit(r.item("A", 7)); // e.g. redelivered after a worker elsewhere gave it up
    r.finish(o, "A/5", Settled::done);
    r.finish(o, "A/7", Settled::done);
    r.finish(o, "A/9", Settled::done);
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/5", "A/7", "A/9"}));
}

TEST(KeyOrder, full_window_with_nothing_running_hands_back_the_newest_parked_event) {
    KeyOrder o(3);
    Recorder r;
    o.admit(r.item("A", 1));
    o.admit(r.item("A", 2));
    r.finish(o, "A/1", Settled::redelivery_expected); // held: A/2
    o.admit(r.item("A", 3));                          // held: A/2 A/3
    EXPECT_TRUE(r.given_back.empty());
    o.admit(r.item("B", 4)); // B runs: something can still finish
    EXPECT_TRUE(r.given_back.empty());
    r.finish(o, "B/4", Settled::done);
    o.admit(r.item("A", 5)); // held: A/2 A/3 A/5, nothing running: stuck
    EXPECT_EQ(r.given_back, (std::vector<std::string>{"A/5"}));
    EXPECT_EQ(o.parked(), 2u);
    EXPECT_EQ(o.awaited(), 2u);
    // The freed slot lets A/1's redelivery in; A/5 comes back once there is room again and
    // still waits behind A/2 and A/3.
    EXPECT_FALSE(o.admit(r.item("A", 1)));
    r.finish(o, "A/1", Settled::done);
    EXPECT_TRUE(o.admit(r.item("A", 5)));
    EXPECT_EQ(r.given_back.size(), 1u);
    r.finish(o, "A/2", Settled::done);
    r.finish(o, "A/3", Settled::done);
    r.finish(o, "A/5", Settled::done);
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/1", "B/4", "A/1", "A/2", "A/3", "A/5"}));
}

TEST(KeyOrder, drain_hands_back_parked_and_would_be_parked_events) {
    KeyOrder o(100);
    Recorder r;
    o.admit(r.item("A", 1));
    o.admit(r.item("A", 2));
    o.admit(r.item("A", 3));
    o.drain();
    EXPECT_EQ(r.given_back, (std::vector<std::string>{"A/2", "A/3"}));
    EXPECT_FALSE(o.admit(r.item("B", 4))); // a free key still runs
    o.admit(r.item("A", 5));               // would wait behind A/1: handed back
    EXPECT_EQ(r.given_back.back(), "A/5");
    r.finish(o, "A/1", Settled::done);
    EXPECT_EQ(o.parked(), 0u);
}

TEST(KeyOrder, start_up_hold_parks_everything_then_runs_each_key_from_its_earliest_event) {
    // A restarted worker: new events (positions 20, 21) arrive before the ones a dead worker
    // left unsettled (10, 11) come back; the hold lets those go first.
    KeyOrder o(100);
    Recorder r;
    o.hold();
    EXPECT_TRUE(o.admit(r.item("A", 20)));
    EXPECT_TRUE(o.admit(r.item("B", 21)));
    EXPECT_TRUE(o.admit(r.item("A", 11)));
    EXPECT_TRUE(o.admit(r.item("A", 10)));
    EXPECT_TRUE(r.started.empty());
    o.release();
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/10", "B/21"}));
    r.finish(o, "A/10", Settled::done);
    r.finish(o, "A/11", Settled::done);
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/10", "B/21", "A/11", "A/20"}));
}

TEST(KeyOrder, a_window_filled_during_the_hold_releases_it) {
    KeyOrder o(3);
    Recorder r;
    o.hold();
    o.admit(r.item("A", 2));
    o.admit(r.item("B", 3));
    EXPECT_TRUE(r.started.empty());
    o.admit(r.item("A", 1)); // 3 held, nothing running: nothing more can arrive
    EXPECT_EQ(r.started, (std::vector<std::string>{"A/1", "B/3"}));
    EXPECT_TRUE(r.given_back.empty());
}

TEST(KeyOrder, synchronous_completions_do_not_nest) {
    // An action that completes inside start(): 100 000 parked events of one key run one after
    // the other from the outermost call, not as 100 000 nested frames.
    const uint64_t n = 100'000;
    KeyOrder o(n + 1);
    uint64_t expected = 1;
    bool in_order = true;
    std::function<KeyOrder::Item(uint64_t)> make;
    bool open = false;
    make = [&](uint64_t pos) {
        KeyOrder::Item it;
        it.key = "K";
        it.position = pos;
        it.start = [&](const KeyOrder::Ticket &t) {
            if (!open) return; // the first one stays running until everything is parked
            in_order &= t.position == expected++;
            o.finish(t, Settled::done);
        };
        it.give_back = [] {};
        return it;
    };
    o.admit(make(1));
    for (uint64_t p = 2; p <= n; ++p) o.admit(make(p));
    EXPECT_EQ(o.parked(), n - 1);
    open = true;
    expected = 2;
    o.finish(KeyOrder::Ticket{"K", 1, ""}, Settled::done);
    EXPECT_TRUE(in_order);
    EXPECT_EQ(expected, n + 1);
    EXPECT_EQ(o.running(), 0u);
}

TEST(KeyOrder, threaded_actions_keep_per_key_order_and_run_keys_concurrently) {
    // 50 keys x 40 events admitted in stream order by one thread (the transport's); 4 worker
    // threads complete them in random order, sometimes asking for a redelivery, which the
    // "transport" thread re-admits. Every key's successful runs are in position order.
    const int keys = 50, per_key = 40, capacity = 256;
    KeyOrder o(capacity);
    std::mutex mu;
    std::condition_variable cv;
    std::deque<KeyOrder::Ticket> runq;
    std::deque<KeyOrder::Item> redeliver;
    std::map<std::string, std::vector<uint64_t>> done_order;
    std::atomic<int> done{0}, concurrent{0}, peak{0}, slots{0};
    std::function<KeyOrder::Item(std::string, uint64_t)> make = [&](std::string key, uint64_t pos) {
        KeyOrder::Item it;
        it.key = std::move(key);
        it.position = pos;
        it.start = [&](const KeyOrder::Ticket &t) {
            int c = ++concurrent;
            int p = peak.load();
            while (c > p && !peak.compare_exchange_weak(p, c)) {
            }
            std::lock_guard l(mu);
            runq.push_back(t);
            cv.notify_one();
        };
        it.give_back = [&, k = it.key, pos] {
            std::lock_guard l(mu);
            --slots;
            redeliver.push_back(make(k, pos));
        };
        return it;
    };
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int w = 0; w < 4; ++w)
        workers.emplace_back([&, w] {
            std::mt19937 rng(w);
            for (;;) {
                KeyOrder::Ticket t;
                {
                    std::unique_lock l(mu);
                    cv.wait(l, [&] { return stop || !runq.empty(); });
                    if (stop && runq.empty()) return;
                    // Pick a random runnable one: completions arrive out of order.
                    size_t i = rng() % runq.size();
                    t = runq[i];
                    runq.erase(runq.begin() + static_cast<long>(i));
                }
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
                --concurrent;
                if (rng() % 10 == 0) { // transient failure: nak, comes back later
                    {
                        std::lock_guard l(mu);
                        redeliver.push_back(make(t.key, t.position));
                        --slots;
                    }
                    o.finish(t, Settled::redelivery_expected);
                } else {
                    {
                        std::lock_guard l(mu);
                        done_order[t.key].push_back(t.position);
                        --slots;
                    }
                    ++done;
                    o.finish(t, Settled::done);
                }
            }
        });
    // The "transport": stream order across keys interleaved, redeliveries first, never more
    // than `capacity` held.
    uint64_t pos = 0;
    int next = 0;
    const int total = keys * per_key;
    while (done < total) {
        std::optional<KeyOrder::Item> item;
        {
            std::lock_guard l(mu);
            if (slots >= capacity) {
            } else if (!redeliver.empty()) {
                item = std::move(redeliver.front());
                redeliver.pop_front();
            } else if (next < total) {
                ++pos;
                item = make("key" + std::to_string(next % keys), pos);
                ++next;
            }
            if (item) ++slots;
        }
        if (item) o.admit(std::move(*item));
        else std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    {
        std::lock_guard l(mu);
        stop = true;
        cv.notify_all();
    }
    for (auto &t : workers) t.join();
    ASSERT_EQ(done_order.size(), static_cast<size_t>(keys));
    for (auto &[k, v] : done_order) {
        ASSERT_EQ(v.size(), static_cast<size_t>(per_key)) << k;
        EXPECT_TRUE(std::is_sorted(v.begin(), v.end())) << k;
    }
    EXPECT_GT(peak.load(), 4); // many keys ran at once
    EXPECT_EQ(o.parked(), 0u);
    EXPECT_EQ(o.awaited(), 0u);
}

} // namespace
