'use strict';
// A typical hand-written PostgreSQL -> NATS JetStream -> webhook bridge, the baseline that
// bench/run.sh measures fraiseql-observer against. It uses the most popular npm packages: `pg`
// (LISTEN) and `nats` (JetStream), and Node's built-in fetch() for the webhook.
//
//   node bridge.js setup     --nats URL --stream S --prefix P --durable D
//   node bridge.js publisher --mode naive|pipelined --pg URL --channel CH --nats URL --prefix P
//                            [--window 1000] [--ready-file F]
//   node bridge.js worker    --mode naive|pipelined --nats URL --stream S --durable D --url URL
//                            [--batch 500] [--concurrency 32] [--ready-file F]
//
// naive:     await each publish; next() one message at a time; one POST at a time.
// pipelined: up to --window publishes in flight; fetch(--batch); up to --concurrency POSTs.
// Each message is acked only after its POST returned 2xx (at-least-once), nak'ed otherwise.
const fs = require('fs');
const { Client } = require('pg');
const { connect, AckPolicy, DeliverPolicy, StorageType, nanos } = require('nats');

function options(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i += 2) o[argv[i].replace(/^--/, '')] = argv[i + 1];
  return o;
}

const [role, ...rest] = process.argv.slice(2);
const opt = options(rest);
const mode = opt.mode || 'naive';

// A counting semaphore: the usual way to bound concurrency with async/await.
class Semaphore {
  constructor(n) { this.free = n; this.waiters = []; }
  acquire() {
    if (this.free > 0) { this.free--; return Promise.resolve(); }
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  release() {
    const next = this.waiters.shift();
    if (next) next(); else this.free++;
  }
}

function ready() {
  if (opt['ready-file']) fs.writeFileSync(opt['ready-file'], 'ready\n');
}

async function setup() {
  const nc = await connect({ servers: opt.nats });
  const jsm = await nc.jetstreamManager();
  await jsm.streams.delete(opt.stream).catch(() => {});
  await jsm.streams.add({
    name: opt.stream,
    subjects: [`${opt.prefix}.>`],
    storage: StorageType.File,
    duplicate_window: nanos(5 * 60 * 1000),
  });
  await jsm.consumers.add(opt.stream, {
    durable_name: opt.durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(30 * 1000),
    max_ack_pending: 20000,
  });
  await nc.close();
}

async function publisher() {
  const nc = await connect({ servers: opt.nats });
  const js = nc.jetstream();
  const pg = new Client({ connectionString: opt.pg });
  await pg.connect();

  // Notifications arrive as fast as PostgreSQL sends them; they wait here for the publisher.
  let queue = [];
  let head = 0;
  let wake = null;
  pg.on('notification', (n) => {
    queue.push(n.payload);
    if (wake) { const w = wake; wake = null; w(); }
  });
  const next = async () => {
    while (head === queue.length) await new Promise((resolve) => { wake = resolve; });
    const payload = queue[head++];
    if (head > 65536) { queue = queue.slice(head); head = 0; }
    return payload;
  };
  const publish = (payload) => {
    const ev = JSON.parse(payload);
    return js.publish(`${opt.prefix}.${ev.entity_type}.${ev.operation}`, Buffer.from(payload), { msgID: String(ev.id) });
  };
  await pg.query(`LISTEN ${opt.channel}`);
  ready();

  if (mode === 'naive') {
    for (;;) {
      const payload = await next();
      try {
        await publish(payload);
      } catch (err) {
        console.error('publish failed, retrying:', err.message);
        queue.push(payload);
      }
    }
  }
  const window = new Semaphore(Number(opt.window || 1000));
  for (;;) {
    const payload = await next();
    await window.acquire();
    publish(payload)
      .catch((err) => { console.error('publish failed, retrying:', err.message); queue.push(payload); })
      .finally(() => window.release());
  }
}

async function worker() {
  const nc = await connect({ servers: opt.nats });
  const js = nc.jetstream();
  const consumer = await js.consumers.get(opt.stream, opt.durable);
  ready();

  const post = async (m) => {
    try {
      const res = await fetch(opt.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': m.headers?.get('Nats-Msg-Id') || '' },
        body: m.data,
      });
      await res.arrayBuffer();
      if (res.ok) m.ack(); else m.nak(1000);
    } catch (err) {
      console.error('POST failed:', err.message);
      m.nak(1000);
    }
  };

  if (mode === 'naive') {
    for (;;) {
      const m = await consumer.next({ expires: 5000 });
      if (m) await post(m);
    }
  }
  const slots = new Semaphore(Number(opt.concurrency || 32));
  for (;;) {
    const batch = await consumer.fetch({ max_messages: Number(opt.batch || 500), expires: 5000 });
    for await (const m of batch) {
      await slots.acquire();
      post(m).finally(() => slots.release());
    }
  }
}

const roles = { setup, publisher, worker };
if (!roles[role]) {
  console.error('usage: node bridge.js setup|publisher|worker --key value ...');
  process.exit(2);
}
roles[role]().then(
  () => process.exit(0),
  (err) => { console.error(`${role}:`, err); process.exit(1); },
);
