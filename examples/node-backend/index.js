// The seed article's chatbot backend, written for Sluice (Node 20 + Express).
//
// POST /chat           -> POST {SLUICE_URL}/v1/ai/async with the article's fields; returns channel_id,
//                         websocket_url and ws_token for the browser.
// POST /webhook/sluice -> verify the Standard Webhooks signature, enrich the AI result with our own ids,
//                         POST the enriched object to callback_url; Sluice then streams it to the browser.
//
// Environment: SLUICE_URL, SLUICE_API_KEY, WEBHOOK_SECRET (whsec_..., several separated by spaces during a
// rotation), PORT (4000), HOST (127.0.0.1), BACKEND_PUBLIC_URL (http://localhost:PORT), SLUICE_WORKFLOW (demo).

const crypto = require('node:crypto');
const express = require('express');

const SLUICE_URL = (process.env.SLUICE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const PORT = Number(process.env.PORT || 4000);
const BACKEND_PUBLIC_URL = process.env.BACKEND_PUBLIC_URL || `http://localhost:${PORT}`;
const WEBHOOK_SECRETS = (process.env.WEBHOOK_SECRET || '').split(/\s+/).filter(Boolean);
const TOLERANCE_SECONDS = 5 * 60;

// Standard Webhooks: HMAC-SHA256 over "{webhook-id}.{webhook-timestamp}.{raw body}" with the base64 key after
// "whsec_"; the header lists "v1,<base64>" signatures separated by spaces. Verify the raw bytes, never re-serialised
// JSON.
function verifyWebhook(headers, rawBody) {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (!id || !timestamp || !signatures) throw new Error('missing webhook-id/webhook-timestamp/webhook-signature');
  const age = Math.abs(Date.now() / 1000 - Number(timestamp));
  if (!Number.isFinite(age) || age > TOLERANCE_SECONDS) throw new Error('stale webhook timestamp');
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), rawBody]);
  const received = signatures.split(' ').filter((s) => s.startsWith('v1,')).map((s) => Buffer.from(s.slice(3), 'base64'));
  for (const secret of WEBHOOK_SECRETS) {
    const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
    const expected = crypto.createHmac('sha256', key).update(signed).digest();
    if (received.some((sig) => sig.length === expected.length && crypto.timingSafeEqual(sig, expected))) return;
  }
  throw new Error('no matching signature');
}

const app = express();
app.use(express.json({ verify: (req, _res, buf) => { req.rawBody = buf; } }));

const pendingRequests = new Map(); // channel_id -> {conversationId, messageId}

app.get('/healthz', (_req, res) => res.json({ ok: true }));

app.post('/chat', async (req, res) => {
  const { message, workflow = process.env.SLUICE_WORKFLOW || 'demo' } = req.body || {};
  if (typeof message !== 'string' || !message) return res.status(400).json({ error: 'message is required' });
  const conversationId = crypto.randomUUID();
  const messageId = crypto.randomUUID();

  const resp = await fetch(`${SLUICE_URL}/v1/ai/async`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${process.env.SLUICE_API_KEY}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      workflow,
      messages: [{ role: 'user', content: message }],
      delivery_method: 'websocket',
      webhook_url: `${BACKEND_PUBLIC_URL}/webhook/sluice`,
      events: ['webhook_received'],
      metadata: { conversationId, messageId },
    }),
  });
  const data = await resp.json();
  if (!resp.ok) return res.status(resp.status).json(data);
  pendingRequests.set(data.channel_id, { conversationId, messageId });

  res.json({ channel_id: data.channel_id, websocket_url: data.websocket_url, ws_token: data.ws_token });
});

async function onWebhook(req, res) {
  try {
    verifyWebhook(req.headers, req.rawBody || Buffer.alloc(0));
  } catch (err) {
    return res.status(401).json({ error: err.message });
  }
  const { type, channel_id, ai_response, callback_url, metadata } = req.body;
  if (type !== 'task.ai_generated') return res.json({ received: true }); // lifecycle events: nothing to do

  // The webhook can beat /chat's own bookkeeping (the run is fast); the metadata we sent carries the same ids.
  const pending = pendingRequests.get(channel_id) || metadata;
  if (!pending || !pending.messageId) return res.status(404).json({ error: 'Not found' });

  // Enrich with custom IDs (add validation/sentiment gates here!)
  const enriched = { id: pending.messageId, conversation_id: pending.conversationId, ...ai_response.data };

  const callback = await fetch(callback_url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(enriched),
  });
  // 409/410: a retried webhook whose callback already happened (or expired): acknowledge so it stops.
  if (!callback.ok && callback.status !== 409 && callback.status !== 410) {
    return res.status(502).json({ error: `callback failed with ${callback.status}` });
  }
  pendingRequests.delete(channel_id);
  res.status(200).json({ success: true, record_id: pending.messageId, channel_id });
}

app.post('/webhook/sluice', onWebhook);
app.post('/webhook/modelriver', onWebhook); // the article's path, for `sluice forward --to` setups copied from it
app.post('/webhook', onWebhook);

app.listen(PORT, process.env.HOST || '127.0.0.1', () => console.log(`Backend on ${PORT}`));
