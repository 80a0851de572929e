// A real webhook receiver for the webhook action's tests. Verifies every request with the
// official Standard Webhooks library (npm `standardwebhooks`) and, independently, FraiseQL's
// X-FraiseQL-Signature-256 with node's crypto; tracks concurrency; writes its statistics to a
// JSON file after every request (atomically: write + rename) for the test to read. The two lists
// that grow with every request go to JSON-lines files beside it, one line appended per request
// (FILE.requests.jsonl, FILE.arrivals.jsonl): rewriting them whole after each request made
// the receiver itself the bottleneck of long runs (quadratic). tests/support/webhook_receiver.hpp
// reads the three back as one object.
//
//   node webhook_receiver.js --port P --stats FILE [--secret S]... [--tls-cert F --tls-key F]
//                            [--log-bodies 1]   (requests_log entries also hold the body)
//
// Paths decide the answer:
//   /ok                            200 "ok"
//   /status/<code>[?retry_after=V&body=T&location=L]   that status, optional headers/body
//   /delay/<ms>                    200 after <ms> milliseconds
//   /hang                          never answers
//   /fail_first/<code>             <code> the first time an Idempotency-Key is seen, then 200
//   /close                         200 "ok" with "Connection: close" (a new connection per request)
//   /fail_for/<code>/<value>/<n>[?retry_after=V]   <code> for the first <n> requests whose
//                                  event (JSON body) has id or entity_id <value>, then 200
// `arrivals` lists every request with a JSON object body as {id, entity_id, status, t (ms)}, in
// arrival order, without a limit (ordering tests).
//   anything else                  204
// With --secret, a request that fails verification gets 401 "invalid signature: <why>".
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const { Webhook } = require('standardwebhooks');

const args = { secret: [] };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i].replace(/^--/, '').replace(/-/g, '_');
  const value = process.argv[i + 1];
  if (key === 'secret') args.secret.push(value);
  else args[key] = value;
}
if (!args.port || !args.stats) {
  console.error('usage: webhook_receiver.js --port P --stats FILE [--secret S]... [--tls-cert F --tls-key F]');
  process.exit(2);
}

// A `whsec_` secret is base64 after the prefix (the library's default); any other secret is
// used as raw bytes, as the webhook action does.
const verifiers = args.secret.map((s) =>
  s.startsWith('whsec_') ? new Webhook(s) : new Webhook(Buffer.from(s, 'utf8'), { format: 'raw' }));

const stats = {
  requests: 0,
  verified: 0,
  rejected: 0,
  fraiseql_verified: 0,
  fraiseql_rejected: 0,
  in_flight: 0,
  peak_in_flight: 0,
  distinct_ids: 0,
  by_path: {},
  last: null,
  reject_reasons: [],
  requests_logged: 0, // lines in FILE.requests.jsonl (at most 1000)
  // Every request as node parsed it (the first 1000): a header or a whole request smuggled in
  // through a value shows up here. client_errors counts requests node could not parse.
  client_errors: 0,
};
const requestsFile = args.stats + '.requests.jsonl';
const arrivalsFile = args.stats + '.arrivals.jsonl';
fs.writeFileSync(requestsFile, '');
fs.writeFileSync(arrivalsFile, '');
const appendLine = (file, value) => fs.appendFileSync(file, JSON.stringify(value) + '\n');
const failFor = new Map(); // /fail_for: value -> failures answered so far
const ids = new Set();
const failedOnce = new Set(); // Idempotency-Keys /fail_first has already failed

function writeStats() {
  const tmp = args.stats + '.tmp';
  fs.writeFileSync(tmp, JSON.stringify(stats));
  fs.renameSync(tmp, args.stats);
}

function verifyFraiseql(header, body) {
  // t=<ts>,v1=<hex>[,v1=<hex>...] over "<ts>.<body>" keyed with the secret as configured.
  if (!header) return false;
  const parts = header.split(',');
  const t = parts.find((p) => p.startsWith('t='));
  if (!t) return false;
  const ts = t.slice(2);
  const sigs = parts.filter((p) => p.startsWith('v1=')).map((p) => p.slice(3));
  return args.secret.some((s) => {
    const expected = crypto.createHmac('sha256', s).update(ts + '.' + body).digest('hex');
    return sigs.includes(expected);
  });
}

function handle(req, res) {
  stats.requests += 1;
  stats.in_flight += 1;
  stats.peak_in_flight = Math.max(stats.peak_in_flight, stats.in_flight);
  let settled = false;
  const done = () => {
    if (settled) return;
    settled = true;
    stats.in_flight -= 1;
    writeStats();
  };
  res.on('finish', done);
  res.on('close', done);

  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, 'http://receiver');
    stats.by_path[url.pathname] = (stats.by_path[url.pathname] || 0) + 1;
    const id = req.headers['idempotency-key'];
    if (id) ids.add(id);
    stats.distinct_ids = ids.size;
    stats.last = { method: req.method, path: url.pathname, headers: req.headers, body };
    if (stats.requests_logged < 1000) {
      stats.requests_logged += 1;
      appendLine(requestsFile, args.log_bodies
        ? { method: req.method, path: url.pathname, headers: req.headers, body }
        : { method: req.method, path: url.pathname, headers: req.headers });
    }

    if (verifiers.length > 0) {
      let ok = false;
      let why = '';
      for (const wh of verifiers) {
        try {
          wh.verify(body, req.headers);
          ok = true;
          break;
        } catch (e) {
          why = String(e.message || e);
        }
      }
      if ('x-fraiseql-signature-256' in req.headers) {
        if (verifyFraiseql(req.headers['x-fraiseql-signature-256'], body)) stats.fraiseql_verified += 1;
        else stats.fraiseql_rejected += 1;
      }
      if (ok) {
        stats.verified += 1;
      } else {
        // What a real receiver does with a request it cannot authenticate.
        stats.rejected += 1;
        if (stats.reject_reasons.length < 5) stats.reject_reasons.push(why);
        writeStats();
        res.writeHead(401, { 'Content-Type': 'text/plain' });
        return res.end('invalid signature: ' + why);
      }
    }

    // Written before answering, so a client that has its answer also sees its request here.
    writeStats();
    const parts = url.pathname.split('/').filter(Boolean);
    let event = null;
    try {
      event = JSON.parse(body);
    } catch (e) {
      event = null;
    }
    const arrival = event && typeof event === 'object' && !Array.isArray(event)
      ? { id: event.id, entity_id: event.entity_id, status: 200, t: Date.now() } : null;
    if (arrival && parts[0] !== 'fail_for') appendLine(arrivalsFile, arrival);
    if (parts[0] === 'fail_for') {
      const value = decodeURIComponent(parts[2] || '');
      const times = Number(parts[3] || 1);
      const hit = event && (event.id === value || event.entity_id === value);
      const n = failFor.get(value) || 0;
      const fail = hit && n < times;
      if (fail) failFor.set(value, n + 1);
      const status = fail ? Number(parts[1]) : 200;
      if (arrival) {
        arrival.status = status;
        appendLine(arrivalsFile, arrival);
      }
      writeStats();
      const headers = { 'Content-Type': 'text/plain' };
      const ra = url.searchParams.get('retry_after');
      if (fail && ra !== null) headers['Retry-After'] = ra;
      res.writeHead(status, headers);
      return res.end(fail ? 'failing on purpose' : 'ok');
    }
    if (parts[0] === 'hang') return; // never answer; the client must time out
    if (parts[0] === 'fail_first') {
      const first = !failedOnce.has(id);
      failedOnce.add(id);
      res.writeHead(first ? Number(parts[1]) : 200, { 'Content-Type': 'text/plain' });
      return res.end(first ? 'failing the first attempt' : 'ok');
    }
    if (parts[0] === 'ok') {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      return res.end('ok');
    }
    if (parts[0] === 'close') {
      res.writeHead(200, { 'Content-Type': 'text/plain', Connection: 'close' });
      return res.end('ok');
    }
    if (parts[0] === 'delay') {
      setTimeout(() => {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.end('ok');
      }, Number(parts[1] || 0));
      return;
    }
    if (parts[0] === 'status') {
      const headers = { 'Content-Type': 'text/plain' };
      const ra = url.searchParams.get('retry_after');
      if (ra !== null) headers['Retry-After'] = ra;
      const loc = url.searchParams.get('location');
      if (loc !== null) headers['Location'] = loc;
      res.writeHead(Number(parts[1]), headers);
      return res.end(url.searchParams.get('body') || '');
    }
    res.writeHead(204);
    res.end();
  });
}

const server = args.tls_cert
  ? https.createServer({ cert: fs.readFileSync(args.tls_cert), key: fs.readFileSync(args.tls_key) }, handle)
  : http.createServer(handle);
server.keepAliveTimeout = 30000;
server.on('clientError', (err, socket) => {
  stats.client_errors += 1;
  writeStats();
  socket.destroy();
});
writeStats();
server.listen(Number(args.port), '127.0.0.1', () => {
  console.log(`webhook receiver listening on 127.0.0.1:${args.port}`);
});
process.on('SIGTERM', () => process.exit(0));
