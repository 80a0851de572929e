-- The benchmark's tables and triggers (bench/run.sh and bench/pg/bench_pg both apply this file,
-- after the outbox DDL of `fraiseql-observer sql`).
-- Two identical order tables: one raises the classic pg_notify event (notify mode, raw LISTEN,
-- Node.js bridges), one writes the transactional outbox through capture() (outbox mode).
-- "timestamp" is clock_timestamp() at insert: the start of every latency figure.
CREATE TABLE bench_notify (
    id         bigserial PRIMARY KEY,
    customer   text NOT NULL,
    status     text NOT NULL,
    total      numeric(12, 2) NOT NULL,
    note       text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE bench_outbox (LIKE bench_notify INCLUDING ALL);
CREATE FUNCTION bench_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bench_events', json_build_object(
        'id',          'n' || NEW.id,
        'entity_type', 'Order',
        'operation',   TG_OP,
        'entity_id',   NEW.id::text,
        'timestamp',   to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'entity',      row_to_json(NEW))::text);
    RETURN NEW;
END $$;
CREATE TRIGGER bench_notify_event AFTER INSERT ON bench_notify
    FOR EACH ROW EXECUTE FUNCTION bench_notify_event();
CREATE TRIGGER bench_outbox_capture AFTER INSERT OR UPDATE OR DELETE ON bench_outbox
    FOR EACH ROW EXECUTE FUNCTION fraiseql_observer.capture('Order');
-- The ordering row (issue 15): the same events as bench_notify, but 1 000 entities take turns
-- (entity_id = id % 1000), so `ordering = "entity"` has keys with several events in flight.
CREATE TABLE bench_keyed (LIKE bench_notify INCLUDING ALL);
CREATE FUNCTION bench_keyed_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('bench_keyed_events', json_build_object(
        'id',          'k' || NEW.id,
        'entity_type', 'Order',
        'operation',   TG_OP,
        'entity_id',   (NEW.id % 1000)::text,
        'timestamp',   to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'entity',      row_to_json(NEW))::text);
    RETURN NEW;
END $$;
CREATE TRIGGER bench_keyed_event AFTER INSERT ON bench_keyed
    FOR EACH ROW EXECUTE FUNCTION bench_keyed_event();
