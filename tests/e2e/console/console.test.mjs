// The web console in Debian's headless Chromium (driven by playwright-core,
// never a downloaded browser) against the real agentwire server.
// Screenshots go to $CONSOLE_ARTIFACTS (default: ./artifacts), not to git.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { startServer as startServerWith, stopServer } from "../server.mjs";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { build } from "esbuild";

const BIN = process.env.AGENTWIRE_BIN;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = process.env.CONSOLE_ARTIFACTS || path.resolve("artifacts");
const SECRET = "console-e2e-secret-0123456789abcdefghij";
const ADMIN = "console-e2e-admin-token-0123456789";
const env = { ...process.env, AGENTWIRE_JWT_SECRET: SECRET, AGENTWIRE_ADMIN_TOKEN: ADMIN };

const startServer = (args) => startServerWith(env, args);

let userCounter = 0;
function newToken({ user = `web-${process.pid}-${++userCounter}`, ttl = "1h" } = {}) {
  return execFileSync(BIN, ["token", "--user", user, "--ttl", ttl], { env }).toString().trim();
}
const userOf = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url")).sub;

let browser; // a persistent context on a fresh profile
let profile;
before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  profile = mkdtempSync(path.join(tmpdir(), "agentwire-chromium-"));
  // A fresh profile directory (playwright passes it as --user-data-dir).
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function signedIn(server, token, { admin = "", width = 1200 } = {}) {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height: 800 });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(server.base + "/");
  await page.fill("#token", token);
  if (admin) await page.fill("#admin-token", admin);
  await page.click("#sign-in-form button[type=submit]");
  await page.waitForSelector("#status.connected");
  page.jsErrors = errors;
  return page;
}

async function ask(page, text) {
  await page.fill("#message", text);
  await page.press("#message", "Enter");
}

// The step types of the run that ends the timeline, once it has ended.
async function lastRunSteps(page) {
  await page.waitForSelector(".run:last-child .step[data-type=agent_completed], " +
                             ".run:last-child .step[data-type=agent_error]");
  return page.$$eval(".run:last-child .step", (els) =>
    els.map((e) => ({ type: e.dataset.type, seq: Number(e.dataset.seq), text: e.textContent })));
}

test("a message shows its run's lifecycle steps in order and the answer 42", async () => {
  const server = await startServer();
  try {
    const token = newToken();
    const page = await signedIn(server, token);
    await ask(page, "what is 6*7?");
    const steps = await lastRunSteps(page);
    assert.deepEqual(steps.map((s) => s.type),
                     ["agent_started", "agent_thinking", "tool_executing", "tool_completed",
                      "agent_text", "agent_completed"]);
    assert.match(steps.at(-2).text, /6\*7 = 42/);
    assert.match(steps[0].text, /agent demo \(demo\)/); // which agent, of which kind
    // The tool call's input and output are there, collapsed.
    assert.match(steps[2].text, /calculator input/);
    assert.equal(await page.locator(".run:last-child .ask").textContent(), "what is 6*7?");
    // The new thread is listed and selected.
    assert.equal(await page.locator("#thread-list button[aria-current=true]").textContent(),
                 "what is 6*7?");
    await page.screenshot({ path: path.join(ARTIFACTS, "console-chat.png") });
    assert.deepEqual(page.jsErrors, []);
    // A new page of the same user shows the run from the server's replay buffer.
    const again = await signedIn(server, token);
    const history = await lastRunSteps(again);
    assert.deepEqual(history.map((s) => s.seq), steps.map((s) => s.seq));
    assert.equal(await again.isVisible("#notice"), false);
  } finally {
    await stopServer(server);
  }
});

test("two pages of the same user see the same run live", async () => {
  const server = await startServer(["--demo-step-ms=200"]);
  try {
    const token = newToken();
    const a = await signedIn(server, token);
    const b = await signedIn(server, token);
    await ask(a, "what is 2+2?");
    // b did not send it, yet shows it as it happens.
    await b.waitForSelector(".run .step[data-type=agent_started]");
    const stepsB = await b.$$eval(".run .step", (els) => els.length);
    assert.ok(stepsB < 5, "b saw the run before it ended");
    const seenB = await lastRunSteps(b);
    const seenA = await lastRunSteps(a);
    assert.deepEqual(seenB.map((s) => s.seq), seenA.map((s) => s.seq));
    assert.match(seenB.at(-2).text, /2\+2 = 4/);
    assert.equal(await b.locator(".run .ask").textContent(), "(sent from another tab or client)");
  } finally {
    await stopServer(server);
  }
});

test("a connection dropped mid-run reconnects, resumes and shows the rest once", async () => {
  const server = await startServer(["--demo-step-ms=600"]);
  try {
    const page = await signedIn(server, newToken());
    await ask(page, "what is 3*3?");
    await page.waitForSelector(".run .step[data-type=agent_thinking]");
    await page.evaluate(() => window.agentwireConsole.dropConnection());
    await page.waitForSelector("#status.reconnecting");
    await page.waitForSelector("#status.connected");
    const steps = await lastRunSteps(page);
    assert.deepEqual(steps.map((s) => s.type),
                     ["agent_started", "agent_thinking", "tool_executing", "tool_completed",
                      "agent_text", "agent_completed"]);
    const seqs = steps.map((s) => s.seq);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((x, y) => x - y), "no duplicates, in order");
    assert.match(steps.at(-2).text, /3\*3 = 9/);
  } finally {
    await stopServer(server);
  }
});

test("a streamed answer grows word by word in one answer step", async () => {
  const server = await startServer(["--demo-step-ms=250"]);
  try {
    const page = await signedIn(server, newToken());
    const words = "one two three four five six";
    await ask(page, words);
    // Part of the answer is on the page while the run is still going.
    const partial = await page.waitForFunction(() => {
      const s = document.querySelector(".run:last-child .step.streaming .body");
      return s && s.textContent.length > 0 && s.textContent.length < 27 ? s.textContent : null;
    });
    const seen = await partial.jsonValue();
    assert.ok("one two three four five six".startsWith(seen), `a prefix of the answer: "${seen}"`);
    const steps = await lastRunSteps(page);
    const text = steps.filter((s) => s.type === "agent_text");
    assert.equal(text.length, 1, "one answer step, however many pieces");
    assert.match(text[0].text, /one two three four five six$/);
    assert.equal(await page.locator(".run:last-child .step.streaming").count(), 0);
    assert.deepEqual(page.jsErrors, []);
  } finally {
    await stopServer(server);
  }
});

test("after a restart the past thread comes from the history, and deleting it works", async () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), "agentwire-console-history-"));
  const token = newToken();
  try {
    let server = await startServer(["--demo-step-ms=0", `--data-dir=${dataDir}`]);
    try {
      const page = await signedIn(server, token);
      await ask(page, "what is 6*7?");
      await lastRunSteps(page);
      await page.close();
    } finally {
      await stopServer(server);
    }
    // A new server process: nothing of the run is in memory any more.
    server = await startServer(["--demo-step-ms=0", `--data-dir=${dataDir}`]);
    try {
      const page = await signedIn(server, token);
      const title = page.locator("#thread-list li > button:first-child", { hasText: "what is 6*7?" });
      await title.waitFor();
      await title.click();
      const past = page.locator(".run.past");
      await past.waitFor();
      assert.equal(await past.locator(".ask").textContent(), "what is 6*7?");
      const steps = await past.locator(".step").evaluateAll((els) =>
        els.map((e) => ({ type: e.dataset.type, text: e.querySelector(".body").textContent })));
      assert.deepEqual(steps.map((s) => s.type), ["tool_executing", "tool_completed", "agent_text"]);
      assert.equal(steps[2].text, "6*7 = 42");
      await page.screenshot({ path: path.join(ARTIFACTS, "console-history.png") });
      // The conversation goes on in the same thread.
      await ask(page, "and 2+2?");
      const next = await lastRunSteps(page);
      assert.equal(next.at(-1).type, "agent_completed");
      // Deleting it removes it here and on the server.
      await page.click("#thread-list button.delete");
      await page.waitForFunction(() => document.querySelectorAll("#thread-list li").length === 0);
      assert.equal(await page.locator(".run:not([hidden])").count(), 0);
      const left = await page.evaluate(async (t) => {
        const r = await fetch("/v1/threads", { headers: { Authorization: "Bearer " + t } });
        return (await r.json()).threads.length;
      }, token);
      assert.equal(left, 0);
      assert.deepEqual(page.jsErrors, []);
    } finally {
      await stopServer(server);
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a page of an allowed origin runs an agent over the API in the browser, and one of a foreign origin cannot", async () => {
  const pageServer = await startServer(); // its pages are of the other origin
  const api = await startServer(["--demo-step-ms=0", `--allowed-origins=${pageServer.base}`]);
  try {
    const token = newToken();
    const page = await browser.newPage();
    // A page of that origin (not the console, whose own policy allows
    // connections to its server only).
    await page.goto(pageServer.base + "/healthz");
    // Authorization and a JSON body make the browser send a preflight first.
    const run = (base) => page.evaluate(async ({ base, token }) => {
      try {
        const r = await fetch(base + "/v1/runs", {
          method: "POST",
          headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
          body: JSON.stringify({ content: "what is 6*7?" }),
        });
        return { status: r.status, body: await r.text() };
      } catch (e) {
        return { error: String(e) };
      }
    }, { base, token });
    const allowed = await run(api.base);
    assert.equal(allowed.status, 200, JSON.stringify(allowed));
    assert.match(allowed.body, /"type":"agent_completed"/);
    assert.match(allowed.body, /6\*7 = 42/);
    // The page's server allows no other origin: the browser refuses the answer.
    const apiPage = await browser.newPage();
    await apiPage.goto(api.base + "/healthz");
    const refused = await apiPage.evaluate(async ({ base, token }) => {
      try {
        await fetch(base + "/v1/me", { headers: { Authorization: "Bearer " + token } });
        return "read";
      } catch (e) {
        return "refused";
      }
    }, { base: pageServer.base, token });
    assert.equal(refused, "refused");
    await apiPage.close();
    await page.close();
  } finally {
    await Promise.all([stopServer(pageServer), stopServer(api)]);
  }
});

// The official AG-UI client (@ag-ui/client, pinned in package-lock.json)
// bundled for the browser, as a front end would ship it: window.AGUI.
async function aguiBundle() {
  const out = await build({
    stdin: { contents: 'export { HttpAgent } from "@ag-ui/client";', resolveDir: "." },
    bundle: true, format: "iife", globalName: "AGUI", platform: "browser", write: false,
    logLevel: "warning",
  });
  return out.outputFiles[0].text;
}

test("the official AG-UI client in a page of another origin runs an agent on /agui, and only when that origin is allowed", async () => {
  const pageServer = await startServer(); // its pages are of the other origin
  const api = await startServer(["--demo-step-ms=0", `--allowed-origins=${pageServer.base}`]);
  try {
    const bundle = await aguiBundle();
    const token = newToken();
    const runFrom = async (pageBase, apiBase) => {
      const page = await browser.newPage();
      await page.goto(pageBase + "/healthz");
      await page.addScriptTag({ content: bundle });
      const result = await page.evaluate(async ({ base, token }) => {
        const agent = new window.AGUI.HttpAgent({ url: base + "/agui",
                                                  headers: { Authorization: "Bearer " + token } });
        agent.addMessage({ id: "u-1", role: "user", content: "what is 6*7?" });
        const types = [];
        try {
          const { newMessages } = await agent.runAgent({}, {
            onEvent: ({ event }) => { types.push(event.type); },
          });
          return { types, answer: newMessages.filter((m) => m.role === "assistant")
                                               .map((m) => m.content).join("") };
        } catch (e) {
          return { types, error: String(e) };
        }
      }, { base: apiBase, token });
      await page.close();
      return result;
    };
    // Authorization and a JSON body: the browser sends a preflight first.
    const allowed = await runFrom(pageServer.base, api.base);
    assert.equal(allowed.error, undefined, JSON.stringify(allowed));
    assert.equal(allowed.types[0], "RUN_STARTED");
    assert.equal(allowed.types.at(-1), "RUN_FINISHED");
    assert.ok(allowed.types.includes("TOOL_CALL_START"), allowed.types.join(","));
    assert.match(allowed.answer, /42/);
    // The page server allows no other origin: the client fails, and says so.
    const refused = await runFrom(api.base, pageServer.base);
    assert.ok(refused.error, JSON.stringify(refused));
    assert.deepEqual(refused.types, []);
  } finally {
    await Promise.all([stopServer(pageServer), stopServer(api)]);
  }
});

test("an invalid token gets a clear sign-in error", async () => {
  const server = await startServer();
  try {
    const page = await browser.newPage();
    await page.goto(server.base + "/");
    await page.fill("#token", "not-a-token");
    await page.click("#sign-in-form button[type=submit]");
    await page.waitForSelector("#sign-in-error:not(:empty)");
    assert.match(await page.textContent("#sign-in-error"), /invalid or expired/);
    assert.equal(await page.isVisible("#app"), false);
  } finally {
    await stopServer(server);
  }
});

test("the console asks for a new token before expiry and stays connected with it", async () => {
  const server = await startServer(["--jwt-leeway=0s", "--demo-step-ms=0"]);
  try {
    const first = newToken({ ttl: "6s" });
    const user = userOf(first);
    const expiresAt = Date.now() + 6000;
    const page = await signedIn(server, first);
    // Under 60 s left: the server warns at once and the console asks.
    await page.waitForSelector("#refresh-form:not([hidden])");
    assert.match(await page.textContent("#refresh-text"), new RegExp(`expires at .*for ${user}`));
    // Another user's token is refused, and said so.
    await page.fill("#refresh-token", newToken());
    await page.click("#refresh-form button[type=submit]");
    await page.waitForSelector("#refresh-error:not(:empty)");
    assert.match(await page.textContent("#refresh-error"), /refused/);
    // The same user's new token keeps the connection.
    await page.fill("#refresh-token", newToken({ user }));
    await page.click("#refresh-form button[type=submit]");
    await page.waitForSelector("#refresh-form", { state: "hidden" });
    assert.match(await page.textContent("#notice"), /Token renewed/);
    await new Promise((r) => setTimeout(r, Math.max(0, expiresAt + 2500 - Date.now())));
    assert.equal(await page.getAttribute("#status", "class"), "status connected");
    await ask(page, "what is 6*7?");
    const steps = await lastRunSteps(page);
    assert.equal(steps.at(-1).type, "agent_completed");
    assert.deepEqual(page.jsErrors, []);
  } finally {
    await stopServer(server);
  }
});

test("without a new token the console says the token expired and offers sign-in again", async () => {
  const server = await startServer(["--jwt-leeway=0s"]);
  try {
    const page = await signedIn(server, newToken({ ttl: "3s" }));
    await page.waitForSelector("#refresh-form:not([hidden])");
    await page.waitForSelector("#sign-in-error:not(:empty)", { timeout: 10000 });
    assert.match(await page.textContent("#sign-in-error"), /token expired/);
    assert.equal(await page.isVisible("#app"), false);
    assert.equal(await page.isVisible("#sign-in"), true);
    assert.deepEqual(page.jsErrors, []);
  } finally {
    await stopServer(server);
  }
});

test("the actor panel shows the live tree with the admin token, on a phone-width screen too", async () => {
  const server = await startServer(["--demo-step-ms=1500"]);
  try {
    const token = newToken();
    const user = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).sub;
    const page = await signedIn(server, token, { admin: ADMIN });
    await ask(page, "what is 5*5?");
    await page.click("#actors-toggle");
    await page.waitForSelector(`#actor-tree :text("user ${user}")`);
    await page.waitForSelector("#actor-tree :text('run ')");
    assert.match(await page.textContent("#actor-tree"), /run \S+ demo \(demo\)/);
    await page.screenshot({ path: path.join(ARTIFACTS, "console-actors.png") });
    const phone = await signedIn(server, token, { admin: ADMIN, width: 390 });
    await phone.click("#actors-toggle");
    await phone.waitForSelector(`#actor-tree :text("user ${user}")`);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > 400);
    assert.equal(overflow, false, "no horizontal scrolling at phone width");
    // The dev-token offer exists only in dev mode; this server has a secret.
    assert.equal(await page.isVisible("#use-dev-token"), false);
  } finally {
    await stopServer(server);
  }
});

test("the actor panel shows a process agent's pid and state while it runs", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "agentwire-agents-"));
  const file = path.join(dir, "agents.json");
  const stub = path.resolve(process.env.PROCESS_AGENT_STUB);
  writeFileSync(file, JSON.stringify({
    agents: { stub: { kind: "process", command: ["/usr/bin/python3", stub, "console-e2e"] } },
  }));
  const server = await startServer([`--agents-file=${file}`]);
  try {
    const page = await signedIn(server, newToken(), { admin: ADMIN });
    await ask(page, "hang");
    await page.waitForSelector(".run:last-child .step[data-type=agent_started]");
    assert.match(await page.textContent(".run:last-child .step[data-type=agent_started]"),
                 /agent stub \(process\)/);
    await page.click("#actors-toggle");
    await page.waitForSelector("#actor-tree :text('process ')");
    assert.match(await page.textContent("#actor-tree"),
                 /run \S+ stub \(process\): running, step agent_started, process \d+ running/);
    assert.deepEqual(page.jsErrors, []);
  } finally {
    await stopServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the admin panel shows the routes, changes a canary share and shows a rollback", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "agentwire-routes-"));
  const file = path.join(dir, "agents.json");
  writeFileSync(file, JSON.stringify({
    default_agent: "assistant",
    agents: { current: { kind: "demo" }, next: { kind: "demo" }, broken: { kind: "fault", fail: "always" } },
    routes: {
      assistant: { stable: "current", canary: "next", canary_percent: 10 },
      risky: { stable: "current", canary: "broken", canary_percent: 100,
               rollback: { min_success_rate: 0.9, min_runs: 3, window: "5m" } },
    },
  }));
  const server = await startServer([`--agents-file=${file}`, "--demo-step-ms=0"]);
  try {
    // Runs on both routes, over HTTP, from users of their own.
    for (let i = 0; i < 6; i++) {
      const token = newToken();
      for (const agent of ["assistant", "risky"]) {
        const r = await fetch(server.base + "/v1/runs", {
          method: "POST",
          headers: { Authorization: "Bearer " + token },
          body: JSON.stringify({ content: "what is 1+1?", agent }),
        });
        await r.text();
      }
    }
    const page = await signedIn(server, newToken(), { admin: ADMIN });
    await page.click("#actors-toggle");
    await page.waitForSelector("#routes:not([hidden]) .route[data-route=assistant]");
    const risky = page.locator(".route[data-route=risky]");
    await risky.locator(".rolled-back:not([hidden])").waitFor();
    assert.match(await risky.locator(".rolled-back").textContent(),
                 /Rolled back .*canary broken succeeded 0\.0% of 3 runs/);
    const assistant = page.locator(".route[data-route=assistant]");
    assert.match(await assistant.locator("p").first().textContent(), /canary next at 10%/);
    await assistant.locator("input").fill("25");
    await assistant.locator("button").click();
    await page.waitForFunction(() =>
      document.querySelector(".route[data-route=assistant] p").textContent.includes("at 25% (changed live)"));
    const state = await (await fetch(server.base + "/admin/routes",
                                     { headers: { Authorization: "Bearer " + ADMIN } })).json();
    assert.equal(state.routes.find((r) => r.name === "assistant").canary_percent, 25);
    await page.screenshot({ path: path.join(ARTIFACTS, "console-routes.png") });
    assert.deepEqual(page.jsErrors, []);
  } finally {
    await stopServer(server);
    rmSync(dir, { recursive: true, force: true });
  }
});
