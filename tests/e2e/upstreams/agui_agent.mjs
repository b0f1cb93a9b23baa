// An upstream AG-UI agent for agentwire's tests, written the way a team's
// agent server is: the official @ag-ui/core types and schemas and the
// official @ag-ui/encoder. It checks every RunAgentInput it gets against
// the official schema, keeps them for the test to read, and answers as the
// last user message asks:
//   hello       text in pieces (with state, step and custom events around it)
//   think       reasoning, then text
//   own         a tool the agent runs itself, with its TOOL_CALL_RESULT
//   calc        asks for the offered `calculator` (a tool agentwire runs);
//               once the result is in the messages, says what it was
//   loop        asks for the calculator again and again
//   history     answers with the roles and contents it was sent
//   fail        RUN_ERROR (with a message that must not reach a user)
//   garbage     an event of a type AG-UI does not have
//   cut         some text, then the connection is dropped
//   hang        nothing, until the caller goes away
// Test endpoints: GET /_inputs (what it was posted), GET /_disconnects (how
// many requests the caller closed before their end).
// Usage: node agui_agent.mjs (prints "agui agent listening on http://127.0.0.1:PORT"; with
// AGUI_EXPECT_AUTH in its environment it requires that Authorization header).
import http from "node:http";
import { EventType } from "@ag-ui/core";
import { EventSchemas, RunAgentInputSchema } from "@ag-ui/core/schemas";
import { EventEncoder } from "@ag-ui/encoder";

const inputs = [];
let disconnects = 0;

function stream(req, res, input) {
  const encoder = new EventEncoder({ accept: req.headers.accept });
  res.writeHead(200, { "Content-Type": encoder.getContentType(), "Cache-Control": "no-cache" });
  const send = (event) => res.write(encoder.encode(EventSchemas.parse(event)));
  const ids = { threadId: input.threadId, runId: input.runId };
  const text = (messageId, ...pieces) => {
    send({ type: EventType.TEXT_MESSAGE_START, messageId, role: "assistant" });
    for (const delta of pieces) send({ type: EventType.TEXT_MESSAGE_CONTENT, messageId, delta });
    send({ type: EventType.TEXT_MESSAGE_END, messageId });
  };
  const callTool = (toolCallId, toolCallName, ...args) => {
    send({ type: EventType.TOOL_CALL_START, toolCallId, toolCallName });
    for (const delta of args) send({ type: EventType.TOOL_CALL_ARGS, toolCallId, delta });
    send({ type: EventType.TOOL_CALL_END, toolCallId });
  };
  const finish = (extra = {}) => {
    send({ type: EventType.RUN_FINISHED, ...ids, ...extra });
    res.end();
  };
  const users = input.messages.filter((m) => m.role === "user");
  const ask = String(users.at(-1)?.content ?? "");
  const last = input.messages.at(-1);
  send({ type: EventType.RUN_STARTED, ...ids });
  switch (ask) {
    case "think":
      send({ type: EventType.REASONING_START, messageId: "r1" });
      send({ type: EventType.REASONING_MESSAGE_START, messageId: "r1", role: "reasoning" });
      send({ type: EventType.REASONING_MESSAGE_CONTENT, messageId: "r1", delta: "The user wants " });
      send({ type: EventType.REASONING_MESSAGE_CONTENT, messageId: "r1", delta: "a thought." });
      send({ type: EventType.REASONING_MESSAGE_END, messageId: "r1" });
      send({ type: EventType.REASONING_END, messageId: "r1" });
      text("m1", "Thought ", "about it.");
      return finish();
    case "own":
      callTool("own-1", "lookup_weather", '{"city":', '"Oslo"}');
      send({ type: EventType.TOOL_CALL_RESULT, messageId: "t1", toolCallId: "own-1",
             content: JSON.stringify({ temperature: -3, sky: "snow" }), role: "tool" });
      text("m1", "It snows in Oslo.");
      return finish({ usage: [{ provider: "test", model: "stub", inputTokens: 12,
                                outputTokens: 5, totalTokens: 17 }] });
    case "calc":
    case "loop":
      if (ask === "calc" && last.role === "tool") {
        text("m2", "The calculator said ", last.content);
        return finish();
      }
      if (!input.tools.some((t) => t.name === "calculator")) {
        text("m1", "no calculator was offered");
        return finish();
      }
      callTool(`calc-${input.messages.length}`, "calculator", '{"expression"', ':"6*7"}');
      return finish();
    case "history":
      text("m1", JSON.stringify(input.messages.map((m) => [m.role, m.content])));
      return finish();
    case "fail":
      text("m1", "Starting...");
      send({ type: EventType.RUN_ERROR, message: "stack trace at /srv/agent/secret.py line 3",
             code: "BOOM" });
      return res.end();
    case "garbage":
      res.write('data: {"type":"NOT_AN_AGUI_EVENT"}\n\n');
      return res.end();
    case "cut":
      send({ type: EventType.TEXT_MESSAGE_START, messageId: "m1", role: "assistant" });
      send({ type: EventType.TEXT_MESSAGE_CONTENT, messageId: "m1", delta: "Half an ans" });
      return setTimeout(() => res.socket.destroy(), 50);
    case "hang":
      return;
    default:
      send({ type: EventType.STATE_SNAPSHOT, snapshot: { step: 1 } });
      send({ type: EventType.STEP_STARTED, stepName: "answer" });
      text("m1", "Hello", ", world");
      send({ type: EventType.CUSTOM, name: "note", value: { any: "thing" } });
      send({ type: EventType.STEP_FINISHED, stepName: "answer" });
      return finish({ result: { answered: true } });
  }
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/_inputs") {
    res.writeHead(200, { "Content-Type": "application/json" });
    return res.end(JSON.stringify(inputs));
  }
  if (req.method === "GET" && req.url === "/_disconnects") {
    res.writeHead(200, { "Content-Type": "application/json" });
    return res.end(JSON.stringify({ disconnects }));
  }
  if (req.method !== "POST") {
    res.writeHead(405);
    return res.end();
  }
  const expected = process.env.AGUI_EXPECT_AUTH;
  if (expected && req.headers.authorization !== expected) {
    res.writeHead(401, { "Content-Type": "application/json" });
    return res.end(JSON.stringify({ error: "bad credentials " + (req.headers.authorization ?? "") }));
  }
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    let input;
    try {
      input = RunAgentInputSchema.parse(JSON.parse(body));
    } catch (e) {
      res.writeHead(400, { "Content-Type": "text/plain" });
      return res.end("not a RunAgentInput: " + e.message);
    }
    inputs.push({ path: req.url, input });
    res.on("close", () => {
      if (!res.writableFinished) disconnects++;
    });
    stream(req, res, input);
  });
});
server.listen(0, "127.0.0.1", () => console.log(`agui agent listening on http://127.0.0.1:${server.address().port}`));
