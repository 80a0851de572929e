// One CDC change -> the JSON event payload the source hands to the host (SPEC §4, §6). Pure:
// no libpq, no I/O; the host's normalize_event validates the result and copies members as
// written, so what is built here is what a transport stores.
#pragma once

#include "pgoutput.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace fraiseql_observer::pg_listen {

/// What every event of one transaction shares.
struct TxContext {
    std::string_view system_id; // IDENTIFY_SYSTEM's systemid
    uint64_t commit_lsn = 0;
    int64_t commit_time_us = 0; // µs since 2000-01-01 UTC
    uint32_t xid = 0;
};

/// Entity name of a table: an override from `overrides` (key "schema.table"; also the bare
/// table name when the schema is public), else drop a leading "tb_" and PascalCase the rest
/// (tb_order_item -> OrderItem; order -> Order).
std::string entity_name(const pgoutput::Relation &rel, const std::map<std::string, std::string> &overrides);

/// Writes one event payload for `change` (an Insert, Update or Delete of `rel`) to `out`
/// (cleared first). `index` is the change's position in its transaction (0-based, counting
/// every emitted event of the transaction); with system_id and commit_lsn it gives the id, a
/// name-based UUID v5 over "pg-cdc\n<system_id>\n<commit lsn text>\n<index>", so a change
/// re-read after a restart keeps its id.
/// Members: id, entity_type, operation (INSERT/UPDATE/DELETE), entity_id (the key columns'
/// values joined by ':' in column order), timestamp (commit time, RFC 3339 UTC with µs),
/// txid, lsn (commit LSN text), entity (the new row; DELETE: the old row or key, only the
/// columns sent), changes (UPDATE with an 'O' old tuple: {col: {"old", "new"}} for the columns
/// that differ; else null), unchanged (columns sent as unchanged TOAST; omitted when none).
/// Returns false with `error` when the change does not fit `rel` (column count), a key value is
/// missing, or the change is not an Insert/Update/Delete.
bool change_payload(const pgoutput::Relation &rel, const pgoutput::Decoded &change, const TxContext &tx,
                    uint32_t index, std::string_view entity_type, std::string &out, std::string &error);

/// TRUNCATE: one event per relation, operation "TRUNCATE", entity_id "*", entity null.
void truncate_payload(const pgoutput::Relation &rel, const TxContext &tx, uint32_t index,
                      std::string_view entity_type, std::string &out);

/// One column of a row read by the initial snapshot. text == nullptr means NULL.
struct SnapshotColumn {
    std::string_view name;
    uint32_t type_oid;
    bool key;
    const char *text;
    size_t len;
};

/// A row read by the initial snapshot: operation "READ", entity = the row; id = UUID v5 over
/// "pg-cdc-snapshot\n<system_id>\n<consistent lsn text>\n<schema.table>\n<entity_id>".
/// No txid and no timestamp members (the snapshot has no commit of its own; the host stamps the
/// time it received the row); lsn = the consistent point. False with `error` when a key value
/// is NULL or no column is a key.
bool snapshot_payload(std::string_view schema, std::string_view table, const std::vector<SnapshotColumn> &row,
                      std::string_view system_id, uint64_t consistent_lsn, std::string_view entity_type,
                      std::string &out, std::string &error);

/// The name-based UUID v5 (RFC 9562, SHA-1) of `name` in the project's CDC namespace, as text.
std::string uuid_v5(std::string_view name);

/// Appends the JSON value of one column's text form for type `type_oid` (SPEC §6).
void append_json_value(std::string &out, uint32_t type_oid, std::string_view text);

/// Appends `s` as a JSON string: control characters as \u00XX; bytes that are not valid UTF-8
/// are replaced with U+FFFD.
void append_json_string(std::string &out, std::string_view s);

} // namespace fraiseql_observer::pg_listen
