// The web console's routes panel (with the admin token): each route's two
// sides, its canary share with a control to change it, and a rollback when
// one happens. Loaded after app.js, whose `$` and `state` it uses.

// Each route once, keyed by name: its share form survives the refreshes.
const routeViews = new Map();

async function refreshRoutes() {
  const box = $("routes");
  let r;
  try {
    r = await fetch("/admin/routes", { headers: { Authorization: "Bearer " + state.adminToken } });
  } catch (e) {
    return;
  }
  if (!r.ok) {
    box.hidden = true;
    return;
  }
  const { routes } = await r.json();
  box.hidden = routes.length === 0;
  for (const route of routes) {
    let view = routeViews.get(route.name);
    if (!view) {
      view = routeView(route.name);
      routeViews.set(route.name, view);
      $("route-list").appendChild(view.root);
    }
    showRoute(view, route);
  }
}

function routeView(name) {
  const root = document.createElement("div");
  root.className = "route";
  root.dataset.route = name;
  const title = document.createElement("p");
  const table = document.createElement("table");
  const rolled = document.createElement("p");
  rolled.className = "rolled-back";
  const form = document.createElement("form");
  form.className = "route-share";
  const label = document.createElement("label");
  label.textContent = "canary %";
  const input = document.createElement("input");
  input.type = "number";
  input.min = "0";
  input.max = "100";
  input.step = "any";
  input.setAttribute("aria-label", "canary share of " + name);
  label.appendChild(input);
  const set = document.createElement("button");
  set.type = "submit";
  set.textContent = "Set";
  const said = document.createElement("small");
  form.append(label, set, said);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const r = await fetch("/admin/routes/" + encodeURIComponent(name), {
      method: "PUT",
      headers: { Authorization: "Bearer " + state.adminToken, "Content-Type": "application/json" },
      body: JSON.stringify({ canary_percent: Number(input.value) }),
    });
    const answer = await r.json();
    said.textContent = r.ok ? "set" : answer.error.message;
    input.dataset.dirty = "";
    refreshRoutes();
  });
  input.addEventListener("input", () => (input.dataset.dirty = "1"));
  root.append(title, table, rolled, form);
  return { root, title, table, rolled, input };
}

function showRoute(view, route) {
  view.title.textContent = route.name + ": " + route.stable + " / canary " + route.canary +
    " at " + route.canary_percent + "%" +
    (route.canary_users.length ? " + " + route.canary_users.length + " users" : "") +
    (route.changed_by_api ? " (changed live)" : "");
  view.table.textContent = "";
  const head = view.table.insertRow();
  for (const h of ["side", "agent", "runs", "success", "p95"]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.appendChild(th);
  }
  for (const side of ["stable", "canary"]) {
    const s = route.sides[side];
    const row = view.table.insertRow();
    for (const v of [side, s.agent, s.runs, (s.success_rate * 100).toFixed(1) + "%",
                     s.p95_ms + " ms"])
      row.insertCell().textContent = String(v);
  }
  const rb = route.rolled_back;
  view.rolled.hidden = !rb;
  if (rb)
    view.rolled.textContent = "Rolled back " + new Date(rb.at).toLocaleTimeString() +
      ": canary " + rb.canary + " succeeded " + (rb.success_rate * 100).toFixed(1) + "% of " +
      rb.runs + " runs";
  if (!view.input.dataset.dirty && document.activeElement !== view.input)
    view.input.value = String(route.canary_percent);
}
