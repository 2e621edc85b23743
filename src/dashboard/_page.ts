/**
 * The dashboard's page: HTML, CSS and a script, shipped as strings so the
 * package carries them and works offline (no CDN). The script builds every
 * node with `textContent` and `createElement`, never from HTML text, so a
 * job id such as `<img src=x onerror=alert(1)>` shows as the text it is;
 * the server's Content-Security-Policy allows only these two files anyway.
 *
 * @module
 */

/** The page: semantic sections the script fills. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>taskpool dashboard</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>taskpool <span id="queue-name"></span></h1>
  <nav aria-label="Queues"><ul id="queues"></ul></nav>
  <p id="status" role="status" aria-live="polite">connecting…</p>
</header>
<main>
  <section aria-labelledby="h-counts">
    <h2 id="h-counts">Jobs by state</h2>
    <dl id="counts"></dl>
  </section>
  <section aria-labelledby="h-chart">
    <h2 id="h-chart">Outcomes per second, last 15 minutes</h2>
    <figure>
      <svg id="chart" viewBox="0 0 900 160" role="img" aria-labelledby="chart-text"></svg>
      <figcaption id="chart-text"></figcaption>
    </figure>
  </section>
  <section aria-labelledby="h-consumers">
    <h2 id="h-consumers">Consumers</h2>
    <table>
      <thead><tr><th scope="col">Id</th><th scope="col">Host</th><th scope="col">State</th><th scope="col">Last heartbeat</th><th scope="col">Held</th><th scope="col">Runs/s</th></tr></thead>
      <tbody id="consumers"></tbody>
    </table>
  </section>
  <section aria-labelledby="h-groups">
    <h2 id="h-groups">Groups</h2>
    <table>
      <thead><tr><th scope="col">Group</th><th scope="col">Limits</th><th scope="col">Waiting (held back)</th><th scope="col">Let in</th><th scope="col">Started this window</th></tr></thead>
      <tbody id="groups"></tbody>
    </table>
  </section>
  <section aria-labelledby="h-running">
    <h2 id="h-running">Running (reported: with progress, or over a second)</h2>
    <table>
      <thead><tr><th scope="col">Job</th><th scope="col">Consumer</th><th scope="col">Attempt</th><th scope="col">Running for</th><th scope="col">Progress</th></tr></thead>
      <tbody id="running"></tbody>
    </table>
  </section>
  <section aria-labelledby="h-outcomes">
    <h2 id="h-outcomes">Latest outcomes</h2>
    <label><input type="checkbox" id="failed-only"> Failed only</label>
    <table>
      <thead><tr><th scope="col">When</th><th scope="col">Job</th><th scope="col">Status</th><th scope="col">Took</th><th scope="col">Details</th></tr></thead>
      <tbody id="outcomes"></tbody>
    </table>
  </section>
  <section aria-labelledby="h-dead">
    <h2 id="h-dead">Dead jobs <span id="dead-total"></span></h2>
    <p class="actions"><button type="button" id="retry-all">Retry all</button> <button type="button" id="delete-all">Delete all</button></p>
    <table>
      <thead><tr><th scope="col">Job</th><th scope="col">Error</th><th scope="col">Attempts</th><th scope="col">Died</th><th scope="col">Actions</th></tr></thead>
      <tbody id="dead"></tbody>
    </table>
  </section>
</main>
<dialog id="detail" aria-labelledby="detail-title">
  <h2 id="detail-title">Outcome</h2>
  <dl id="detail-fields"></dl>
  <form method="dialog"><button type="submit">Close</button></form>
</dialog>
</body>
</html>
`;

/** The style: a light and a dark scheme by `prefers-color-scheme`; states carry words, not only colours. */
export const APP_CSS = `:root {
  --bg: #ffffff; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --panel: #f6f8fa;
  --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --accent: #0969da;
  font-family: system-ui, sans-serif; background: var(--bg); color: var(--fg);
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #30363d; --panel: #161b22;
    --ok: #3fb950; --bad: #f85149; --warn: #d29922; --accent: #4493f8;
  }
}
body { margin: 0 auto; max-width: 72rem; padding: 1rem; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 1rem; }
h1 { font-size: 1.4rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
nav ul { display: flex; gap: 0.5rem; list-style: none; margin: 0; padding: 0; }
nav a { color: var(--accent); }
nav a[aria-current="page"] { font-weight: bold; color: var(--fg); }
#status { color: var(--muted); margin: 0; }
dl#counts { display: grid; grid-template-columns: repeat(auto-fill, minmax(8rem, 1fr)); gap: 0.5rem; margin: 0; }
dl#counts div { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem; }
dl#counts dt { color: var(--muted); font-size: 0.85rem; }
dl#counts dd { margin: 0; font-size: 1.5rem; font-variant-numeric: tabular-nums; }
figure { margin: 0; }
svg { width: 100%; height: auto; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
svg .succeeded { stroke: var(--ok); fill: none; stroke-width: 1.5; }
svg .failed { stroke: var(--bad); fill: none; stroke-width: 1.5; stroke-dasharray: 6 3; }
svg .skipped { stroke: var(--warn); fill: none; stroke-width: 1.5; stroke-dasharray: 2 2; }
svg .cancelled { stroke: var(--muted); fill: none; stroke-width: 1.5; stroke-dasharray: 8 3 2 3; }
svg text { fill: var(--muted); font-size: 11px; }
figcaption { color: var(--muted); font-size: 0.85rem; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
td.error { max-width: 30rem; overflow-wrap: anywhere; }
.status-succeeded { color: var(--ok); }
.status-failed, .state-dead { color: var(--bad); font-weight: bold; }
.status-skipped { color: var(--warn); }
button { font: inherit; padding: 0.2rem 0.6rem; border: 1px solid var(--line); border-radius: 6px; background: var(--panel); color: var(--fg); cursor: pointer; }
button:focus-visible, a:focus-visible, input:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
dialog { max-width: 50rem; width: 90%; background: var(--bg); color: var(--fg); border: 1px solid var(--line); border-radius: 8px; }
dialog dt { font-weight: bold; margin-top: 0.5rem; }
dialog dd { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font-family: ui-monospace, monospace; font-size: 0.85rem; }
.empty { color: var(--muted); }
`;

/**
 * The script: reads `/api/events` (Server-Sent Events) and redraws the
 * sections from each snapshot; actions POST to `/api/dead/*` with the
 * records' refs only.
 */
export const APP_JS = `"use strict";
const params = new URLSearchParams(location.search);
let queue = params.get("queue");
let latest = null;
let failedOnly = false;

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}
function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    if (cell instanceof Node) td.append(cell); else td.textContent = cell === undefined ? "" : String(cell);
    tr.append(td);
  }
  return tr;
}
function fill(id, rows, columns, empty) {
  const body = document.getElementById(id);
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    tr.append(el("td", empty, { colspan: String(columns), class: "empty" }));
    body.append(tr);
  }
}
function ago(ms) {
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + " s";
  if (ms < 3600000) return Math.floor(ms / 60000) + " min " + Math.floor(ms % 60000 / 1000) + " s";
  return (ms / 3600000).toFixed(1) + " h";
}
function showProgress(value) {
  if (typeof value === "number") {
    const wrap = el("span");
    wrap.append(el("progress", null, { max: "1", value: String(value) }), " " + Math.round(value * 100) + "%");
    return wrap;
  }
  return value === undefined ? "" : JSON.stringify(value);
}
function jobName(id, batch) { return batch ? id + " (" + batch.slice(0, 8) + ")" : id; }

function drawCounts(counts) {
  const dl = document.getElementById("counts");
  dl.replaceChildren(...Object.entries(counts).map(([state, n]) => {
    const div = el("div", null, { "data-state": state });
    div.append(el("dt", state), el("dd", n));
    return div;
  }));
}
function drawChart(series) {
  const svg = document.getElementById("chart");
  const ns = "http://www.w3.org/2000/svg";
  const names = ["succeeded", "failed", "skipped", "cancelled"];
  const top = Math.max(1, ...names.flatMap((name) => series[name]));
  const shapes = [];
  for (const name of names) {
    const points = series[name].map((v, i) => i + "," + (150 - v / top * 140).toFixed(1)).join(" ");
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points);
    line.setAttribute("class", name);
    shapes.push(line);
  }
  const label = document.createElementNS(ns, "text");
  label.setAttribute("x", "4");
  label.setAttribute("y", "14");
  label.textContent = "max " + top + "/s";
  shapes.push(label);
  for (const [x, text, anchor] of [[4, "15 min ago", "start"], [896, "now", "end"]]) {
    const tick = document.createElementNS(ns, "text");
    tick.setAttribute("x", String(x));
    tick.setAttribute("y", "158");
    tick.setAttribute("text-anchor", anchor);
    tick.textContent = text;
    shapes.push(tick);
  }
  svg.replaceChildren(...shapes);
  const sum = (list) => list.reduce((a, b) => a + b, 0);
  const last = (list) => sum(list.slice(-60)) / 60;
  document.getElementById("chart-text").textContent =
    "Over the last minute, per second: solid, succeeded " + last(series.succeeded).toFixed(1) +
    "; dashed, failed " + last(series.failed).toFixed(1) + "; dotted, skipped " + last(series.skipped).toFixed(1) +
    "; dash-dot, cancelled " + last(series.cancelled).toFixed(1) + ". Counted since this dashboard started.";
}
function drawConsumers(consumers) {
  fill("consumers", consumers.map((c) => {
    const state = el("span", c.alive ? "alive" : "dead (jobs wait for recovery)", { class: c.alive ? "state-alive" : "state-dead" });
    return row([c.id, c.host || "", state, c.lastBeat === undefined ? "—" : ago(c.lastBeat) + " ago", c.held, c.rate]);
  }), 6, "No consumer.");
}
function windowText(ms) {
  for (const [unit, size] of [["h", 3600000], ["m", 60000], ["s", 1000]]) {
    if (ms % size === 0) return ms / size + unit;
  }
  return ms + "ms";
}
function drawGroups(groups) {
  fill("groups", (groups || []).map((g) => {
    const limits = [
      g.limits.concurrency === undefined ? "" : "concurrency " + g.limits.concurrency,
      g.limits.rate === undefined ? "" : "rate " + g.limits.rate.limit + "/" + windowText(g.limits.rate.window),
    ].filter((part) => part !== "").join(", ") || "no limits";
    return row([g.name, limits, g.waiting, g.running, g.started === undefined ? "—" : g.started]);
  }), 5, "No group.");
}
function drawRunning(running, now) {
  fill("running", running.map((job) => row([jobName(job.id, job.batch), job.orphaned ? job.consumer + " (dead: waits for recovery)" : job.consumer, job.attempt, ago(now - job.started), showProgress(job.progress)])), 5, "Nothing reported running.");
}
function drawOutcomes(outcomes) {
  fill("outcomes", outcomes.map((o) => {
    const button = el("button", "Details", { type: "button", "aria-label": "Details of " + o.id });
    button.addEventListener("click", () => openDetail(o.record));
    const status = el("span", o.status, { class: "status-" + o.status });
    const when = new Date(Number(o.record.split("-")[0])).toLocaleTimeString();
    return row([when, jobName(o.id, o.batch), status, o.duration === undefined ? "" : ago(o.duration), button]);
  }), 5, failedOnly ? "No failed outcome." : "No outcome yet.");
}
function drawDead(dead) {
  document.getElementById("dead-total").textContent = "(" + dead.total + ")";
  fill("dead", dead.records.map((d) => {
    const actions = el("span");
    const retry = el("button", "Retry", { type: "button", "aria-label": "Retry " + (d.id || "entry"), "data-ref": d.ref });
    retry.addEventListener("click", () => act("retry", { refs: [d.ref] }));
    const del = el("button", "Delete", { type: "button", "aria-label": "Delete " + (d.id || "entry"), "data-ref": d.ref });
    del.addEventListener("click", () => act("delete", { refs: [d.ref] }));
    actions.append(retry, " ", del);
    const error = el("td", d.error, { class: "error" });
    const tr = row([jobName(d.id || d.entry.slice(0, 60), d.batch)]);
    tr.append(error);
    for (const cell of [d.attempts, d.at, actions]) {
      const td = document.createElement("td");
      if (cell instanceof Node) td.append(cell); else td.textContent = String(cell);
      tr.append(td);
    }
    return tr;
  }), 5, "No dead job.");
}
async function getJson(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}
async function act(kind, body) {
  const status = document.getElementById("status");
  try {
    const response = await fetch("/api/dead/" + kind + "?queue=" + encodeURIComponent(queue), {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const reply = await response.json();
    if (!response.ok) throw new Error(reply.error || response.statusText);
    const done = reply.actions.filter((a) => a.status === "done").length;
    const other = reply.actions.filter((a) => a.status !== "done").map((a) => a.status);
    status.textContent = kind + ": " + done + " done" + (other.length ? "; not done: " + other.join(", ") : "");
  } catch (error) {
    status.textContent = kind + " failed: " + error.message;
  }
}
async function openDetail(record) {
  const dialog = document.getElementById("detail");
  const fields = document.getElementById("detail-fields");
  fields.replaceChildren(el("dt", "Loading"));
  dialog.showModal();
  try {
    const { outcome, dead } = await getJson("/api/outcome?queue=" + encodeURIComponent(queue) + "&record=" + encodeURIComponent(record));
    const items = [["Job", outcome.id], ["Batch", outcome.batch], ["Status", outcome.status], ["Attempts", outcome.attempts],
      ["Consumer", outcome.consumer], ["Took", outcome.duration === undefined ? undefined : ago(outcome.duration)],
      ["Error", outcome.error], ["Exit code", outcome.exitCode], ["Output (tail)", outcome.output],
      ["Result", outcome.result === undefined ? undefined : JSON.stringify(outcome.result, null, 2)],
      ["Entry", dead ? dead.entry : undefined]];
    fields.replaceChildren(...items.filter(([, v]) => v !== undefined && v !== "").flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
  } catch (error) {
    fields.replaceChildren(el("dt", "Error"), el("dd", error.message));
  }
}
async function refreshOutcomes() {
  if (!failedOnly) { if (latest) drawOutcomes(latest.outcomes); return; }
  try {
    drawOutcomes(await getJson("/api/outcomes?failed=1&queue=" + encodeURIComponent(queue)));
  } catch (error) {
    document.getElementById("status").textContent = "outcomes: " + error.message;
  }
}
function draw(snapshot) {
  latest = snapshot;
  drawCounts(snapshot.counts);
  drawChart(snapshot.throughput);
  drawConsumers(snapshot.consumers);
  drawGroups(snapshot.groups);
  drawRunning(snapshot.running, snapshot.at);
  if (!failedOnly) drawOutcomes(snapshot.outcomes);
  drawDead(snapshot.dead);
  document.getElementById("status").textContent = "live, read " + new Date(snapshot.at).toLocaleTimeString();
  document.body.dataset.updated = String(snapshot.at);
}
async function start() {
  const queues = await getJson("/api/queues");
  if (!queue || !queues.includes(queue)) queue = queues[0];
  document.getElementById("queue-name").textContent = queue;
  document.title = "taskpool: " + queue;
  document.getElementById("queues").replaceChildren(...queues.map((name) => {
    const li = el("li");
    const a = el("a", name, { href: "?queue=" + encodeURIComponent(name) });
    if (name === queue) a.setAttribute("aria-current", "page");
    li.append(a);
    return li;
  }));
  document.getElementById("failed-only").addEventListener("change", (event) => {
    failedOnly = event.target.checked;
    refreshOutcomes();
  });
  document.getElementById("retry-all").addEventListener("click", () => {
    if (confirm("Send every dead job back to the queue?")) act("retry", { all: true });
  });
  document.getElementById("delete-all").addEventListener("click", () => {
    if (confirm("Delete every dead job?")) act("delete", { all: true });
  });
  const source = new EventSource("/api/events?queue=" + encodeURIComponent(queue));
  source.addEventListener("snapshot", (event) => {
    draw(JSON.parse(event.data));
    if (failedOnly) refreshOutcomes();
  });
  source.addEventListener("problem", (event) => {
    const problem = JSON.parse(event.data);
    document.getElementById("status").textContent = problem.error +
      (problem.since ? "; showing what was read at " + new Date(problem.since).toLocaleTimeString() : "");
  });
  source.addEventListener("error", () => {
    document.getElementById("status").textContent = "disconnected; reconnecting…";
  });
}
start().catch((error) => { document.getElementById("status").textContent = "cannot start: " + error.message; });
`;
