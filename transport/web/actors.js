// The web console's actor panel (with the admin token): the directory, and
// per user the emitter, the connections and the runs, refreshed each second
// while the panel is open, together with the routes panel (routes.js).
// Loaded after app.js, whose `$` and `state` it uses.

function toggleActors() {
  const panel = $("actors");
  panel.hidden = !panel.hidden;
  $("actors-toggle").setAttribute("aria-expanded", String(!panel.hidden));
  clearInterval(state.actorsTimer);
  if (!panel.hidden) {
    const refresh = () => {
      refreshActors();
      refreshRoutes();
    };
    refresh();
    state.actorsTimer = setInterval(refresh, 1000);
  }
}

async function refreshActors() {
  const tree = $("actor-tree");
  let r;
  try {
    r = await fetch("/admin/actors", { headers: { Authorization: "Bearer " + state.adminToken } });
  } catch (e) {
    tree.textContent = "The server is not reachable.";
    return;
  }
  if (r.status === 401) {
    tree.textContent = "The admin token was refused.";
    return;
  }
  const snap = await r.json();
  $("actors-age").textContent = new Date().toLocaleTimeString();
  tree.textContent = "";
  const dir = document.createElement("p");
  dir.textContent = "directory: " + snap.directory.users + " users, " +
                    snap.directory.connections + " connections";
  tree.appendChild(dir);
  for (const u of snap.users) {
    const div = document.createElement("div");
    div.className = "actor-user";
    if (u.unresponsive) {
      div.textContent = "a session did not answer in time";
      tree.appendChild(div);
      continue;
    }
    const title = document.createElement("strong");
    title.textContent = "user " + u.user;
    const ul = document.createElement("ul");
    const item = (text) => {
      const li = document.createElement("li");
      li.textContent = text;
      ul.appendChild(li);
    };
    // In a cluster: how many of the subscribers are sockets on other nodes.
    const remote = Object.entries(u.emitter.remote_subscribers || {})
      .map(([node, n]) => node + " " + n).join(", ");
    item("emitter: last seq " + u.emitter.last_seq + ", replay " + u.emitter.replay.events +
         "/" + u.emitter.replay.capacity + ", " + u.emitter.subscribers + " subscribers" +
         (remote ? " (on " + remote + ")" : ""));
    for (const c of u.connections)
      item("connection " + c.id + " (" + c.transport + ", " + c.state + ", out " + c.frames_out +
           (c.node ? ", on " + c.node : "") + ")");
    for (const run of u.runs) {
      const d = run.agent_detail || {};
      item("run " + run.run_id + " " + run.agent + " (" + run.agent_kind + "): " + run.state +
           ", step " + run.current_step +
           (d.pid ? ", process " + d.pid + " " + d.state : d.state ? ", " + d.state : ""));
    }
    div.append(title, ul);
    tree.appendChild(div);
  }
}

$("actors-toggle").onclick = toggleActors;
