const express = require('express');
const { v4: uuidv4 } = require('uuid');
require('dotenv').config();
const fetch = require('node-fetch');

const app = express();
app.use(express.json());

const pendingRequests = new Map(); // channel_id → {conversationId, messageId}

app.post('/chat', async (req, res) => {
  const { message, workflow = 'mr_chatbot_workflow' } = req.body;
  const conversationId = uuidv4();
  const messageId = uuidv4();

  const resp = await fetch('https://api.modelriver.com/v1/ai/async', {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${process.env.MODELRIVER_API_KEY}`,
      'Content-Type': 'application/json',
    },
    body: JSON.stringify({
      workflow,
      messages: [{ role: 'user', content: message }],
      delivery_method: 'websocket',
      webhook_url: `${process.env.BACKEND_PUBLIC_URL}/webhook/modelriver`,
      events: ['webhook_received'],
      metadata: { conversationId, messageId },
    }),
  });

  const data = await resp.json();
  pendingRequests.set(data.channel_id, { conversationId, messageId });

  res.json({
    channel_id: data.channel_id,
    websocket_url: data.websocket_url,
    ws_token: data.ws_token,
  });
});

app.post('/webhook/modelriver', async (req, res) => {
  const { channel_id, ai_response, callback_url } = req.body;
  const pending = pendingRequests.get(channel_id);

  if (!pending) return res.status(404).json({ error: 'Not found' });

  // Enrich with custom IDs (add validation/sentiment gates here!)
  const enriched = {
    id: pending.messageId,
    conversation_id: pending.conversationId,
    ...ai_response.data,
  };

  await fetch(callback_url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(enriched),
  });

  pendingRequests.delete(channel_id);
  res.status(200).json({ success: true });
});

app.listen(process.env.PORT, () => console.log(`Backend on ${process.env.PORT}`));
