-- Demo schema for ./run.sh: the FraiseQL reference document's order table and its
-- notify_order_created trigger (verbatim), plus a table captured through the outbox.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

CREATE TABLE IF NOT EXISTS tb_order (
    pk_order         BIGSERIAL PRIMARY KEY,
    id               UUID NOT NULL DEFAULT gen_random_uuid(),
    identifier       TEXT NOT NULL,
    items            TEXT[] NOT NULL DEFAULT '{}',
    shipping_address TEXT,
    status           TEXT NOT NULL DEFAULT 'pending',
    total_amount     NUMERIC(12, 2) NOT NULL DEFAULT 0,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- From the reference document: NOTIFY mode (fire-and-forget).
CREATE OR REPLACE FUNCTION notify_order_created() RETURNS TRIGGER AS $$
BEGIN
  PERFORM pg_notify('fraiseql_events', json_build_object(
    'entity_type', 'Order',
    'operation',   'INSERT',
    'entity_id',   NEW.id::text,
    'timestamp',   NOW()
  )::text);
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS tr_order_created ON tb_order;
CREATE TRIGGER tr_order_created AFTER INSERT ON tb_order
FOR EACH ROW EXECUTE FUNCTION notify_order_created();

-- Outbox mode (zero loss): the row change is written in the same transaction.
-- Needs the objects printed by `fraiseql-observer sql` (run.sh installs them first).
CREATE TABLE IF NOT EXISTS tb_payment (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id   UUID,
    amount     NUMERIC(12, 2) NOT NULL,
    status     TEXT NOT NULL DEFAULT 'authorized',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
DROP TRIGGER IF EXISTS tr_payment_capture ON tb_payment;
CREATE TRIGGER tr_payment_capture AFTER INSERT OR UPDATE OR DELETE ON tb_payment
FOR EACH ROW EXECUTE FUNCTION fraiseql_observer.capture('Payment');
