// Per-key sequencer for `ordering = "entity"` (SPEC section 5, last bullet).
//
// Events of one key (entity_type + entity_id) reach the actions one at a time, in stream
// order; events of other keys are not held up. An event that arrives while its key is busy is
// parked (its transport token and its delivery slot stay held) until every earlier event of
// the key is done.
//
// "Earlier" is by stream position (the transport's sequence), not by arrival: a retried event
// comes back from the transport later, as a new delivery with the same position, and must
// still go before the later events parked meanwhile. So when the running event of a key is
// handed back for redelivery, its position is remembered as awaited: nothing later of that key
// starts until a delivery with that position (or, for transports without positions, that
// event id) arrives again and finishes.
//
// Bounded: the sequencer holds at most `capacity` events (running + parked; the caller's gate
// guarantees it). When that many are held and none runs, nothing can make progress (the
// transport delivers no more, so the awaited redeliveries cannot arrive): the newest parked
// event is then handed back (give_back) and awaited like a retried one, which never reorders
// its key. With the transport's own bound (JetStream max_ack_pending) at most `capacity` this
// cannot happen; docs/reliability.md "Per-key ordering" says why.
//
// Thread-safe. start/give_back run outside the lock; a start reached from inside another
// start/finish on the same thread is queued and run by the outermost call (no recursion when
// actions complete synchronously).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fraiseql_observer::host {

class KeyOrder {
  public:
    /// Identifies one admitted event when it finishes.
    struct Ticket {
        std::string key;
        uint64_t position = 0;
        std::string id;
    };
    struct Item {
        std::string key;       // see key_of()
        uint64_t position = 0; // stream sequence; 0 = the transport has none (arrival order)
        std::string id;        // event id: matches a redelivery when position is 0
        std::function<void(const Ticket &)> start; // hand the event to the actions
        std::function<void()> give_back;           // complete it RETRY without running it
    };
    /// How the running event of a key ended.
    enum class Settled {
        done,               // acknowledged or dead-lettered: the key moves on
        redelivery_expected // handed back (RETRY): later events wait for its redelivery
    };

    explicit KeyOrder(size_t capacity);

    /// The sequencing key: entity type and id, unambiguous for any bytes in either.
    static std::string key_of(std::string_view entity_type, std::string_view entity_id);

    /// Starts the event now (returns false) or parks it behind its key (returns true).
    bool admit(Item item);
    /// The running event of `t.key` ended; starts the key's next event when it may run.
    void finish(const Ticket &t, Settled how);
    /// Start-up: nothing starts until release(); everything admitted meanwhile is parked in
    /// position order. A new worker cannot know which earlier events of a key a previous one
    /// left unsettled; holding for as long as those take to come back (the transport's
    /// ack_wait) lets them go first. A window that fills up during the hold releases it.
    void hold();
    /// False when there was no hold (any more: a full window ends it early).
    bool release();
    /// Shutdown: every parked event is handed back, and from now on an event that would park
    /// is handed back at once; running events finish normally.
    void drain();

    size_t parked() const;
    size_t running() const;
    /// Positions handed back and not yet seen again (all keys).
    size_t awaited() const;

  private:
    using Slot = std::pair<uint64_t, uint64_t>; // (position, arrival) orders parked events
    struct KeyState {
        bool running = false;
        std::map<Slot, Item> parked;
        std::map<uint64_t, std::string> awaited; // position -> id
        bool idle() const { return !running && parked.empty() && awaited.empty(); }
    };
    using Work = std::function<void()>;

    // Moves the key's next event to running when nothing earlier is pending; adds its start
    // to `out`.
    void advance(KeyState &st, std::vector<Work> &out);
    void advance_all(std::vector<Work> &out);
    static void run(std::vector<Work> &work);

    mutable std::mutex mu_;
    std::unordered_map<std::string, KeyState> keys_;
    std::map<Slot, std::string> parked_index_; // every parked event -> its key (newest last)
    size_t capacity_;
    size_t running_ = 0, parked_ = 0, awaited_ = 0;
    uint64_t arrivals_ = 0;
    bool draining_ = false;
    bool holding_ = false;
};

} // namespace fraiseql_observer::host
