// The chat page: sends a message to our backend, then follows the reply with the Sluice browser SDK.
//
// The SDK keeps the channel it follows in sessionStorage, so a reload mid-answer resumes the stream where it was;
// the page keeps the finished conversation in sessionStorage too, so a reload shows it again.
import { SluiceClient } from '@sluice/client';

const HISTORY_KEY = 'chatbot:history';
const CONVERSATION_KEY = 'chatbot:conversation';

const log = document.getElementById('log');
const form = document.getElementById('composer');
const input = document.getElementById('input');
const send = document.getElementById('send');
const statusBadge = document.querySelector('[data-testid="status"]');
const connectionNote = document.querySelector('[data-testid="connection"]');

const client = new SluiceClient({ storageKey: 'chatbot:active' });
const history = JSON.parse(sessionStorage.getItem(HISTORY_KEY) ?? '[]');

function saveHistory() {
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(history));
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function appendUser(text) {
  log.append(element('li', { class: 'user' }, text));
}

function assistantBubble(channelId) {
  let bubble = log.querySelector(`li.assistant[data-channel="${CSS.escape(channelId)}"]`);
  if (!bubble) {
    bubble = element('li', { class: 'assistant', 'data-channel': channelId },
      element('div', { class: 'reply', 'data-testid': 'reply' }),
      element('div', { class: 'details' }));
    log.append(bubble);
  }
  return bubble;
}

// Only touch the text node when the text changed: every render the user sees is one step of the stream.
function showReply(bubble, reply) {
  const node = bubble.querySelector('.reply');
  if (node.textContent !== reply) node.textContent = reply;
}

// The structured fields, once the final (enriched) object has arrived.
function showDetails(bubble, data, error) {
  const details = bubble.querySelector('.details');
  details.replaceChildren();
  if (error) {
    details.append(element('div', { class: 'error', 'data-testid': 'error' }, `${error.code}: ${error.message}`));
    return;
  }
  if (!data) return;
  if (data.sentiment) {
    const confidence = typeof data.confidence === 'number' ? ` (${Math.round(data.confidence * 100)}%)` : '';
    details.append(element('div', { 'data-testid': 'sentiment' }, 'Sentiment: ',
      element('span', { class: `chip sentiment-${data.sentiment}` }, `${data.sentiment}${confidence}`)));
  }
  if (data.summary) details.append(element('div', { 'data-testid': 'summary' }, `Summary: ${data.summary}`));
  if (Array.isArray(data.topics) && data.topics.length) {
    details.append(element('div', { 'data-testid': 'topics' }, 'Topics: ',
      ...data.topics.map((topic) => element('span', { class: 'chip' }, topic))));
  }
  if (Array.isArray(data.action_items) && data.action_items.length) {
    const items = data.action_items.map((item) =>
      element('li', {}, item.task, element('span', { class: 'priority' }, item.priority)));
    details.append(element('div', {}, 'Action items:'),
      element('ul', { class: 'actions', 'data-testid': 'action-items' }, ...items));
  }
  if (data.id) {
    details.append(element('div', { class: 'ids', 'data-testid': 'message-id' },
      `message ${data.id} · conversation ${data.conversation_id}`));
  }
}

function showStatus(state) {
  const busy = Boolean(state.channelId) && !state.done && !state.error;
  statusBadge.textContent = state.status.replaceAll('_', ' ');
  statusBadge.dataset.status = state.status;
  connectionNote.textContent = state.connection === 'reconnecting' ? 'reconnecting…' : '';
  send.disabled = busy;
}

// The conversation so far.
for (const entry of history) {
  if (entry.role === 'user') {
    appendUser(entry.text);
  } else {
    const bubble = assistantBubble(entry.channel_id);
    showReply(bubble, entry.data?.reply ?? '');
    showDetails(bubble, entry.data, entry.error);
  }
}

client.subscribe((state) => {
  showStatus(state);
  if (!state.channelId) return;
  const bubble = assistantBubble(state.channelId);
  showReply(bubble, state.message?.reply ?? '');
  if (state.done || state.error) showDetails(bubble, state.done ? state.message : null, state.error);
});

client.on('done', (state) => {
  history.push({ role: 'assistant', channel_id: state.channelId, data: state.message, error: state.error });
  saveHistory();
});

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  history.push({ role: 'user', text });
  saveHistory();
  appendUser(text);
  send.disabled = true;
  try {
    const response = await fetch('/chat', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ message: text, conversation_id: sessionStorage.getItem(CONVERSATION_KEY) }),
    });
    if (!response.ok) throw new Error(`the backend answered ${response.status}: ${await response.text()}`);
    const { websocket_url, ws_token, channel_id, conversation_id } = await response.json();
    sessionStorage.setItem(CONVERSATION_KEY, conversation_id);
    client.connect({ websocket_url, ws_token, channel_id });
  } catch (error) {
    log.append(element('li', { class: 'assistant error', 'data-testid': 'error' }, String(error.message ?? error)));
    send.disabled = false;
  }
});

// A reload in the middle of an answer: pick the stream up where it was.
showStatus(client.state);
client.resume();
input.focus();
