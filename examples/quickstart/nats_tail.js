// Prints every event on the fraiseql.mutation.> subjects (a plain core-NATS subscription, the
// way an external consumer would look at them). Uses the official `nats` npm client.
//   node nats_tail.js nats://127.0.0.1:4222
'use strict';
const { connect, StringCodec } = require('nats');

(async () => {
  const nc = await connect({ servers: process.argv[2] || 'nats://127.0.0.1:4222' });
  const sc = StringCodec();
  console.log('[nats] subscribed to fraiseql.mutation.>');
  for await (const m of nc.subscribe('fraiseql.mutation.>')) {
    const ev = JSON.parse(sc.decode(m.data));
    console.log(`[nats] ${m.subject} id=${ev.id} entity_id=${ev.entity_id}`);
  }
})().catch((e) => {
  console.error('[nats] ' + e.message);
  process.exit(1);
});
