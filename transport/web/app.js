// The agentwire console: sign in, chat with the agent, watch each run's
// lifecycle live, and (with the admin token) the actor tree (actors.js).
// One WebSocket; it reconnects with backoff and resumes from the last seq it
// saw. Past threads come from the threads API, so a reload or another
// browser shows them too.
"use strict";

const $ = (id) => document.getElementById(id);
// A new element with a class and, optionally, its text.
function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}
const STEP_NAMES = {
  agent_started: "started", agent_thinking: "thinking", tool_executing: "tool call",
  tool_completed: "tool result", agent_text: "answer", agent_completed: "done",
  agent_error: "error",
};

const state = {
  token: "", adminToken: "", user: "",
  ws: null, wanted: false, attempt: 0, retryTimer: null,
  epoch: null, lastSeq: 0,
  runs: new Map(),        // run_id -> {threadId, el, steps, lastTs, done, ask}
  asks: new Map(),        // request_id -> the text this tab sent
  threads: new Map(),     // thread_id -> {title, runIds: [], stored, loaded}
  pastRuns: new Set(),    // run ids shown from the history (their live events are not)
  pendingThread: null,    // request_id of a message that opens a new thread
  current: null,          // selected thread_id (null: a new thread)
  actorsTimer: null, nextRequest: 0,
  loadingHistory: false,  // the sign-in resume from seq 0 is under way
  expiresAt: 0,           // the connection's token exp (Unix s), once the server warned
  refreshing: null,       // {id, token} of the refresh sent, until answered
};

// -- sign-in ---------------------------------------------------------------------

async function offerDevToken() {
  try {
    const r = await fetch("/v1/dev-token");
    if (!r.ok) return;
    const dev = await r.json();
    const button = $("use-dev-token");
    button.hidden = false;
    button.onclick = () => {
      $("token").value = dev.token;
      $("admin-token").value = dev.admin_token || "";
      $("sign-in-form").requestSubmit();
    };
  } catch (e) { /* not in dev mode */ }
}

async function signIn(event) {
  event.preventDefault();
  const token = $("token").value.trim();
  $("sign-in-error").textContent = "";
  let r;
  try {
    r = await fetch("/v1/me", { headers: { Authorization: "Bearer " + token } });
  } catch (e) {
    $("sign-in-error").textContent = "Cannot reach the server.";
    return;
  }
  if (r.status === 401) {
    $("sign-in-error").textContent = "Sign-in failed: the token is invalid or expired.";
    $("token").focus();
    return;
  }
  if (!r.ok) {
    $("sign-in-error").textContent = "Sign-in failed: the server answered " + r.status + ".";
    return;
  }
  const me = await r.json();
  state.token = token;
  state.expiresAt = 0;
  state.user = me.user_id;
  state.adminToken = $("admin-token").value.trim();
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  $("actors-toggle").hidden = !state.adminToken;
  $("who").textContent = "signed in as " + state.user;
  state.wanted = true;
  connect();
  loadThreads();
  $("message").focus();
}

// -- the history (threads API) ---------------------------------------------------------

function api(path, method = "GET") {
  return fetch(path, { method, headers: { Authorization: "Bearer " + state.token } });
}

async function loadThreads() {
  let page;
  try {
    const r = await api("/v1/threads?limit=50");
    if (!r.ok) return;
    page = await r.json();
  } catch (e) {
    return;
  }
  // Oldest at the top, like threads opened here.
  for (const t of page.threads.reverse()) {
    const known = state.threads.get(t.thread_id);
    if (known) {
      known.stored = true;
      continue;
    }
    state.threads.set(t.thread_id, { title: t.title || "thread " + t.thread_id.slice(-6),
                                     runIds: [], stored: true, loaded: false });
  }
  renderThreads();
}

// The thread's earlier runs, before the ones shown live.
async function loadMessages(id) {
  const thread = state.threads.get(id);
  thread.loaded = true;
  let page;
  try {
    const r = await api("/v1/threads/" + encodeURIComponent(id) + "/messages?limit=200");
    if (!r.ok) throw new Error(String(r.status));
    page = await r.json();
  } catch (e) {
    thread.loaded = false;
    showNotice("The thread's history could not be loaded; select it again to retry.");
    return;
  }
  const byRun = new Map();
  for (const m of page.messages) {
    if (!byRun.has(m.run_id)) byRun.set(m.run_id, []);
    byRun.get(m.run_id).push(m);
  }
  const firstLive = [...$("runs").children].find((e) => e.dataset.threadId === id) || null;
  for (const [runId, messages] of byRun) {
    if (state.runs.has(runId) || state.pastRuns.has(runId)) continue;
    state.pastRuns.add(runId);
    $("runs").insertBefore(pastRun(id, runId, messages), firstLive);
  }
}

function pastStep(type, content) {
  const li = el("li", "step");
  li.dataset.type = type;
  const body = el("div", "body");
  if (typeof content === "string") body.textContent = content;
  else body.appendChild(content);
  li.append(el("span", "kind", STEP_NAMES[type]), el("span", "dt", ""), body);
  return li;
}

function pastRun(threadId, runId, messages) {
  const li = el("li", "run past");
  li.dataset.runId = runId;
  li.dataset.threadId = threadId;
  const user = messages.find((m) => m.role === "user");
  const steps = el("ol", "steps");
  const toolOf = new Map(); // call_id -> tool
  for (const m of messages) {
    if (m.role === "assistant") {
      for (const c of m.tool_calls || []) {
        toolOf.set(c.call_id, c.tool);
        steps.appendChild(pastStep("tool_executing", details(c.tool + " input", c.input)));
      }
      if (m.content) steps.appendChild(pastStep("agent_text", m.content));
    } else if (m.role === "tool") {
      let output = m.content;
      try { output = JSON.parse(m.content); } catch (e) { /* text */ }
      const d = details((toolOf.get(m.call_id) || "tool") + (m.ok ? " output" : " failed"), output);
      steps.appendChild(pastStep("tool_completed", d));
    }
  }
  li.append(el("p", "ask", user ? user.content : "(earlier)"),
            el("div", "head", "run " + runId + " (history)"), steps);
  li.hidden = threadId !== state.current;
  return li;
}

async function deleteThread(id) {
  try {
    const r = await api("/v1/threads/" + encodeURIComponent(id), "DELETE");
    if (!r.ok && r.status !== 404) throw new Error(String(r.status));
  } catch (e) {
    showNotice("The thread could not be deleted; try again.");
    return;
  }
  state.threads.delete(id);
  for (const e of [...$("runs").children])
    if (e.dataset.threadId === id) e.remove();
  if (state.current === id) selectThread(null);
  else renderThreads();
}

// -- the token's lifetime ---------------------------------------------------------

// A JWT's claims (not verified: the server does that), or null.
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "=".repeat((4 - part.length % 4) % 4)));
  } catch (e) {
    return null;
  }
}

const clock = (unixSeconds) => new Date(unixSeconds * 1000).toLocaleTimeString();

// The server warned that the token ends at `exp`: renew it without asking
// when the dev mode's token is newer for the same user, else ask for one.
async function tokenExpiring(exp) {
  state.expiresAt = exp;
  try {
    const r = await fetch("/v1/dev-token");
    if (r.ok) {
      const dev = await r.json();
      const claims = claimsOf(dev.token);
      if (claims && claims.sub === state.user && claims.exp > exp) return sendRefresh(dev.token);
    }
  } catch (e) { /* not in dev mode: ask */ }
  askForToken("Your sign-in token expires at " + clock(exp) + ". Paste a new token for " +
              state.user + " to stay connected; without one the connection closes then.");
}

function askForToken(text) {
  $("refresh-text").textContent = text;
  $("refresh-error").textContent = "";
  $("refresh-form").hidden = false;
}

function sendRefresh(token) {
  const id = "refresh-" + (++state.nextRequest);
  state.refreshing = { id, token };
  if (!send({ type: "refresh", token, request_id: id })) state.refreshing = null;
}

function onRefreshed(f) {
  if (!state.refreshing) return;
  state.token = state.refreshing.token; // for the API and the next reconnect
  state.refreshing = null;
  state.expiresAt = 0;
  $("refresh-form").hidden = true;
  $("refresh-token").value = "";
  showNotice("Token renewed: the connection stays open until " + clock(f.exp) + ".");
}

function onRefreshRefused() {
  state.refreshing = null;
  askForToken($("refresh-text").textContent ||
              "Your sign-in token expires at " + clock(state.expiresAt) + ".");
  $("refresh-error").textContent =
    "The new token was refused: it is invalid, expired or for another user. The old one still ends at " +
    clock(state.expiresAt) + ".";
}

// The server closed the socket because the token ran out: reconnecting with
// it would be refused, so sign in again.
function tokenExpired() {
  state.wanted = false;
  $("refresh-form").hidden = true;
  $("app").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("token").value = "";
  $("sign-in-error").textContent =
    "Your sign-in token expired, so the server closed the connection. Sign in with a new token.";
  setStatus("signed out: the token expired");
  $("token").focus();
}

function signOut() {
  state.wanted = false;
  if (state.ws) state.ws.close(1000);
  location.reload();
}

// -- the connection ----------------------------------------------------------------

function setStatus(text, cls) {
  const s = $("status");
  s.textContent = text;
  s.className = "status " + (cls || "");
}

function connect() {
  clearTimeout(state.retryTimer);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/ws?token=" + encodeURIComponent(state.token));
  state.ws = ws;
  setStatus(state.attempt ? "reconnecting…" : "connecting…", "reconnecting");
  ws.onmessage = (m) => onFrame(JSON.parse(m.data));
  ws.onclose = (e) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (!state.wanted) return setStatus("signed out");
    if (e.code === 1008 && state.expiresAt && Date.now() / 1000 >= state.expiresAt - 5)
      return tokenExpired();
    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s … at most 10 s.
    const delay = Math.min(10000, 500 * 2 ** state.attempt) * (0.75 + Math.random() / 2);
    state.attempt += 1;
    setStatus("disconnected (" + (e.code || "no code") + "), retrying in " +
              (delay / 1000).toFixed(1) + " s", "reconnecting");
    state.retryTimer = setTimeout(connect, delay);
  };
}

function send(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(frame));
    return true;
  }
  showNotice("Not connected: the message was not sent. It reconnects by itself; try again then.");
  return false;
}

function onFrame(f) {
  switch (f.type) {
    case "connection_established": {
      state.attempt = 0;
      setStatus("connected", "connected");
      if (state.epoch && f.epoch === state.epoch) {
        if (f.last_seq > state.lastSeq)
          send({ type: "resume", epoch: state.epoch, after_seq: state.lastSeq });
      } else if (state.epoch && state.lastSeq > 0) {
        // A new session on the server: what happened before is gone.
        showNotice("The server started a new session for you; earlier events are no longer available.");
        state.lastSeq = 0;
      }
      const first = !state.epoch;
      state.epoch = f.epoch;
      // The first connection shows what the server still holds of this
      // user's recent runs (its replay buffer), then goes live.
      if (first && f.last_seq > 0) {
        state.loadingHistory = true;
        send({ type: "resume", epoch: f.epoch, after_seq: 0 });
      }
      return;
    }
    case "resumed":
      state.loadingHistory = false;
      return;
    case "pong":
      return;
    case "refreshed":
      return onRefreshed(f);
    case "error":
      return onError(f);
    case "notification":
      if (f.seq <= state.lastSeq) return;
      state.lastSeq = f.seq;
      showNotice("Notification " + f.topic + ": " + JSON.stringify(f.data));
      return;
    default:
      if (STEP_NAMES[f.type]) return onEvent(f);
  }
}

function onError(f) {
  if (f.code === "replay_gap") {
    // Some events are gone: show what the server still holds, and say so
    // (loading history on sign-in, older events being gone is expected).
    if (!state.loadingHistory)
      showNotice("Some events could not be recovered after the reconnect (replay gap); " +
                 "showing what the server still holds.");
    state.epoch = f.epoch || state.epoch;
    state.lastSeq = Math.max(0, (f.oldest_seq || 1) - 1);
    send({ type: "resume", epoch: state.epoch, after_seq: state.lastSeq });
    return;
  }
  if (f.code === "token_expiring") return tokenExpiring(f.exp);
  if (state.refreshing && f.request_id === state.refreshing.id) return onRefreshRefused();
  const text = "Error: " + (f.message || f.code);
  if (f.request_id && state.asks.has(f.request_id)) {
    const ask = state.asks.get(f.request_id);
    ask.errorEl.textContent = text;
    return;
  }
  showNotice(text);
}

function showNotice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = false;
}

// -- runs ----------------------------------------------------------------------------

function onEvent(ev) {
  if (ev.seq <= state.lastSeq) return; // already shown (a resume overlaps)
  state.lastSeq = ev.seq;
  if (state.pastRuns.has(ev.run_id)) return; // shown whole from the history
  let run = state.runs.get(ev.run_id);
  if (!run) run = newRun(ev);
  addStep(run, ev);
}

function newRun(ev) {
  let thread = state.threads.get(ev.thread_id);
  const ask = ev.request_id && state.asks.get(ev.request_id);
  if (!thread) {
    thread = { title: ask ? ask.text : "thread " + ev.thread_id.slice(-6), runIds: [],
               stored: false, loaded: true };
    state.threads.set(ev.thread_id, thread);
    if (ask && state.pendingThread === ev.request_id) {
      state.pendingThread = null;
      selectThread(ev.thread_id); // the new thread this tab opened
    } else if (state.current === null && !state.pendingThread) {
      selectThread(ev.thread_id); // nothing open here: follow the other tab
    } else {
      renderThreads();
    }
  } else if (state.current === null && !state.pendingThread) {
    selectThread(ev.thread_id); // a thread listed from the history goes on live
  }
  thread.runIds.push(ev.run_id);
  const li = el("li", "run");
  li.dataset.runId = ev.run_id;
  li.dataset.threadId = ev.thread_id;
  const head = el("div", "head", "run " + ev.run_id);
  const cancel = el("button", "cancel", "Cancel");
  cancel.type = "button";
  cancel.onclick = () => send({ type: "cancel_run", run_id: ev.run_id });
  head.appendChild(cancel);
  const steps = el("ol", "steps");
  li.append(el("p", "ask", ask ? ask.text : "(sent from another tab or client)"), head, steps);
  if (ask) {
    ask.errorEl.remove();
    ask.pendingEl.remove();
  }
  $("runs").appendChild(li);
  const run = { threadId: ev.thread_id, el: li, steps, cancel, lastTs: ev.ts, done: false };
  state.runs.set(ev.run_id, run);
  li.hidden = ev.thread_id !== state.current;
  return run;
}

// Streamed text grows one "answer" step; the events it came in are not
// listed one by one.
function addText(run, ev) {
  if (!run.textBody) {
    const li = el("li", "step streaming");
    li.dataset.type = "agent_text";
    li.dataset.seq = ev.seq;
    run.textBody = el("div", "body");
    li.append(el("span", "kind", STEP_NAMES.agent_text),
              el("span", "dt", "+" + Math.max(0, ev.ts - run.lastTs) + " ms"), run.textBody);
    run.lastTs = ev.ts;
    run.textStep = li;
    run.steps.appendChild(li);
  }
  run.textBody.textContent += ev.delta;
  if (!run.el.hidden) run.el.scrollIntoView({ block: "end" });
}

function addStep(run, ev) {
  if (ev.type === "agent_text") return addText(run, ev);
  if (run.textBody && ev.type !== "agent_completed") {
    run.textStep.classList.remove("streaming");
    run.textBody = null; // text after this step starts a new answer step
  }
  const li = el("li", "step");
  li.dataset.type = ev.type;
  li.dataset.seq = ev.seq;
  const kind = el("span", "kind", STEP_NAMES[ev.type]);
  const dt = el("span", "dt", "+" + Math.max(0, ev.ts - run.lastTs) + " ms");
  run.lastTs = ev.ts;
  const body = el("div", "body");
  switch (ev.type) {
    case "agent_started":
      body.textContent = "agent " + ev.agent + (ev.agent_kind ? " (" + ev.agent_kind + ")" : "");
      break;
    case "agent_thinking": body.textContent = ev.text; break;
    case "tool_executing": body.appendChild(details(ev.tool + " input", ev.input)); break;
    case "tool_completed": {
      const d = details(ev.tool + (ev.ok ? " output" : " failed"), ev.output);
      if (!ev.ok) d.querySelector("summary").className = "failed";
      body.appendChild(d);
      break;
    }
    case "agent_completed":
      if (ev.status === "cancelled") body.textContent = "cancelled";
      else if (run.textStep) body.textContent = "answered";
      else body.textContent = (ev.result && ev.result.text) || "";
      if (run.textStep) run.textStep.classList.remove("streaming");
      break;
    case "agent_error": body.textContent = ev.code + ": " + ev.message; break;
  }
  li.append(kind, dt, body);
  run.steps.appendChild(li);
  if (ev.type === "agent_completed" || ev.type === "agent_error") {
    run.done = true;
    run.cancel.remove();
  }
  if (!run.el.hidden) run.el.scrollIntoView({ block: "end" });
}

function details(title, value) {
  const d = document.createElement("details");
  const s = document.createElement("summary");
  s.textContent = title;
  const pre = document.createElement("pre");
  pre.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  d.append(s, pre);
  return d;
}

// -- threads and the composer ----------------------------------------------------------

function renderThreads() {
  const list = $("thread-list");
  list.textContent = "";
  for (const [id, t] of state.threads) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = t.title;
    b.title = t.title;
    b.setAttribute("aria-current", String(id === state.current));
    b.onclick = () => selectThread(id);
    const del = document.createElement("button");
    del.type = "button";
    del.className = "delete";
    del.textContent = "×";
    del.title = "Delete this thread";
    del.setAttribute("aria-label", "Delete thread " + t.title);
    del.onclick = () => deleteThread(id);
    li.append(b, del);
    list.appendChild(li);
  }
}

function selectThread(id) {
  state.current = id;
  const thread = id && state.threads.get(id);
  if (thread && thread.stored && !thread.loaded) loadMessages(id);
  for (const el of $("runs").children)
    el.hidden = (el.dataset.threadId || null) !== id;
  renderThreads();
  $("message").focus();
}

function sendMessage(event) {
  event.preventDefault();
  const text = $("message").value.trim();
  if (!text) return;
  const requestId = "web-" + Date.now().toString(36) + "-" + (++state.nextRequest);
  const frame = { type: "user_message", content: text, request_id: requestId };
  if (state.current) frame.thread_id = state.current;
  else state.pendingThread = requestId;
  if (!send(frame)) return;
  // Until agent_started arrives, the message shows as pending.
  const pending = document.createElement("li");
  pending.className = "run";
  pending.dataset.threadId = state.current || "";
  pending.textContent = text + " — sending…";
  const errorEl = document.createElement("p");
  errorEl.className = "error";
  errorEl.setAttribute("role", "alert");
  pending.appendChild(errorEl);
  $("runs").appendChild(pending);
  state.asks.set(requestId, { text, pendingEl: pending, errorEl });
  $("message").value = "";
}

// -- wiring --------------------------------------------------------------------------------

$("sign-in-form").addEventListener("submit", signIn);
$("refresh-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("refresh-token").value.trim();
  if (token) sendRefresh(token);
});
$("composer").addEventListener("submit", sendMessage);
$("message").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("composer").requestSubmit();
  }
});
$("new-thread").onclick = () => selectThread(null);
$("sign-out").onclick = signOut;
offerDevToken();

// For tests and the curious: drop the socket as a network failure would.
window.agentwireConsole = { dropConnection: () => state.ws && state.ws.close(4000, "dropped") };
