// The orbit explorer: one page over the daemon's HTTP API (see /openapi.json). No framework, nothing
// from elsewhere; every value from a database is put into the page as text, never as HTML.
"use strict";

const API = "/api/v1";
const LIMIT = 200;
const state = { token: null, selected: null, info: null, dbs: [], me: null, fresh: new Set() };

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function short(text, head = 4, tail = 7) {
  text = String(text);
  return text.length <= head + tail + 2 ? text : text.slice(0, head) + "…" + text.slice(-tail);
}

function shortDid(did) { return short(String(did).replace("did:key:", ""), 4, 4); }

function json(value) { return JSON.stringify(value); }

function summary(payload) {
  if (payload && typeof payload === "object" && !Array.isArray(payload)) {
    const op = payload.op;
    if (op === "ADD") return "ADD " + json(payload.value);
    if (op === "PUT" && "key" in payload) return "PUT " + payload.key + " = " + json(payload.value);
    if (op === "DEL") return "DEL " + payload.key;
    if (op === "INC") return "INC " + (payload.value >= 0 ? "+" : "") + payload.value;
    if (op === "PUTALL") return "PUTALL " + (payload.docs || []).length + " documents";
  }
  return json(payload);
}

function showError(message) { $("error").textContent = message || ""; }

async function api(path, options = {}) {
  const headers = { Authorization: "Bearer " + state.token };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    cache: "no-store",
  });
  const data = await response.json().catch(() => ({ error: "not JSON", status: response.status }));
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  return data;
}

// ------------------------------------------------------------------------------------------- databases

function renderDbs() {
  const box = $("dbs");
  box.replaceChildren();
  for (const db of state.dbs) {
    const button = el("button", { type: "button", "data-name": db.name },
      el("span", { class: "count" }, db.entries === null ? "" : db.entries), db.name, el("br"),
      el("span", { class: "type" }, db.type));
    if (state.selected === db.name) button.classList.add("selected");
    button.addEventListener("click", () => select(db.name));
    box.append(button);
  }
  if (!state.dbs.length) box.append(el("p", { class: "dim" }, "No databases yet: `orbit create NAME --type T`."));
}

async function loadDbs() {
  state.dbs = (await api("/dbs")).databases;
  renderDbs();
}

async function select(name) {
  state.selected = name;
  state.fresh.clear();
  renderDbs();
  $("none").classList.add("hidden");
  $("db").classList.remove("hidden");
  $("sql-result").replaceChildren();
  await refresh();
}

async function refresh() {
  const name = state.selected;
  if (!name) return;
  try {
    const [info, entries, values, status] = await Promise.all([
      api("/dbs/" + encodeURIComponent(name)),
      api("/dbs/" + encodeURIComponent(name) + "/entries?limit=" + LIMIT),
      api("/dbs/" + encodeURIComponent(name) + "/values?limit=" + LIMIT),
      api("/dbs/" + encodeURIComponent(name) + "/status"),
    ]);
    if (name !== state.selected) return;
    state.info = info;
    renderInfo(info);
    renderEntries(entries.entries);
    renderDag(entries.entries, info.entries);
    renderState(info, values);
    renderReplication(status);
    $("sql").classList.toggle("hidden", info.type !== "table");
    showError("");
  } catch (e) {
    showError(String(e.message || e));
  }
}

function renderInfo(info) {
  $("db-title").textContent = info.name + " (" + info.type + ")";
  const dl = $("info");
  dl.replaceChildren();
  const rows = [
    ["address", info.address],
    ["writers", info.writers.map((w) => w === state.me ? w + " (you)" : w).join(", ") || "anyone"],
    ["entries", info.entries],
    ["heads", info.heads.join(", ") || "none"],
  ];
  if (info.schema) rows.push(["schema", info.schema.join("; ")]);
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", { class: "mono" }, v));
}

function renderEntries(entries) {
  const body = $("entries").querySelector("tbody");
  body.replaceChildren();
  for (const e of entries) {
    const row = el("tr", { "data-cid": e.cid },
      el("td", { class: "mono", title: e.cid }, short(e.cid)),
      el("td", { class: "mono" }, e.time),
      el("td", { class: "mono", title: e.writer }, shortDid(e.writer) + (e.mine ? " (you)" : "")),
      el("td", { class: "mono" }, summary(e.payload)),
      el("td", { class: e.verified ? "ok" : "bad", title: "hash, signature, clock and write access checked" },
        e.verified ? "✓ verified" : "✗"));
    if (state.fresh.has(e.cid)) row.classList.add("fresh");
    body.append(row);
  }
  if (!entries.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "dim" }, "no entries yet")));
}

function renderState(info, values) {
  const box = $("state");
  box.replaceChildren();
  if (values.items) {
    box.append(table(["key", "value"], values.items.map((i) => [i.key, json(i.value)])));
  } else if (values.events) {
    box.append(table(["event", "value"], values.events.map((e) => [short(e.cid), json(e.value)])));
  } else if ("value" in values) {
    box.append(el("p", {}, "value: ", el("strong", { id: "counter-value" }, values.value)));
    box.append(table(["writer", "total"], Object.entries(values.writers).map(([w, n]) => [shortDid(w), n])));
  } else if (values.tables) {
    for (const [name, rows] of Object.entries(values.tables)) {
      box.append(el("h2", {}, name), table(["key", "row"], rows.map((r) => [json(r.key), json(r.row)])));
    }
  }
}

function table(headers, rows) {
  const t = el("table", {}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))));
  const body = el("tbody");
  for (const r of rows) body.append(el("tr", {}, ...r.map((c) => el("td", { class: "mono" }, c === null ? "NULL" : c))));
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: headers.length, class: "dim" }, "(none)")));
  t.append(body);
  return t;
}

// ------------------------------------------------------------------------------------------------ DAG

// Lays entries out newest first, as `orbit log` does: each column waits for one entry; an entry takes the
// leftmost column waiting for it (the others waiting for it merge into it), then its column waits for
// its first parent and new columns open for the others. A merge (two or more parents) is drawn hollow.
function layout(entries) {
  const cols = [];
  const pos = new Map();
  entries.forEach((e, row) => {
    let col = cols.indexOf(e.cid);
    if (col < 0) { col = cols.indexOf(null); if (col < 0) { col = cols.length; cols.push(null); } }
    for (let i = 0; i < cols.length; i++) if (cols[i] === e.cid && i !== col) cols[i] = null;
    pos.set(e.cid, { row, col });
    const parents = e.next || [];
    cols[col] = parents.length ? parents[0] : null;
    for (const p of parents.slice(1)) {
      if (cols.includes(p)) continue;
      const free = cols.indexOf(null);
      if (free >= 0) cols[free] = p; else cols.push(p);
    }
  });
  return pos;
}

function renderDag(entries, total) {
  const box = $("dag");
  box.replaceChildren();
  const pos = layout(entries);
  const width = Math.max(...[...pos.values()].map((p) => p.col), 0);
  const X = (c) => 16 + c * 18, Y = (r) => 14 + r * 22, textX = X(width) + 22;
  const image = svg("svg", { width: textX + 560, height: Y(entries.length), "aria-label": "the log's DAG" });
  const edges = svg("g", { class: "edges" }), nodes = svg("g", { class: "nodes" });
  for (const e of entries) {
    const a = pos.get(e.cid);
    for (const p of e.next || []) {
      const b = pos.get(p);
      if (b) {
        const midY = Y(b.row) - 11;
        const d = a.col === b.col ? `M${X(a.col)},${Y(a.row)} L${X(b.col)},${Y(b.row)}`
          : `M${X(a.col)},${Y(a.row)} C${X(a.col)},${midY} ${X(b.col)},${Y(a.row) + 11} ${X(b.col)},${Y(b.row)}`;
        edges.append(svg("path", { d, "data-from": e.cid, "data-to": p }));
      } else {  // a parent older than the entries shown
        edges.append(svg("path", { d: `M${X(a.col)},${Y(a.row)} l0,14`, class: "cut", "data-from": e.cid }));
      }
    }
    const classes = ["node"];
    if ((e.next || []).length > 1) classes.push("merge");
    if (e.mine) classes.push("mine");
    const g = svg("g", { class: classes.join(" "), "data-cid": e.cid });
    const title = svg("title");
    title.textContent = `${e.cid}\nclock ${e.time}, writer ${e.writer}${e.mine ? " (you)" : ""}\n` +
      (e.verified ? "verified: hash, signature, clock, write access" : "not verified");
    g.append(title, svg("circle", { cx: X(a.col), cy: Y(a.row), r: (e.next || []).length > 1 ? 6 : 5 }));
    const label = svg("text", { x: textX, y: Y(a.row) + 4 });
    label.textContent = `${short(e.cid)}  ${String(e.time).padStart(4)}  ${shortDid(e.writer)}  ${summary(e.payload)}`;
    g.append(label);
    nodes.append(g);
  }
  image.append(edges, nodes);
  box.append(image);
  $("dag-note").textContent = entries.length < total ? `(newest ${entries.length} of ${total})` : "";
}

// ----------------------------------------------------------------------------------------- replication

function renderReplication(status) {
  const dl = $("replication");
  dl.replaceChildren();
  if (!status) return;
  const rows = [["replicating", status.replicating ? "yes" : "no (the daemon runs without an IPFS node)"]];
  if (status.replicating) {
    const peers = Object.entries(status.peers || {});
    rows.push(["peers", peers.length ? peers.map(([p, h]) => short(p, 6, 6) + " → " + h.map((c) => short(c)).join(", ")).join("; ") : "none seen yet"]);
    rows.push(["pending", status.pending], ["missing", status.missing], ["wanted", status.wanted]);
    const c = status.counters || {};
    rows.push(["admitted", c.admitted || 0], ["rejected", c.rejected || 0], ["fetch errors", c.fetch_errors || 0]);
    if (status.last_error) rows.push(["last error", status.last_error]);
  }
  rows.push(["heads", (status.heads || []).map((h) => short(h)).join(", ") || "none"]);
  for (const [k, v] of rows) dl.append(el("dt", {}, k), el("dd", { class: "mono", "data-field": k }, v));
}

// ------------------------------------------------------------------------------------------------- SQL

async function runSql() {
  const out = $("sql-result");
  out.replaceChildren();
  let params;
  try {
    params = JSON.parse($("sql-params").value || "[]");
    if (!Array.isArray(params)) throw new Error("not a list");
  } catch (e) {
    out.append(el("p", { class: "bad" }, "parameters are a JSON list: " + e.message));
    return;
  }
  try {
    const result = await api("/dbs/" + encodeURIComponent(state.selected) + "/sql", {
      method: "POST", body: { sql: $("sql-text").value, params, write: $("sql-write").checked },
    });
    if (result.columns.length) out.append(table(result.columns, result.rows.map((r) => r.map((c) => c === null ? null : (typeof c === "object" ? json(c) : c)))));
    if ("rowcount" in result) out.append(el("p", { class: "ok" }, `${result.rowcount} row(s) changed` + (result.entry ? ` (entry ${result.entry})` : "")));
    if (!result.columns.length && !("rowcount" in result)) out.append(el("p", { class: "dim" }, "(no rows)"));
  } catch (e) {
    out.append(el("p", { class: "bad" }, String(e.message || e)));
  }
}

// ------------------------------------------------------------------------------------------ live events

let refreshTimer = null;
function refreshSoon() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; refresh(); }, 100);
}

function onEvent(event, data) {
  if (event === "update") {
    const db = state.dbs.find((d) => d.address === data.address);
    if (db) { db.entries = (db.entries || 0) + data.entries.length; renderDbs(); }
    if (state.info && data.address === state.info.address) {
      for (const e of data.entries) state.fresh.add(e.cid);
      refreshSoon();
    }
  } else if (event === "status") {
    let changed = false;
    for (const s of data.databases) {
      const db = state.dbs.find((d) => d.address === s.address);
      if (db && db.entries !== s.entries) { db.entries = s.entries; changed = true; }
      if (state.info && s.address === state.info.address) renderReplication(s);
    }
    if (changed) renderDbs();
    if (data.databases.some((s) => !state.dbs.find((d) => d.address === s.address))) loadDbs();
  } else if (event === "overflow") {
    refreshSoon();
  }
}

async function listen() {
  const conn = $("conn");
  for (;;) {
    try {
      const response = await fetch(API + "/events", { headers: { Authorization: "Bearer " + state.token }, cache: "no-store" });
      if (!response.ok) throw new Error("events: HTTP " + response.status);
      conn.textContent = "live"; conn.className = "live";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "", event = "message", data = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let at;
        while ((at = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, at).replace(/\r$/, "");
          buffer = buffer.slice(at + 1);
          if (line === "") {
            if (data) { try { onEvent(event, JSON.parse(data)); } catch (e) { showError("bad event: " + e); } }
            event = "message"; data = "";
          } else if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
      }
    } catch (e) {
      showError(String(e.message || e));
    }
    conn.textContent = "reconnecting…"; conn.className = "down";
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// ------------------------------------------------------------------------------------------------ start

async function start(token) {
  state.token = token;
  try {
    const ping = await api("/ping");
    state.me = ping.identity;
    $("directory").textContent = ping.directory + (ping.node ? " · node " + ping.node : "");
  } catch (e) {
    showError("the daemon refused: " + (e.message || e));
    $("token-form").classList.remove("hidden");
    return;
  }
  sessionStorage.setItem("orbit-token", token);
  $("token-form").classList.add("hidden");
  $("app").classList.remove("hidden");
  $("sql-run").addEventListener("click", runSql);
  await loadDbs();
  listen();
}

document.addEventListener("DOMContentLoaded", () => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) history.replaceState(null, "", location.pathname);  // keep the token out of the history
  const token = fromHash || sessionStorage.getItem("orbit-token");
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    showError("");
    start($("token-input").value.trim());
  });
  if (token) start(token); else $("token-form").classList.remove("hidden");
});
