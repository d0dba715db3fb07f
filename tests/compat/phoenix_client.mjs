// The real Phoenix Channels JS client (the `phoenix` package @modelriver/client is built on), driven the way
// ModelRiver's SDK drives it: Socket(`${url}/socket`, {params: {token}}), join the topic with {}, listen to
// `response`, push `heartbeat` on the channel. Every message the socket receives is printed as one JSON line
// ({"kind": "msg", topic, event, payload, ref, join_ref}) for tests/compat to assert on.
//
// Usage: node phoenix_client.mjs '{"url": "ws://127.0.0.1:8080/socket", "token": "…", "topic": "ai_response:…"}'
// `url` may also be the async response's `websocket_url`, as ModelRiver's chatbot frontend passes it.
// Options: params (join params), authToken (send the token as phoenix.js's authToken instead of a param),
// channelHeartbeat (push `heartbeat` on the channel once joined), minHeartbeats (socket heartbeat replies to see
// before exiting), timeoutMs. Exits 0 when the server closes the topic or refuses the join, 2 on timeout.
import { Socket } from "phoenix";
import WebSocket from "ws";

const options = JSON.parse(process.argv[2]);
const print = (line) => process.stdout.write(JSON.stringify(line) + "\n");

const socketOptions = {
  transport: WebSocket, // Node 20 has no global WebSocket
  // phoenix.js drops the socket (and a join reply in flight) when a heartbeat is not answered within one interval:
  // short enough for the heartbeat tests, long enough for a loaded machine (phoenix.js's own default is 30 s).
  heartbeatIntervalMs: options.heartbeatIntervalMs ?? 1000,
  reconnectAfterMs: () => 60_000, // a test must see one connection, not a retry loop
  rejoinAfterMs: () => 60_000,
};
if (options.authToken) socketOptions.authToken = options.token;
else socketOptions.params = { token: options.token };

// @modelriver/client's rule for the URL it is given (`websocketUrl` from the async response, or `baseUrl`)
const socketUrl = options.url.endsWith("/socket") ? options.url : `${options.url}/socket`;
const socket = new Socket(socketUrl, socketOptions);
let heartbeats = 0;
let done = false;
let topicClosed = false;

function finish(code) {
  if (done) return;
  done = true;
  socket.disconnect(() => process.exit(code));
  setTimeout(() => process.exit(code), 500);
}

function maybeFinish() {
  if (topicClosed && heartbeats >= (options.minHeartbeats ?? 0)) finish(0);
}

setTimeout(() => { print({ kind: "timeout" }); finish(2); }, options.timeoutMs ?? 15_000);

socket.onOpen(() => print({ kind: "open" }));
socket.onError((error) => { print({ kind: "socket_error", message: String(error?.message ?? error?.type ?? error) }); finish(0); });
socket.onMessage((msg) => {
  print({ kind: "msg", ...msg });
  if (msg.topic === "phoenix" && msg.event === "phx_reply" && msg.payload.status === "ok") {
    heartbeats += 1;
    maybeFinish();
  }
});

socket.connect();
const channel = socket.channel(options.topic, options.params ?? {});
channel.on("response", (payload) => print({ kind: "response", status: payload.status }));
channel.onClose(() => { print({ kind: "closed" }); topicClosed = true; maybeFinish(); });
channel.join()
  .receive("ok", (reply) => {
    print({ kind: "joined", reply });
    if (options.channelHeartbeat) {
      channel.push("heartbeat", {}).receive("ok", (r) => print({ kind: "channel_heartbeat", status: "ok", response: r }));
    }
  })
  .receive("error", (reply) => { print({ kind: "join_error", reason: reply.reason }); finish(0); })
  .receive("timeout", () => { print({ kind: "join_timeout" }); finish(2); });
