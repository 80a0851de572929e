// The pure half of the CDC source: a decoder of pgoutput protocol v1 messages (PostgreSQL 15,
// "Logical Replication Message Formats") and of the COPY BOTH frames that carry them
// ("Streaming Replication Protocol": 'w' XLogData, 'k' keepalive, 'r' standby status).
// No libpq, no I/O, no exceptions: every function here is safe on hostile bytes and is fuzzed
// (tests/fuzz/fuzz_pgoutput.cpp). All integers on the wire are big-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace fraiseql_observer::pg_listen::pgoutput {

/// One column of a Relation message. `key` is flag bit 1: part of the replica identity key
/// (the primary key under REPLICA IDENTITY DEFAULT, every column under FULL).
struct Column {
    std::string name;
    uint32_t type_oid = 0;
    int32_t type_mod = -1;
    bool key = false;
    /// Not on the wire: part of the table's primary key, filled by the reader from the catalog
    /// (pg_index) when it knows it, see Relation::primary_key_known and key_columns().
    bool primary_key = false;
};

/// 'R': a table's shape. Sent before a table's first change in every session and again after
/// its definition changes, so it must replace what a RelationCache holds.
struct Relation {
    uint32_t oid = 0;
    std::string schema, name; // schema "" on the wire means pg_catalog; kept as sent
    char replica_identity = 'd'; // 'd' default, 'n' nothing, 'f' full, 'i' index
    std::vector<Column> columns;
    /// Not on the wire: the reader filled Column::primary_key from the catalog.
    bool primary_key_known = false;
};

/// The columns (indexes into Relation::columns, in column order) whose values make a row's
/// entity_id. Under REPLICA IDENTITY FULL pgoutput flags every column as key, so there the
/// primary key is used when the reader supplied it (primary_key_known); with 'd' or 'i' the
/// replica identity's key columns, which every tuple (also a 'K' old tuple) carries; with 'n',
/// the primary key if known. Empty when the table has no usable key.
std::vector<size_t> key_columns(const Relation &rel);

/// TupleData column kinds: 'n' NULL (or, in a 'K' old tuple, a non-key column not sent),
/// 'u' unchanged TOAST value (no bytes sent), 't' text form.
enum class ValueKind : char { null = 'n', unchanged = 'u', text = 't' };

struct Value {
    ValueKind kind = ValueKind::null;
    std::string_view text; // only for kind text; a view into the decoded message
};

using Tuple = std::vector<Value>;

/// 'B'. commit_time_us: µs since 2000-01-01 00:00 UTC (PostgreSQL's epoch).
struct Begin {
    uint64_t final_lsn = 0;
    int64_t commit_time_us = 0;
    uint32_t xid = 0;
};

/// 'C'. end_lsn is what to acknowledge once every event of the transaction is confirmed.
struct Commit {
    uint8_t flags = 0;
    uint64_t commit_lsn = 0, end_lsn = 0;
    int64_t commit_time_us = 0;
};

/// 'O': the transaction came from another node (only when the publisher replicates itself).
struct Origin {
    uint64_t lsn = 0;
    std::string name;
};

/// 'Y': a non-built-in type used by a following Relation (enum, domain, composite...).
struct Type {
    uint32_t oid = 0;
    std::string schema, name;
};

struct Insert {
    uint32_t relation = 0;
    Tuple new_tuple;
};

/// 'U'. old_kind: 0 (no old tuple: the key did not change under DEFAULT), 'K' (the old key;
/// non-key columns are 'n' and mean "not sent") or 'O' (the whole old row, REPLICA IDENTITY FULL).
struct Update {
    uint32_t relation = 0;
    char old_kind = 0;
    Tuple old_tuple;
    Tuple new_tuple;
};

/// 'D'. old_kind 'K' or 'O', as for Update.
struct Delete {
    uint32_t relation = 0;
    char old_kind = 'K';
    Tuple old_tuple;
};

/// 'T'. options bit 1: CASCADE, bit 2: RESTART IDENTITY.
struct Truncate {
    uint8_t options = 0;
    std::vector<uint32_t> relations;
};

/// 'M': pg_logical_emit_message (the source's heartbeat uses it). flags bit 1: transactional.
struct Message {
    bool transactional = false;
    uint64_t lsn = 0;
    std::string prefix;
    std::string_view content; // a view into the decoded message
};

using Decoded = std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate, Message>;

/// For a Type message: the OID of the built-in type whose JSON rule (SPEC §6) applies to values
/// of the announced type, or 0 when values are plain text. pgoutput announces a domain under the
/// domain's OID with its base type's name in pg_catalog (sent as schema ""), so a domain over
/// int4, numeric or jsonb maps to 23, 1700 or 3802; an enum (its own name) maps to 0.
uint32_t base_type_oid(const Type &t);

/// Decodes one pgoutput message (the payload of an XLogData frame). On malformed input
/// (truncated, unknown tag, counts that overrun the buffer, a tuple whose column count
/// differs from what is present...) returns false and sets `error` to a short reason; never
/// reads past `msg`. Views in the result point into `msg`. [any-thread, pure]
bool decode(std::string_view msg, Decoded &out, std::string &error);

/// "0/16B3748" (PostgreSQL's %X/%X of the high and low 32 bits, upper-case hex).
std::string lsn_text(uint64_t lsn);
/// Parses "<hex>/<hex>" (each half 1..8 hex digits, either case); false on anything else.
bool parse_lsn(std::string_view text, uint64_t &lsn);

/// Relation cache by OID; put() replaces (an R message after ALTER TABLE). Not thread-safe:
/// owned by the reader thread.
class RelationCache {
  public:
    void put(Relation r);
    /// nullptr when the OID was never announced. The pointer lives until the next put() of
    /// the same OID or clear().
    const Relation *find(uint32_t oid) const;
    void clear();
    size_t size() const;

  private:
    std::unordered_map<uint32_t, Relation> relations_;
};

// ---- COPY BOTH framing ------------------------------------------------------------------

/// 'w': one WAL chunk; `payload` (a view into the frame) is one pgoutput message.
struct XLogData {
    uint64_t data_start = 0, wal_end = 0;
    int64_t send_time_us = 0;
    std::string_view payload;
};

/// 'k': primary keepalive. reply_requested: answer with a standby status at once or be cut
/// after wal_sender_timeout.
struct Keepalive {
    uint64_t wal_end = 0;
    int64_t send_time_us = 0;
    bool reply_requested = false;
};

using CopyFrame = std::variant<XLogData, Keepalive>;

/// Decodes one CopyData buffer from PQgetCopyData ('w' or 'k'); false + error otherwise.
bool decode_copy_frame(std::string_view data, CopyFrame &out, std::string &error);

/// The 'r' standby status update, 34 bytes: write, flush, apply LSNs (only flush moves the
/// slot's confirmed_flush_lsn; all three are set explicitly), the client's clock in µs since
/// 2000-01-01, and whether the server should reply at once.
std::string standby_status(uint64_t write, uint64_t flush, uint64_t apply, int64_t now_us, bool reply);

/// µs since 2000-01-01 00:00 UTC from the system clock.
int64_t pg_now_us();

/// Seconds between the Unix epoch and PostgreSQL's (2000-01-01 00:00 UTC).
inline constexpr int64_t pg_epoch_unix_seconds = 946684800;

} // namespace fraiseql_observer::pg_listen::pgoutput
