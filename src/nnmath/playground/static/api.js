// The server's API. Every call returns the parsed JSON answer, or throws an Error whose message is
// the server's own (it names what was wrong and how to fix it).

export async function call(method, path, body, contentType = "application/json") {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = contentType === "application/json" ? JSON.stringify(body) : body;
    init.headers["Content-Type"] = contentType;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new Error("the playground server cannot be reached; is `nnmath playground` still running?");
  }
  const answer = await response.json().catch(() => ({ error: `${response.status} ${response.statusText}` }));
  if (!response.ok) throw new Error(answer.error || `request failed (${response.status})`);
  return answer;
}

export const sessionPath = (id, tail) => `/api/sessions/${id}/${tail}`;

// Frames arrive over a WebSocket whenever the session changes; onClose gets the reason.
export function openStream(id, onFrame, onClose) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${sessionPath(id, "stream")}`);
  socket.onmessage = (event) => onFrame(JSON.parse(event.data));
  socket.onclose = (event) => onClose(event.reason || "the connection to the server closed");
  return socket;
}
