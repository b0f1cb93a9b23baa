#!/usr/bin/env node
// An agentwire process agent in Node without dependencies: it speaks the
// JSON-lines protocol of docs/AGENTS.md on stdin/stdout, runs a tool of its
// own (a word count) and shows it, then streams its answer. It serves run
// after run, so it also works in a pool.
import { createInterface } from "node:readline";

const send = (line) => process.stdout.write(JSON.stringify(line) + "\n");

function wordCount(text) {
  const words = text.split(/\s+/).filter(Boolean);
  return { words: words.length, longest: words.reduce((a, w) => (w.length > a.length ? w : a), "") };
}

let running = null;

function serve(run) {
  running = run.run_id;
  send({ type: "thinking", text: "Counting the words" });
  const callId = `count-${run.run_id}`;
  const input = { text: run.content };
  send({ type: "tool_started", call_id: callId, tool: "word_count", input });
  const output = wordCount(run.content);
  send({ type: "tool_finished", call_id: callId, ok: true, output });
  const answer = `Your message has ${output.words} word${output.words === 1 ? "" : "s"}` +
    (output.longest ? `; the longest is "${output.longest}".` : ".");
  for (const [i, word] of answer.split(" ").entries())
    send({ type: "text", delta: i === 0 ? word : " " + word });
  send({ type: "completed", result: { agent: "node", words: output.words } });
  running = null;
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (text) => {
  let msg;
  try {
    msg = JSON.parse(text);
  } catch {
    process.stderr.write("not JSON: ignored\n");
    return;
  }
  if (msg.type === "run") serve(msg);
  else if (msg.type === "cancel" && msg.run_id === running) process.exit(0);
});
lines.on("close", () => process.exit(0));
