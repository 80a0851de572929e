#include "memory_consumer.hpp"
#include <pthread.h>

namespace fraiseql_observer::memory {
namespace {

// The completion token of one delivery. Owned by us, freed when completed; it keeps the log
// alive, so a host that completes late (even after close) never touches freed memory.
struct DeliveryToken {
    fobs_completion completion{};
    std::shared_ptr<MemoryLog> log;
    Group *group; // groups live as long as the log
    uint64_t seq, generation;

    static void complete(const fobs_completion *self, const fobs_outcome *outcome) {
        auto *t = static_cast<DeliveryToken *>(self->ctx);
        t->log->settle(*t->group, t->seq, t->generation, *outcome);
        delete t;
    }
};

} // namespace

MemoryConsumer::MemoryConsumer(std::shared_ptr<MemoryLog> log,
                               const sdk::ConsumerOptions &options, sdk::ConsumerSink sink,
                               uint64_t id, std::shared_ptr<ConsumerRegistry> registry)
    : log_(std::move(log)), registry_(std::move(registry)), sink_(sink) {
    state_.id = id;
    group_ = &log_->attach(options, state_);
    {
        std::lock_guard lock(registry_->mu);
        registry_->open.insert(this);
    }
    thread_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "memory-consume");
        run();
    });
}

MemoryConsumer::~MemoryConsumer() { close(); }

void MemoryConsumer::run() {
    while (auto d = log_->next_delivery(*group_, state_)) {
        auto *token = new DeliveryToken{{}, log_, group_, d->sequence, d->generation};
        token->completion.struct_size = sizeof(fobs_completion);
        token->completion.ctx = token;
        token->completion.complete = &DeliveryToken::complete;
        const fobs_event ev = d->event->view(d->delivery_count, d->sequence);
        // May block (the host's back-pressure) and may complete the token before returning.
        sink_.deliver(ev, &token->completion);
    }
}

void MemoryConsumer::join() noexcept {
    std::lock_guard lock(join_mu_);
    log_->request_close(state_);
    if (thread_.joinable()) thread_.join();
}

void MemoryConsumer::close() noexcept {
    join();
    std::lock_guard lock(join_mu_);
    if (closed_) return;
    closed_ = true;
    log_->detach(*group_, state_);
    std::lock_guard reg(registry_->mu);
    registry_->open.erase(this);
}

} // namespace fraiseql_observer::memory
