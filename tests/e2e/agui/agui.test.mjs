// Conformance: the official AG-UI client (@ag-ui/client, pinned in
// package-lock.json) against the real agentwire server's POST /agui.
// The client validates every event against its own schemas and sequence
// rules (verifyEvents); any rejection fails runAgent(), and any material it
// had to strip or could not place is reported through console.warn, which
// these tests treat as a failure.
import { test, before, after, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer as startServerWith, stopServer } from "../server.mjs";
import { HttpAgent } from "@ag-ui/client";

const BIN = process.env.AGENTWIRE_BIN;
const SECRET = "agui-conformance-secret-0123456789abcdef";
const env = { ...process.env, AGENTWIRE_JWT_SECRET: SECRET };

const startServer = (args) => startServerWith(env, args);

let userCounter = 0;
function newUser() {
  const user = `agui-${process.pid}-${++userCounter}`;
  const token = execFileSync(BIN, ["token", "--user", user], { env }).toString().trim();
  return { user, token };
}

function agentFor(server, token, question) {
  const agent = new HttpAgent({ url: `${server.base}/agui`,
                                headers: { Authorization: `Bearer ${token}` } });
  agent.addMessage({ id: `u-${Date.now()}-${Math.random()}`, role: "user", content: question });
  return agent;
}

// Every console.warn/error the client prints during a test.
let complaints = [];
const originalWarn = console.warn;
const originalError = console.error;
console.warn = (...args) => { complaints.push(args.map(String).join(" ")); };
console.error = (...args) => { complaints.push(args.map(String).join(" ")); };
beforeEach(() => { complaints = []; });

// Runs the agent, recording every event the client accepted.
async function run(agent, extra = {}, params = {}) {
  const events = [];
  const { result, newMessages } = await agent.runAgent(params, {
    onEvent: ({ event }) => { events.push(event); },
    ...extra,
  });
  return { result, newMessages, events, types: events.map((e) => e.type) };
}

// The user's lifecycle events as the SSE resume path serves them, until
// `done(event)` holds.
async function readUserEvents(server, token, done) {
  const ac = new AbortController();
  const res = await fetch(`${server.base}/v1/events?after_seq=0`,
                          { headers: { Authorization: `Bearer ${token}` }, signal: ac.signal });
  assert.equal(res.status, 200);
  const decoder = new TextDecoder();
  let buf = "";
  const seen = [];
  const timer = setTimeout(() => ac.abort(), 10000);
  try {
    for await (const chunk of res.body) {
      buf += decoder.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6));
        if (data.length === 0) continue;
        const ev = JSON.parse(data.join("\n"));
        seen.push(ev);
        if (done(ev)) return seen;
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") throw e;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return seen;
}

let server;       // the demo agent, quick steps
let slowServer;   // steps slower than the run timeout: every run fails

before(async () => {
  assert.ok(BIN, "AGENTWIRE_BIN must name the agentwire binary");
  server = await startServer(["--demo-step-ms=150"]);
  slowServer = await startServer(["--demo-step-ms=5000", "--run-timeout=1s"]);
});

after(async () => {
  await Promise.all([stopServer(server), stopServer(slowServer)]);
  console.warn = originalWarn;
  console.error = originalError;
});

test("a plain question: runAgent resolves with the answer as an assistant message", async () => {
  const { token } = newUser();
  const agent = agentFor(server, token, "hello from the official client");
  const runId = `client-run-${process.pid}`;
  const { result, types, events } = await run(agent, {}, { runId });
  // The answer streams: one TEXT_MESSAGE_CONTENT per agent_text piece.
  const collapsed = types.filter((t, i) => !(t === "TEXT_MESSAGE_CONTENT" && types[i - 1] === t));
  assert.deepEqual(collapsed, [
    "RUN_STARTED",
    "REASONING_START", "REASONING_MESSAGE_START", "REASONING_MESSAGE_CONTENT",
    "REASONING_MESSAGE_END", "REASONING_END",
    "TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END", "TOOL_CALL_RESULT",
    "TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END",
    "RUN_FINISHED",
  ]);
  const deltas = events.filter((e) => e.type === "TEXT_MESSAGE_CONTENT").map((e) => e.delta);
  assert.equal(deltas.length, 5, "a word at a time");
  assert.deepEqual(deltas, ["hello", " from", " the", " official", " client"]);
  assert.ok(events.filter((e) => e.type.startsWith("TEXT_MESSAGE"))
              .every((e) => e.messageId === events.find((x) => x.type === "TEXT_MESSAGE_START").messageId));
  // The client's runId and threadId are respected.
  assert.equal(events[0].threadId, agent.threadId);
  assert.equal(events.at(-1).threadId, agent.threadId);
  assert.equal(events[0].runId, runId);
  assert.equal(events.at(-1).runId, runId);
  assert.deepEqual(result, { text: "hello from the official client" });
  const answer = agent.messages.at(-1);
  assert.equal(answer.role, "assistant");
  assert.equal(answer.content, "hello from the official client");
  assert.deepEqual(complaints, []);
});

test("a calculator question: the messages hold the tool call, its result and the answer", async () => {
  const { token } = newUser();
  const agent = agentFor(server, token, "what is 6*7?");
  const { result } = await run(agent);
  assert.deepEqual(result, { text: "6*7 = 42" });
  const call = agent.messages.find((m) => m.role === "assistant" && m.toolCalls?.length);
  assert.ok(call, "an assistant message with a tool call");
  assert.equal(call.toolCalls[0].function.name, "calculator");
  assert.deepEqual(JSON.parse(call.toolCalls[0].function.arguments), { expression: "6*7" });
  const toolResult = agent.messages.find((m) => m.role === "tool");
  assert.equal(toolResult.toolCallId, call.toolCalls[0].id);
  assert.equal(toolResult.content, "42");
  assert.equal(agent.messages.at(-1).role, "assistant");
  assert.equal(agent.messages.at(-1).content, "6*7 = 42");

  // A second turn on the same thread: the whole history goes back to the
  // server, tool call ids stay unique, and the client accepts it all.
  agent.addMessage({ id: "u-second", role: "user", content: "and 2+3?" });
  const second = await run(agent);
  assert.deepEqual(second.result, { text: "2+3 = 5" });
  const calls = agent.messages.flatMap((m) => m.toolCalls ?? []);
  assert.equal(calls.length, 2);
  assert.notEqual(calls[0].id, calls[1].id);
  // The client's threadId is a stored thread holding both turns.
  const stored = await fetch(`${server.base}/v1/threads/${agent.threadId}/messages`,
                             { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(stored.status, 200);
  const messages = (await stored.json()).messages;
  assert.deepEqual(messages.map((m) => m.role),
                   ["user", "assistant", "tool", "assistant", "user", "assistant", "tool", "assistant"]);
  assert.equal(messages[4].content, "and 2+3?");
  assert.equal(messages[7].content, "2+3 = 5");
  assert.deepEqual(complaints, []);
});

test("an LLM agent (the openai kind, against a stub upstream): the answer streams and its tool call runs", async () => {
  const stub = spawn("/usr/bin/python3", [fileURLToPath(new URL("../../support/openai_stub.py", import.meta.url))],
                     { stdio: ["ignore", "pipe", "inherit"] });
  const base = await new Promise((resolve, reject) => {
    let out = "";
    stub.stdout.on("data", (c) => {
      out += c;
      const m = out.match(/listening on (http:\/\/[\d.]+:\d+)/);
      if (m) resolve(m[1]);
    });
    stub.on("exit", (code) => reject(new Error(`the stub exited (${code}): ${out}`)));
  });
  const dir = mkdtempSync(join(tmpdir(), "agentwire-agui-llm-"));
  const file = join(dir, "agents.json");
  writeFileSync(file, JSON.stringify({ agents: { llm: { kind: "openai", base_url: `${base}/v1`,
                                                        model: "stub", tools: ["calculator"] } } }));
  const llm = await startServer([`--agents-file=${file}`, "--text-flush=0ms"]);
  try {
    const { token } = newUser();
    const agent = agentFor(llm, token, "streamed from a model");
    const first = await run(agent);
    const deltas = first.events.filter((e) => e.type === "TEXT_MESSAGE_CONTENT").map((e) => e.delta);
    assert.deepEqual(deltas, ["streamed", " from", " a", " model"]);
    assert.equal(first.result.text, "streamed from a model");
    assert.ok(first.result.usage.completion_tokens > 0);
    agent.addMessage({ id: "u-call", role: "user", content: 'call calculator {"expression":"6*7"}' });
    const second = await run(agent);
    assert.ok(second.types.includes("TOOL_CALL_START"));
    const result = second.events.find((e) => e.type === "TOOL_CALL_RESULT");
    assert.equal(result.content, "42");
    assert.equal(second.result.text, "tool said: 42");
    assert.deepEqual(complaints, []);
  } finally {
    await stopServer(llm);
    stub.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an aborted run: runAgent resolves and the run still completes on the server", async () => {
  const { token } = newUser();
  const agent = agentFor(server, token, "what is 9*9?");
  let runId;
  const { types } = await run(agent, {
    onRunStartedEvent: ({ event }) => { runId = event.runId; agent.abortRun(); },
  });
  assert.ok(runId);
  assert.ok(!types.includes("RUN_FINISHED"), "the client stopped reading");
  // Closing the stream is not a cancel: the run finishes and its events
  // stay in the user's replay buffer.
  const seen = await readUserEvents(server, token,
    (ev) => ev.run_id === runId && ev.type === "agent_completed");
  const last = seen.at(-1);
  assert.equal(last.type, "agent_completed");
  assert.equal(last.status, "ok");
  assert.equal(last.result.text, "9*9 = 81");
  assert.deepEqual(complaints, []);
});

test("an explicitly cancelled run ends with RUN_FINISHED outcome cancelled", async () => {
  const { token } = newUser();
  const agent = agentFor(server, token, "what is 3*3?");
  let cancelStatus;
  const { types, events, result } = await run(agent, {
    onRunStartedEvent: async ({ event }) => {
      const res = await fetch(`${server.base}/v1/runs/${encodeURIComponent(event.runId)}/cancel`,
                              { method: "POST", headers: { Authorization: `Bearer ${token}` } });
      cancelStatus = res.status;
    },
  });
  assert.equal(cancelStatus, 202);
  assert.equal(types[0], "RUN_STARTED");
  assert.equal(types.at(-1), "RUN_FINISHED");
  assert.deepEqual(events.at(-1).outcome, { type: "cancelled" });
  assert.equal(result, undefined); // only a successful outcome carries a result
  assert.deepEqual(complaints, []);
});

test("an agent failure arrives as RUN_ERROR with its code and safe message", async () => {
  const { token } = newUser();
  const agent = agentFor(slowServer, token, "what is 1+1?");
  let runError;
  const { types, result } = await run(agent, {
    onRunErrorEvent: ({ event }) => { runError = event; },
  });
  // @ag-ui/client 1.0.0 resolves runAgent() after a RUN_ERROR and hands the
  // error to onRunErrorEvent; it rejects only for transport or verification
  // failures.
  assert.deepEqual(types, ["RUN_STARTED", "RUN_ERROR"]);
  assert.equal(runError.code, "timeout");
  assert.equal(runError.message, "the agent did not finish in time");
  assert.equal(result, undefined);
  assert.ok(!agent.messages.some((m) => m.role === "assistant"));
  assert.deepEqual(complaints, []);
});

test("input the server refuses rejects runAgent with the HTTP status and JSON error", async () => {
  const { token } = newUser();
  const agent = new HttpAgent({ url: `${server.base}/agui`,
                                headers: { Authorization: `Bearer ${token}` } });
  // No user message to answer.
  agent.addMessage({ id: "s1", role: "system", content: "you are helpful" });
  await assert.rejects(run(agent), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.payload.error.code, "bad_request");
    return true;
  });
  const unauthorized = new HttpAgent({ url: `${server.base}/agui`,
                                       headers: { Authorization: "Bearer not-a-token" } });
  unauthorized.addMessage({ id: "u1", role: "user", content: "hi" });
  await assert.rejects(run(unauthorized), (e) => e.status === 401);
  complaints = complaints.filter((c) => !c.startsWith("Agent execution failed"));
  assert.deepEqual(complaints, []);
});
