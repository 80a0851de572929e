// Demo webhook receiver for ./run.sh: verifies the Standard Webhooks signature with Node's own
// crypto (no dependencies) and prints each event on one line.
//   node receiver.js <port> <whsec_secret>
'use strict';
const http = require('http');
const crypto = require('crypto');

const port = Number(process.argv[2] || 8787);
const secret = process.argv[3] || '';
const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : null;

function verify(headers, body) {
  if (!key) return 'unsigned';
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sigs = (headers['webhook-signature'] || '').split(' ');
  const expected = crypto.createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest('base64');
  const ok = sigs.some((s) => s === `v1,${expected}`);
  const fresh = Math.abs(Date.now() / 1000 - Number(ts)) < 300;
  return ok && fresh ? 'signature ok' : 'SIGNATURE INVALID';
}

http
  .createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      let ev = {};
      try {
        ev = JSON.parse(body);
      } catch (e) {
        ev = { raw: body };
      }
      const check = verify(req.headers, body);
      console.log(
        `[receiver] ${ev.entity_type}.${ev.operation} entity_id=${ev.entity_id} id=${ev.id} (${check})`
      );
      res.writeHead(check === 'SIGNATURE INVALID' ? 401 : 204);
      res.end();
    });
  })
  .listen(port, '127.0.0.1', () => console.log(`[receiver] listening on http://127.0.0.1:${port}/`));
