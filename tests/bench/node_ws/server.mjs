// A Node `ws` server speaking agentwire's protocol for the demo agent with no
// step delay (a calculator question: the six lifecycle events of a run), to
// measure agentwire against with `agentwire bench` (docs/PERFORMANCE.md).
// Not a product: one process, no limits, no resume.
//   AGENTWIRE_JWT_SECRET=… node server.mjs [port]   prints "listening on …"
import { randomBytes } from "node:crypto";
import { WebSocketServer } from "ws";
import { verifyToken } from "../verify_token.mjs";

const secret = process.env.AGENTWIRE_JWT_SECRET || "";
const port = Number(process.argv[2] || 0);
const b64url = (buf) => buf.toString("base64url");

const id = (p) => p + "-" + b64url(randomBytes(8));
const wss = new WebSocketServer({ port, host: "127.0.0.1", perMessageDeflate: false });

wss.on("connection", (ws, req) => {
  const user = verifyToken(new URL(req.url, "http://x").searchParams.get("token"), secret);
  if (!user) return ws.close(1008);
  let seq = 0;
  const epoch = id("e");
  ws.send(JSON.stringify({ type: "connection_established", connection_id: id("c"),
                           user_id: user, protocol: 1, epoch, last_seq: 0 }));
  ws.on("message", (data) => {
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (msg.type !== "user_message") return;
    const run = { run_id: id("r"), thread_id: msg.thread_id || id("t") };
    if (msg.request_id) run.request_id = msg.request_id;
    const expr = (msg.content.match(/[0-9+\-*/(). ]*[0-9][0-9+\-*/(). ]*/) || [""])[0].trim();
    const value = expr && /^[0-9+\-*/(). ]+$/.test(expr) ? Function(`return (${expr})`)() : null;
    const answer = expr + " = " + value;
    const emit = (type, fields) =>
      ws.send(JSON.stringify({ type, seq: ++seq, ts: Date.now(), ...run, ...fields }));
    emit("agent_started", { agent: "demo" });
    emit("agent_thinking", { text: `This is arithmetic: I will evaluate ${expr} with the calculator.` });
    emit("tool_executing", { tool: "calculator", call_id: "call-1", input: { expression: expr } });
    emit("tool_completed", { tool: "calculator", call_id: "call-1", output: value, ok: true });
    emit("agent_text", { delta: answer });
    emit("agent_completed", { result: { text: answer }, status: "ok" });
  });
});
wss.on("listening", () => console.log(`listening on http://127.0.0.1:${wss.address().port}`));
