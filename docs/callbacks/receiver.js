// A receiver for SMS Edge's delivery callbacks: checks each POST's signature, then hands the event on.
// Node's standard library only. Run: SMS_EDGE_CALLBACK_SECRET=... PORT=8000 node receiver.js
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');

const SECRET = process.env.SMS_EDGE_CALLBACK_SECRET;
const TOLERANCE_SECONDS = 300;
const EVENTS_FILE = process.env.EVENTS_FILE || 'events.jsonl';
if (!SECRET) throw new Error('set SMS_EDGE_CALLBACK_SECRET');

// Whether a v1= value of the signature is the HMAC of "<timestamp>.<body>", sent within 5 minutes.
function verified(timestamp, signature, body) {
  if (!/^[0-9]+$/.test(timestamp || '')) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > TOLERANCE_SECONDS) return false;
  const mac = crypto.createHmac('sha256', SECRET).update(timestamp + '.').update(body);
  const expected = Buffer.from('v1=' + mac.digest('hex'));
  // one value per secret while it is being rotated
  return (signature || '').split(',').some((value) => {
    const offered = Buffer.from(value.trim());
    return offered.length === expected.length && crypto.timingSafeEqual(offered, expected);
  });
}

// Your code goes here. An event may come twice (at-least-once): key what you do on event_id.
function handle(event) {
  fs.appendFileSync(EVENTS_FILE, JSON.stringify(event) + '\n');
}

http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks); // raw bytes, as signed
    const { 'smsedge-timestamp': timestamp, 'smsedge-signature': signature } = req.headers;
    if (req.method !== 'POST' || !verified(timestamp, signature, body)) {
      res.writeHead(401).end('bad signature');
      return;
    }
    try {
      handle(JSON.parse(body));
    } catch (error) {
      console.error(error);
      res.writeHead(500).end('not handled'); // the gateway will try again
      return;
    }
    res.writeHead(200).end('ok');
  });
}).listen(Number(process.env.PORT || 8000), '127.0.0.1');
