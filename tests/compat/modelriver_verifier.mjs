// A webhook receiver that verifies signatures exactly as ModelRiver's official demo backend does
// (modelriver/chatbot-async-app and modelriver-chatbot-demo, backend/server.js, verifyWebhookSignature, Feb 2026;
// research/modelriver.md §3.3). Express's `express.json({verify})` is replaced by its two effects: `rawBody` is
// `buf.toString()` and `req.body` is `JSON.parse` of it. Answers 200 `{success: true}` or 401 with the demo's
// `{error: 'Unauthorized', message}`, and prints one JSON line per request.
//
//   node modelriver_verifier.mjs '{"secret": "…"}'   → prints {"listening": port} first
import crypto from 'node:crypto';
import http from 'node:http';

const { secret: WEBHOOK_SECRET } = JSON.parse(process.argv[2]);

// --- from ModelRiver's verifyWebhookSignature (logging left out) ---------------------------------------------------
function verifyWebhookSignature(req) {
  const signature = req.headers['x-modelriver-signature'];
  const timestamp = req.headers['x-modelriver-timestamp'];

  if (!signature) {
    return { valid: false, error: 'Missing X-ModelRiver-Signature header' };
  }
  if (!timestamp) {
    return { valid: false, error: 'Missing X-ModelRiver-Timestamp header' };
  }
  if (!WEBHOOK_SECRET) {
    return { valid: false, error: 'Webhook secret not configured' };
  }

  // ModelRiver signs the 'data' field: HMAC-SHA256(secret, "${timestamp}.${JSON.stringify(data)}")
  const dataField = req.body.data;
  if (!dataField) {
    // Fall back to using the full body if data field is missing
    const payload = `${timestamp}.${req.rawBody}`;
    const expectedSignature = crypto.createHmac('sha256', WEBHOOK_SECRET).update(payload).digest('hex');
    if (signature === expectedSignature) {
      return { valid: true };
    }
    return { valid: false, error: 'Invalid signature' };
  }

  const dataJson = JSON.stringify(dataField);
  const payload = `${timestamp}.${dataJson}`;
  const expectedSignature = crypto.createHmac('sha256', WEBHOOK_SECRET).update(payload).digest('hex');

  const sigBuffer = Buffer.from(signature);
  const expectedBuffer = Buffer.from(expectedSignature);
  if (sigBuffer.length !== expectedBuffer.length) {
    return { valid: false, error: 'Invalid signature (length mismatch)' };
  }
  if (!crypto.timingSafeEqual(sigBuffer, expectedBuffer)) {
    return { valid: false, error: 'Invalid signature' };
  }
  return { valid: true };
}
// --------------------------------------------------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    req.rawBody = Buffer.concat(chunks).toString();
    req.body = JSON.parse(req.rawBody);
    const result = verifyWebhookSignature(req);
    console.log(JSON.stringify({ path: req.url, type: req.body.type ?? null, ...result }));
    res.setHeader('Content-Type', 'application/json');
    if (!result.valid) {
      res.statusCode = 401;
      res.end(JSON.stringify({ error: 'Unauthorized', message: result.error }));
      return;
    }
    res.end(JSON.stringify({ success: true }));
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ listening: server.address().port }));
});
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
