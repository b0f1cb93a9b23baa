// Starts and stops the real agentwire server for the Node end-to-end tests
// (agui/, console/): AGENTWIRE_BIN on an ephemeral port, with `env`, its
// history in a directory of its own that goes with it.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function startServer(env, args = []) {
  // A --data-dir in `args` is the test's to keep (a restart reuses it).
  const own = !args.some((a) => a.startsWith("--data-dir"));
  const dataDir = own ? mkdtempSync(join(tmpdir(), "agentwire-e2e-")) : null;
  const child = spawn(process.env.AGENTWIRE_BIN,
                      ["serve", "--host=127.0.0.1", "--port=0", "--log-level=warn",
                       ...(own ? [`--data-dir=${dataDir}`] : []), ...args],
                      { env, stdio: ["ignore", "pipe", "inherit"] });
  if (own) child.on("exit", () => rmSync(dataDir, { recursive: true, force: true }));
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("server did not start: " + out)), 10000);
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const m = out.match(/listening on http:\/\/([\d.]+):(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ base: `http://${m[1]}:${m[2]}`, child });
      }
    });
    child.on("exit", (code) => reject(new Error(`server exited early (${code}): ${out}`)));
  });
}

export function stopServer(server) {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve();
    server.child.on("exit", resolve);
    server.child.kill("SIGTERM");
  });
}
