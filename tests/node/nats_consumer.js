// The reference document's external consumer, with the official Node.js client (npm `nats`):
// a durable JetStream subscription on one subject of stream `fraiseql_events`, ack after
// handling. Prints one JSON line per message ({id, entity_id, subject, msg_id}) and exits
// after --count messages (exit 0) or --timeout-ms (exit 2).
//
//   node nats_consumer.js --url nats://127.0.0.1:4222 --subject fraiseql.mutation.Order.INSERT \
//        --durable email-service-order-handler --stream fraiseql_events --count 5
'use strict';
const { connect, consumerOpts, createInbox, StringCodec } = require('nats');

function arg(name, fallback) {
  const i = process.argv.indexOf('--' + name);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

async function main() {
  const url = arg('url', 'nats://127.0.0.1:4222');
  const subject = arg('subject', 'fraiseql.mutation.Order.INSERT');
  const durable = arg('durable', 'email-service-order-handler');
  const stream = arg('stream', 'fraiseql_events');
  const count = parseInt(arg('count', '1'), 10);
  const timeoutMs = parseInt(arg('timeout-ms', '15000'), 10);

  const nc = await connect({ servers: url });
  const js = nc.jetstream();
  const sc = StringCodec();
  const opts = consumerOpts();
  opts.durable(durable);
  opts.manualAck();
  opts.ackExplicit();
  opts.deliverAll();
  opts.deliverTo(createInbox());
  const sub = await js.subscribe(subject, opts);

  const timer = setTimeout(async () => {
    console.error(`timeout: received fewer than ${count} messages`);
    await nc.close();
    process.exit(2);
  }, timeoutMs);

  let received = 0;
  for await (const m of sub) {
    try {
      const event = JSON.parse(sc.decode(m.data));
      if (m.info.stream !== stream) throw new Error(`message from stream ${m.info.stream}`);
      console.log(JSON.stringify({
        id: event.id,
        entity_id: event.entity_id,
        subject: m.subject,
        msg_id: m.headers ? m.headers.get('Nats-Msg-Id') : null,
      }));
      m.ack();
    } catch (err) {
      console.error(String(err));
      m.nak();
    }
    if (++received >= count) break;
  }
  clearTimeout(timer);
  await nc.flush();
  await nc.close();
}

main().catch((err) => {
  console.error(String(err && err.stack || err));
  process.exit(1);
});
