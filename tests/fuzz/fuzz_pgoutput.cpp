// The CDC source's pure half (plugins/pg_listen_source/pgoutput.cpp, cdc_event.cpp) on arbitrary
// bytes. The input's first byte shapes a synthetic relation; the rest is one CopyData frame and,
// read again, one pgoutput message. Properties:
//  - decode_copy_frame / decode never crash or read out of bounds (ASan), and a refusal always
//    says why; an XLogData payload is a view inside the input;
//  - decode is all-or-nothing: strict prefixes of an accepted message are refused (every one
//    up to 256 bytes, a spread of them beyond);
//  - a decoded Insert/Update/Delete with a relation of matching width either gives a payload or
//    a reason; a payload is JSON for nlohmann and for the host's checker, and the host's
//    normalize_event accepts it (unless its entity_id breaks the host's bounds: over 1 KiB or a
//    NUL) with the same id, entity_type, operation and entity_id;
//  - entity_name() of any decoded Relation is a valid NATS subject token;
//  - lsn_text / parse_lsn round-trip.
#include "event.hpp"
#include "fuzz_check.hpp"
#include "json_text.hpp"

#include <cdc_event.hpp>
#include <pgoutput.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace pg = fraiseql_observer::pg_listen;
namespace pgo = fraiseql_observer::pg_listen::pgoutput;
namespace host = fraiseql_observer::host;
using json = nlohmann::json;

namespace {

// Type OIDs with their own JSON rule, and two that are plain strings.
const uint32_t k_types[] = {16, 20, 21, 23, 26, 114, 700, 701, 1700, 3802, 25, 17};

const std::vector<pgo::Value> *tuple_of(const pgo::Decoded &d, uint32_t &relation) {
    if (auto *i = std::get_if<pgo::Insert>(&d)) return relation = i->relation, &i->new_tuple;
    if (auto *u = std::get_if<pgo::Update>(&d)) return relation = u->relation, &u->new_tuple;
    if (auto *x = std::get_if<pgo::Delete>(&d)) return relation = x->relation, &x->old_tuple;
    return nullptr;
}

void check_payload(const std::string &out, const std::string &entity_type) {
    FUZZ_CHECK(json::accept(out), "payload " + fobs_fuzz::shown(out));
    FUZZ_CHECK(host::json_valid(out), "payload " + fobs_fuzz::shown(out));
    json p = json::parse(out);
    auto r = host::normalize_event(out, "pg", -1, 0);
    auto *ev = std::get_if<host::EventData>(&r);
    // The host's own bounds on entity_id (PostgreSQL never sends NUL; a key over 1 KiB is the
    // host's to refuse, with its reason).
    const std::string eid = p["entity_id"].get<std::string>();
    if (!ev && (eid.size() > host::k_max_entity_id_bytes || eid.find('\0') != std::string::npos)) return;
    FUZZ_CHECK(ev, "rejected: " + std::get<host::Rejection>(r).reason + " payload " + fobs_fuzz::shown(out));
    FUZZ_CHECK(ev->id == p["id"].get<std::string>());
    FUZZ_CHECK(ev->entity_type == entity_type && p["entity_type"] == entity_type);
    FUZZ_CHECK(ev->operation == p["operation"].get<std::string>());
    FUZZ_CHECK(ev->entity_id == p["entity_id"].get<std::string>());
    FUZZ_CHECK(p["entity"].is_object());
}

void check_change(const pgo::Decoded &d, uint8_t shape) {
    uint32_t relation = 0;
    const std::vector<pgo::Value> *tuple = tuple_of(d, relation);
    if (!tuple) return;
    pgo::Relation rel;
    rel.oid = relation;
    rel.schema = "public";
    rel.name = "tb_fuzz";
    rel.replica_identity = "dfin"[shape & 3];
    rel.primary_key_known = (shape & 4) != 0;
    for (size_t i = 0; i < tuple->size(); ++i) {
        pgo::Column c;
        c.name = "c" + std::to_string(i);
        c.type_oid = k_types[(shape + i * 5) % std::size(k_types)];
        c.key = i == 0 || ((shape >> 3) >> (i % 5) & 1);
        c.primary_key = i == 0;
        rel.columns.push_back(std::move(c));
    }
    pg::TxContext tx{"7301234567890123456", 0x16B3748, static_cast<int64_t>(shape) * 1000003 - 5000000, 77};
    std::string out, error;
    if (pg::change_payload(rel, d, tx, shape, "Fuzz", out, error)) check_payload(out, "Fuzz");
    else FUZZ_CHECK(!error.empty());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    const uint8_t shape = data[0];
    const std::string input(reinterpret_cast<const char *>(data + 1), size - 1);

    pgo::CopyFrame frame;
    std::string error;
    if (pgo::decode_copy_frame(input, frame, error)) {
        if (auto *x = std::get_if<pgo::XLogData>(&frame)) {
            FUZZ_CHECK(x->payload.data() >= input.data() &&
                       x->payload.data() + x->payload.size() <= input.data() + input.size());
            pgo::Decoded d;
            std::string e2;
            if (pgo::decode(x->payload, d, e2)) check_change(d, shape);
        }
    } else {
        FUZZ_CHECK(!error.empty());
    }

    pgo::Decoded d;
    error.clear();
    if (pgo::decode(input, d, error)) {
        // Every prefix of a short message, a spread of prefixes of a long one (the unit tests
        // cut every captured sample at every byte); copies, so ASan sees a read past the end.
        const size_t step = input.size() <= 256 ? 1 : input.size() / 64;
        for (size_t len = 0; len < input.size(); len += (input.size() - len <= 16 ? 1 : step)) {
            std::string cut = input.substr(0, len);
            pgo::Decoded again;
            std::string e2;
            FUZZ_CHECK(!pgo::decode(cut, again, e2), "prefix of length " + std::to_string(len) + " of " + fobs_fuzz::shown(input));
        }
        check_change(d, shape);
        if (auto *r = std::get_if<pgo::Relation>(&d)) {
            std::string name = pg::entity_name(*r, {});
            FUZZ_CHECK(host::valid_subject_token(name), "entity name " + fobs_fuzz::shown(name));
        }
    } else {
        FUZZ_CHECK(!error.empty(), "no reason for " + fobs_fuzz::shown(input));
    }

    uint64_t lsn = 0;
    if (pgo::parse_lsn(input, lsn)) {
        uint64_t back = 0;
        FUZZ_CHECK(pgo::parse_lsn(pgo::lsn_text(lsn), back) && back == lsn, fobs_fuzz::shown(input));
    }
    FUZZ_CHECK(pg::uuid_v5(input) == host::uuid_v5(input)); // one id namespace for the project
    return 0;
}
