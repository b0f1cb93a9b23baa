// What a team would otherwise write for an LLM agent UI: a Node `ws` server
// that relays each user_message to an OpenAI-compatible upstream through the
// official `openai` SDK and forwards the stream as agentwire's lifecycle
// events (agent_started, an agent_text per delta, agent_completed with the
// text and usage), to measure agentwire's `openai` agents against with
// `agentwire bench --scenario llm` (docs/PERFORMANCE.md). Not a product: no
// history, no limits, no resume, no tools.
//   AGENTWIRE_JWT_SECRET=… OPENAI_BASE_URL=http://127.0.0.1:9300/v1 node server.mjs [port]
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import { WebSocketServer } from "ws";
import { verifyToken } from "../verify_token.mjs";

const secret = process.env.AGENTWIRE_JWT_SECRET || "";
const port = Number(process.argv[2] || 0);
const client = new OpenAI({ baseURL: process.env.OPENAI_BASE_URL,
                            apiKey: process.env.OPENAI_API_KEY || "unused", maxRetries: 2 });
const b64url = (buf) => buf.toString("base64url");

const id = (p) => p + "-" + b64url(randomBytes(8));
const wss = new WebSocketServer({ port, host: "127.0.0.1", perMessageDeflate: false });

wss.on("connection", (ws, req) => {
  const user = verifyToken(new URL(req.url, "http://x").searchParams.get("token"), secret);
  if (!user) return ws.close(1008);
  let seq = 0;
  ws.send(JSON.stringify({ type: "connection_established", connection_id: id("c"),
                           user_id: user, protocol: 1, epoch: id("e"), last_seq: 0 }));
  ws.on("message", async (data) => {
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    if (msg.type !== "user_message") return;
    const run = { run_id: id("r"), thread_id: msg.thread_id || id("t") };
    if (msg.request_id) run.request_id = msg.request_id;
    const emit = (type, fields) =>
      ws.send(JSON.stringify({ type, seq: ++seq, ts: Date.now(), ...run, ...fields }));
    emit("agent_started", { agent: "llm" });
    let text = "";
    let usage;
    try {
      const stream = await client.chat.completions.create({
        model: "stub", messages: [{ role: "user", content: msg.content }], stream: true,
        stream_options: { include_usage: true } });
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta?.content;
        if (delta) {
          text += delta;
          emit("agent_text", { delta });
        }
        if (chunk.usage) usage = chunk.usage;
      }
      const result = { text };
      if (usage) result.usage = { prompt_tokens: usage.prompt_tokens,
                                  completion_tokens: usage.completion_tokens };
      emit("agent_completed", { result, status: "ok" });
    } catch (e) {
      emit("agent_error", { code: "upstream_unavailable", message: "the upstream failed" });
    }
  });
});
wss.on("listening", () => console.log(`listening on http://127.0.0.1:${wss.address().port}`));
