#!/usr/bin/env bash
# Regenerates the captured pgoutput samples (*.hex) from a running PostgreSQL 15 started with
# wal_level = logical:   capture.sh <port> [host]
# Each sample: the SQL that produced it (comment lines), then one pgoutput message per line in
# hex, in stream order, as returned by pg_logical_slot_get_binary_changes(... proto_version '1').
# The test data is committed; this script only documents and reproduces it. Values that depend on
# the run (OIDs, LSNs, xids, times, the TOAST filler) differ between captures, and the tests
# only assert what is stable or read the rest from the sample itself.
set -euo pipefail
port=$1
host=${2:-127.0.0.1}
out=$(cd "$(dirname "$0")" && pwd)
psql_() { psql -X -v ON_ERROR_STOP=1 -q -At -h "$host" -p "$port" -U postgres -d pgo_capture "$@"; }

psql -X -q -h "$host" -p "$port" -U postgres -d postgres \
    -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'cap'" \
    -c "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = 'upstream'" \
    -c "DROP DATABASE IF EXISTS pgo_capture" \
    -c "CREATE DATABASE pgo_capture"
psql_ <<'SQL'
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS int4 CHECK (VALUE > 0);
CREATE TABLE tb_sample (
  id int8 PRIMARY KEY, i2 int2, i4 int4, o oid, n numeric, f4 float4, f8 float8, b bool,
  j json, jb jsonb, t text, u uuid, ts timestamptz, tsn timestamp, d date, by bytea,
  arr int4[], tarr text[], nul text);
CREATE TABLE tb_order_item (region text, num int4, qty int4, note text, PRIMARY KEY (region, num));
CREATE TABLE tb_full (id int4 PRIMARY KEY, name text, score numeric);
ALTER TABLE tb_full REPLICA IDENTITY FULL;
CREATE TABLE tb_toast (id int4 PRIMARY KEY, counter int4, big text);
ALTER TABLE tb_toast ALTER COLUMN big SET STORAGE EXTERNAL;  -- out of line, uncompressed
CREATE TABLE tb_toast_full (id int4 PRIMARY KEY, counter int4, big text);
ALTER TABLE tb_toast_full ALTER COLUMN big SET STORAGE EXTERNAL;
ALTER TABLE tb_toast_full REPLICA IDENTITY FULL;
CREATE TABLE tb_typed (id int4 PRIMARY KEY, feeling mood, amount positive_int);
CREATE TABLE tb_a (id int4 PRIMARY KEY);
CREATE TABLE tb_b (id int4 PRIMARY KEY);
CREATE TABLE tb_shape (id int4 PRIMARY KEY, a text);
CREATE PUBLICATION pub FOR ALL TABLES;
SELECT 'init' FROM pg_create_logical_replication_slot('cap', 'pgoutput');
SELECT pg_replication_origin_create('upstream');
SQL

# capture <name> <sql>: runs the SQL, then writes the slot's new messages to <name>.hex
capture() {
    local name=$1 sql=$2
    psql_ -c "$sql" >/dev/null
    {
        sed 's/^/# /' <<<"$sql"
        psql_ -c "SELECT substr(data::text, 3) FROM pg_logical_slot_get_binary_changes('cap', NULL, NULL,
                  'proto_version', '1', 'publication_names', 'pub', 'messages', 'true')"
    } >"$out/$name.hex"
}

capture types "INSERT INTO tb_sample VALUES
  (1, -32768, 2147483647, 4294967295, 12345678901234567890.123456789012345678901234567890,
   3.25, -1.5e300, true, '{\"a\": [1, 2.50, null]}', '{\"b\": {\"c\": \"x\\\\ny\"}}',
   E'tab\\there \"quoted\" back\\\\slash \\u00e9\\u20ac\\x01 end', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   '2026-11-27 04:23:51.123456+00', '1999-12-31 23:59:59', '2000-01-01', '\\xdeadbeef00ff',
   '{1,NULL,3}', '{\"with space\",\"q\\\"uote\",NULL}', NULL),
  (2, 0, 0, 0, 'NaN', 'Infinity', '-Infinity', false, 'null', '[]', '', NULL, NULL, NULL, NULL, '\\x',
   '{}', '{}', NULL),
  (3, 1, -1, 1, '-0.000000000000000000001', 'NaN', 'NaN', NULL, '1e5', '\"s\"', 'x', NULL, 'infinity',
   '-infinity', NULL, NULL, '{{1,2},{3,4}}', NULL, NULL),
  (4, NULL, NULL, NULL, 'Infinity', 1.5e-40, 1e308, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL),
  (5, NULL, NULL, NULL, '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL)"

capture composite_key "INSERT INTO tb_order_item VALUES ('eu', 1, 5, 'first'), ('eu', 2, 7, NULL);
UPDATE tb_order_item SET qty = 6 WHERE region = 'eu' AND num = 1;
UPDATE tb_order_item SET num = 3 WHERE region = 'eu' AND num = 2;
DELETE FROM tb_order_item WHERE region = 'eu' AND num = 1;"

capture replica_full "INSERT INTO tb_full VALUES (1, 'ann', 10.50);
UPDATE tb_full SET score = 11.25 WHERE id = 1;
UPDATE tb_full SET name = NULL WHERE id = 1;
DELETE FROM tb_full WHERE id = 1;"

big="(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 200) g)"
capture toast "INSERT INTO tb_toast VALUES (1, 0, $big);
UPDATE tb_toast SET counter = counter + 1 WHERE id = 1;
INSERT INTO tb_toast_full VALUES (1, 0, $big);
UPDATE tb_toast_full SET counter = counter + 1 WHERE id = 1;
DELETE FROM tb_toast WHERE id = 1;"

capture type_messages "INSERT INTO tb_typed VALUES (1, 'happy', 42)"

capture truncate "INSERT INTO tb_a VALUES (1); INSERT INTO tb_b VALUES (1);
TRUNCATE tb_a, tb_b RESTART IDENTITY CASCADE;"

capture messages "SELECT pg_logical_emit_message(false, 'fraiseql_observer', 'heartbeat');
BEGIN; SELECT pg_logical_emit_message(true, 'app', E'\\\\x00ff'::bytea); INSERT INTO tb_a VALUES (2); COMMIT;"

capture origin "SELECT pg_replication_origin_session_setup('upstream');
BEGIN; SELECT pg_replication_origin_xact_setup('0/ABCDEF', '2026-01-01 00:00:00+00');
INSERT INTO tb_a VALUES (3); COMMIT;"

capture alter_table "INSERT INTO tb_shape VALUES (1, 'x');
ALTER TABLE tb_shape ADD COLUMN b int4;
INSERT INTO tb_shape VALUES (2, 'y', 20);
ALTER TABLE tb_shape DROP COLUMN a;
UPDATE tb_shape SET b = 21 WHERE id = 2;"

capture multi_row "INSERT INTO tb_a SELECT generate_series(10, 14)"

psql_ -c "SELECT pg_drop_replication_slot('cap')" -c "SELECT pg_replication_origin_drop('upstream')" >/dev/null
