// One answer: the reply as it streams, then the structured fields of the final (enriched) object.
export default function AssistantMessage({ channelId, data, final, error }) {
  return (
    <li className="assistant" data-channel={channelId}>
      <div className="reply" data-testid="reply">{data?.reply ?? ''}</div>
      {error && <div className="details error" data-testid="error">{`${error.code}: ${error.message}`}</div>}
      {final && data && (
        <div className="details">
          {data.sentiment && (
            <div data-testid="sentiment">
              Sentiment: <span className={`chip sentiment-${data.sentiment}`}>
                {data.sentiment}
                {typeof data.confidence === 'number' && ` (${(data.confidence * 100).toFixed(0)}%)`}
              </span>
            </div>
          )}
          {data.summary && <div data-testid="summary">Summary: {data.summary}</div>}
          {data.topics?.length > 0 && (
            <div data-testid="topics">
              Topics: {data.topics.map((topic) => <span className="chip" key={topic}>{topic}</span>)}
            </div>
          )}
          {data.action_items?.length > 0 && (
            <>
              <div>Action items:</div>
              <ul className="actions" data-testid="action-items">
                {data.action_items.map((item, index) => (
                  <li key={index}>{item.task}<span className="priority">{item.priority}</span></li>
                ))}
              </ul>
            </>
          )}
          {data.id && (
            <div className="ids" data-testid="message-id">
              message {data.id} · conversation {data.conversation_id}
            </div>
          )}
        </div>
      )}
    </li>
  );
}
