// The chat page in React: the same page as examples/chatbot/static, with the useSluice hook.
//
// The backend (examples/chatbot) creates the request and hands back {channel_id, websocket_url, ws_token};
// useSluice follows the channel, and resumes it after a reload (it keeps the channel in sessionStorage).
import { useSluice } from '@sluice/client/react';
import { useEffect, useState } from 'react';

import AssistantMessage from './AssistantMessage.jsx';

const HISTORY_KEY = 'chatbot-react:history';
const CONVERSATION_KEY = 'chatbot-react:conversation';

function loadHistory() {
  return JSON.parse(sessionStorage.getItem(HISTORY_KEY) ?? '[]');
}

export default function App() {
  const { connect, channelId, status, connection, message, error, done } = useSluice({
    storageKey: 'chatbot-react:active',
  });
  const [history, setHistory] = useState(loadHistory);
  const [input, setInput] = useState('');
  const [sending, setSending] = useState(false);

  useEffect(() => sessionStorage.setItem(HISTORY_KEY, JSON.stringify(history)), [history]);

  // A finished answer joins the conversation once.
  useEffect(() => {
    if (!done || !channelId) return;
    setHistory((entries) => entries.some((entry) => entry.channel_id === channelId)
      ? entries
      : [...entries, { role: 'assistant', channel_id: channelId, data: message, error }]);
  }, [done, channelId, message, error]);

  const streaming = Boolean(channelId) && !done && !error;
  const active = channelId && !history.some((entry) => entry.channel_id === channelId);

  async function send(event) {
    event.preventDefault();
    const text = input.trim();
    if (!text) return;
    setInput('');
    setSending(true);
    setHistory((entries) => [...entries, { role: 'user', text }]);
    try {
      const response = await fetch('/chat', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ message: text, conversation_id: sessionStorage.getItem(CONVERSATION_KEY) }),
      });
      if (!response.ok) throw new Error(`the backend answered ${response.status}`);
      const { websocket_url, ws_token, channel_id, conversation_id } = await response.json();
      sessionStorage.setItem(CONVERSATION_KEY, conversation_id);
      connect({ websocket_url, ws_token, channel_id });
    } catch (failure) {
      setHistory((entries) => [...entries, { role: 'assistant', channel_id: `failed-${Date.now()}`,
        error: { code: 'backend', message: String(failure.message ?? failure) } }]);
    } finally {
      setSending(false);
    }
  }

  return (
    <main>
      <header>
        <h1>Streaming chatbot <small>React + useSluice</small></h1>
        <div className="status">
          <span className="badge" data-testid="status" data-status={status}>{status.replaceAll('_', ' ')}</span>
          {connection === 'reconnecting' && <span className="connection">reconnecting…</span>}
        </div>
      </header>
      <ol id="log" aria-live="polite">
        {history.map((entry, index) => (entry.role === 'user'
          ? <li className="user" key={index}>{entry.text}</li>
          : <AssistantMessage key={entry.channel_id} channelId={entry.channel_id} data={entry.data}
              error={entry.error} final />))}
        {active && <AssistantMessage key={channelId} channelId={channelId} data={message} error={error}
          final={done} />}
      </ol>
      <form onSubmit={send}>
        <input data-testid="input" value={input} onChange={(event) => setInput(event.target.value)}
          placeholder="Say something…" aria-label="Message" />
        <button data-testid="send" type="submit" disabled={sending || streaming}>Send</button>
      </form>
    </main>
  );
}
