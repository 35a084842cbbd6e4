// A subscriber as the SPEC describes it: it checks every webhook with the
// snippet of SPEC section 5, copied as written, and, when STANDARD_SECRETS
// is set, with the official Standard Webhooks verifier for each secret.
//
// Usage: SUBSCRIBER_SECRET=... [STANDARD_SECRETS='["whsec_..."]'] node subscriber.js
// Prints "listening <port>", then one JSON line per request:
// {"id", "attempt", "snippet": bool, "standard": [bool, ...], "body"}.
// Answers 200 when every check passes, 401 otherwise.
'use strict';
const http = require('http');
const { Webhook } = require('standardwebhooks');

// --- SPEC section 5, as written ---
const crypto = require('crypto');
function verifyWebhook(payload, signature, secret) {
  const expected = crypto.createHmac('sha256', secret).update(payload).digest('hex');
  return crypto.timingSafeEqual(Buffer.from(signature), Buffer.from(expected));
}
// --- end of the snippet ---

const secret = process.env.SUBSCRIBER_SECRET;
const standardSecrets = JSON.parse(process.env.STANDARD_SECRETS || '[]');

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const payload = Buffer.concat(chunks).toString('utf8');
    let snippet = false;
    try {
      snippet = verifyWebhook(payload, req.headers['x-webhook-signature'] || '', secret);
    } catch (error) {
      snippet = false; // timingSafeEqual throws on a length mismatch
    }
    const standard = standardSecrets.map((whsec) => {
      try {
        new Webhook(whsec).verify(payload, req.headers);
        return true;
      } catch (error) {
        return false;
      }
    });
    const ok = snippet && standard.every((passed) => passed);
    console.log(JSON.stringify({
      id: req.headers['x-webhook-id'],
      attempt: req.headers['x-webhook-attempt'],
      snippet,
      standard,
      body: payload,
    }));
    res.writeHead(ok ? 200 : 401, { 'content-type': 'text/plain' });
    res.end(ok ? 'ok' : 'bad signature');
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
});
