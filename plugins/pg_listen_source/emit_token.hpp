// Completion tokens the source creates for the records it hands to the host (abi.h: the side
// that creates a token owns its memory). Each token keeps its receiver alive through a
// shared_ptr, so a completion that arrives after stop() (a late PubAck, a token the host held
// on to) lands in valid memory; receivers ignore outcomes once detached.
#pragma once

#include <fraiseql_observer/abi.h>
#include <fraiseql_observer/plugin.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace fraiseql_observer::pg_listen {

/// An outcome copied out of the borrowed fobs_outcome.
struct EmitOutcome {
    fobs_outcome_kind kind = FOBS_OUTCOME_RETRY;
    int64_t retry_after_ms = -1;
    std::string reason;
};

/// Receives the outcome of record `key`. [any-thread]; must not block for long and must not
/// call back into the host's sink (abi.h).
class OutcomeReceiver {
  public:
    virtual ~OutcomeReceiver() = default;
    virtual void on_outcome(uint64_t key, EmitOutcome outcome) noexcept = 0;
};

class EmitToken {
  public:
    /// A fresh token; it frees itself when completed.
    static const fobs_completion *make(std::shared_ptr<OutcomeReceiver> receiver, uint64_t key) {
        auto *t = new EmitToken(std::move(receiver), key);
        return &t->raw_;
    }

  private:
    EmitToken(std::shared_ptr<OutcomeReceiver> receiver, uint64_t key)
        : receiver_(std::move(receiver)), key_(key) {
        raw_.struct_size = sizeof(raw_);
        raw_.ctx = this;
        raw_.complete = &EmitToken::complete;
    }

    static void complete(const fobs_completion *self, const fobs_outcome *o) {
        std::unique_ptr<EmitToken> token(static_cast<EmitToken *>(self->ctx));
        EmitOutcome out;
        if (o) {
            out.kind = o->kind;
            if (FOBS_HAS_FIELD(o, fobs_outcome, retry_after_ms)) out.retry_after_ms = o->retry_after_ms;
            if (FOBS_HAS_FIELD(o, fobs_outcome, reason)) out.reason = std::string(sdk::view(o->reason));
        }
        token->receiver_->on_outcome(token->key_, std::move(out));
    }

    fobs_completion raw_{};
    std::shared_ptr<OutcomeReceiver> receiver_;
    uint64_t key_;
};

} // namespace fraiseql_observer::pg_listen
