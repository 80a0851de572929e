#include "cdc_sql.hpp"

#include "connection.hpp"

namespace fraiseql_observer::pg_listen {

std::string cdc_sql(const Config &c, std::string_view slot) {
    std::string tables;
    for (const auto &t : c.tables) tables += (tables.empty() ? "" : ", ") + quote_qualified(t);
    std::string out;
    out += "-- fraiseql-observer: logical replication (mode = \"cdc\") for publication \"" + c.publication +
           "\" and slot \"" + std::string(slot) + "\".\n";
    out += "-- Run as a superuser. Nothing here touches the application's tables except REPLICA IDENTITY.\n\n";
    out += "-- 1. Server settings (wal_level needs a restart). Bound the WAL a stopped observer can keep:\n";
    out += "--    ALTER SYSTEM SET wal_level = logical;\n";
    out += "--    ALTER SYSTEM SET max_slot_wal_keep_size = '10GB';\n\n";
    out += "-- 2. The observer's role needs REPLICATION (and SELECT on the tables for snapshot = \"initial\"):\n";
    out += "--    CREATE ROLE fraiseql_observer LOGIN REPLICATION PASSWORD '...';\n";
    out += "--    GRANT SELECT ON " + (tables.empty() ? std::string("ALL TABLES IN SCHEMA public") : tables) +
           " TO fraiseql_observer;\n";
    out += "--    and a pg_hba.conf line that lets it connect with replication=database.\n\n";
    out += "-- 3. The publication: which tables become events.\n";
    out += "CREATE PUBLICATION " + quote_ident(c.publication) +
           (tables.empty() ? std::string(" FOR ALL TABLES") : " FOR TABLE " + tables) + ";\n\n";
    out += "-- 4. Optional: UPDATE events carry `changes` (old values) and DELETE events the whole old row\n";
    out += "--    only for tables with REPLICA IDENTITY FULL (more WAL per UPDATE/DELETE):\n";
    if (c.tables.empty()) {
        out += "--    ALTER TABLE <schema.table> REPLICA IDENTITY FULL;\n\n";
    } else {
        for (const auto &t : c.tables) out += "--    ALTER TABLE " + quote_qualified(t) + " REPLICA IDENTITY FULL;\n";
        out += "\n";
    }
    out += "-- 5. The replication slot (the observer streams from it; it keeps WAL until the observer confirms):\n";
    out += "SELECT pg_create_logical_replication_slot('" + std::string(slot) + "', 'pgoutput');\n";
    return out;
}

} // namespace fraiseql_observer::pg_listen
