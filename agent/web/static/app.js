// The technician's page: polls /api/state and builds the DOM with textContent only
// (every value from the field or the network is data, never markup).
"use strict";
const T = JSON.parse(document.getElementById("i18n").textContent);
const CSRF = document.body.dataset.csrf;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.dataset[k.slice(5)] = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

function table(headers, rows) {
  const head = el("tr", {}, ...headers.map((h) => el("th", {}, h)));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows));
}

function notice(text, bad) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.className = bad ? "error" : "ok";
}

async function command(op, id) {
  const res = await fetch("/api/alarms/" + op, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
    body: JSON.stringify({ id }),
    credentials: "same-origin",
  });
  if (res.status === 401) { location.href = "/login?expired=1"; return; }
  const answer = await res.json();
  notice(answer.message || answer.error, !answer.ok);
  refresh();
}

function renderHealth(state) {
  const h = state.health || {};
  const buffer = h.buffer || {};
  const uplink = h.uplink || {};
  const section = document.getElementById("health");
  section.replaceChildren(
    el("h2", {}, T.health),
    el("p", {}, T.buffer + ": " + T.pending + " ", el("span", { id: "pending" }, buffer.depth ?? "—")),
    el("p", {}, T.uplink + ": ", el("span", { id: "uplink-state" }, uplink.state ?? "—"),
      uplink.last_error ? " · " + uplink.last_error : ""),
  );
}

function renderAlarms(state) {
  const rows = (state.open_alarms || []).map((a) => {
    const actions = el("td", {});
    for (const op of ["ack", "handle", "close"]) {
      const b = el("button", { class: "op-" + op, "data-alarm": a.id }, T[op]);
      b.addEventListener("click", () => command(op, a.id));
      actions.append(b);
    }
    return el("tr", { "data-alarm": a.id }, el("td", {}, a.id), el("td", {}, a.severity), el("td", {}, a.state),
      el("td", {}, a.raised_at), actions);
  });
  const section = document.getElementById("alarms");
  section.replaceChildren(el("h2", {}, T.open_alarms),
    rows.length ? table(["id", T.severity, T.state, T.raised_at, ""], rows) : el("p", { id: "no-alarms" }, T.no_alarms));
}

function renderDevices(state) {
  const section = document.getElementById("devices");
  const blocks = Object.entries(state.devices || {}).map(([id, dev]) => {
    const rows = (dev.points || []).map((p) => el("tr", { "data-point": id + "." + p.name },
      el("td", {}, p.name), el("td", { class: "value" }, p.v == null ? "—" : p.v + (p.unit ? " " + p.unit : "")),
      el("td", { class: "q-" + p.q }, p.q + (p.reason ? " (" + p.reason + ")" : "")), el("td", {}, p.age_s)));
    return el("div", { class: "device", "data-device": id },
      el("h3", {}, id + " — ", el("span", { class: "state" }, dev.state), dev.reason ? " · " + dev.reason : ""),
      table([T.point, T.value, T.quality, T.age], rows));
  });
  section.replaceChildren(el("h2", {}, T.devices), ...(blocks.length ? blocks : [el("p", {}, T.no_devices)]));
}

async function refresh() {
  try {
    const res = await fetch("/api/state", { credentials: "same-origin" });
    if (res.status === 401) { location.href = "/login?expired=1"; return; }
    const state = await res.json();
    renderHealth(state); renderAlarms(state); renderDevices(state);
    document.body.dataset.seq = state.last_seq;
  } catch (e) {
    notice(T.stale_page, true);
  }
}

refresh();
setInterval(refresh, 2000);

// ----- the configuration editor: check with the gateway's own loader, see the diff, save -----
let configHash = null;

async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  if (res.status === 401) { location.href = "/login?expired=1"; return null; }
  return res.json();
}

function showResult(answer, intro) {
  const problems = document.getElementById("config-problems");
  const diff = document.getElementById("config-diff");
  problems.replaceChildren(...(answer.explained || answer.problems || []).map((p) => el("li", {}, p)));
  diff.textContent = answer.diff || "";
  document.getElementById("config-message").textContent = answer.message || intro || "";
}

async function loadConfig() {
  const res = await fetch("/api/config", { credentials: "same-origin" });
  if (!res.ok) return;
  const doc = await res.json();
  configHash = doc.hash;
  document.getElementById("config-text").value = doc.text;
}

function renderConfigEditor() {
  const text = el("textarea", { id: "config-text", rows: "18", spellcheck: "false" });
  const check = el("button", { id: "config-check" }, T.check);
  const save = el("button", { id: "config-save" }, T.save);
  const reload = el("button", { id: "config-reload" }, T.reload_config);
  check.addEventListener("click", async () => {
    const answer = await post("/api/config/check", { text: text.value });
    if (answer) showResult(answer, answer.ok ? T.config_ok : T.config_invalid);
  });
  save.addEventListener("click", async () => {
    const answer = await post("/api/config/save", { text: text.value, hash: configHash });
    if (!answer) return;
    showResult(answer);
    if (answer.hash) configHash = answer.hash;
    notice(answer.message, !answer.ok);
  });
  reload.addEventListener("click", loadConfig);
  document.getElementById("config").replaceChildren(
    el("h2", {}, T.configuration), text, el("div", {}, check, save, reload),
    el("p", { id: "config-message" }), el("ul", { id: "config-problems", class: "error" }), el("pre", { id: "config-diff" }));
  loadConfig();
}

renderConfigEditor();

// ----- register probe and RS-485 scan: the same code as `headframe probe` / `headframe scan` -----
function field(id, label, attrs) {
  return el("label", {}, label + " ", el("input", Object.assign({ id }, attrs || {})));
}

function select(id, label, options) {
  return el("label", {}, label + " ", el("select", { id }, ...options.map((o) => el("option", { value: o }, o))));
}

function renderProbe() {
  const v = (id) => document.getElementById(id).value;
  const out = el("div", { id: "probe-result" });
  const read = el("button", { id: "probe-read" }, T.probe_read);
  read.addEventListener("click", async () => {
    const tcp = v("probe-protocol") === "modbus_tcp";
    const body = {
      protocol: v("probe-protocol"), unit: Number(v("probe-unit")), table: v("probe-table"),
      address: Number(v("probe-address")), count: Number(v("probe-count")), type: v("probe-type"), order: v("probe-order"),
    };
    if (tcp) { body.host = v("probe-host"); body.port = Number(v("probe-port")); } else { body.bus = v("probe-bus"); }
    out.textContent = "…";
    const answer = await post("/api/probe", body);
    if (!answer) return;
    if (!answer.ok) { out.replaceChildren(el("p", { class: "error", id: "probe-error" }, answer.message || answer.error)); return; }
    out.replaceChildren(el("p", { id: "probe-raw" }, "raw: " + answer.raw.join(" ")),
      table([T.address, T.value], answer.values.map(([a, val]) => el("tr", { "data-address": String(a) },
        el("td", {}, a), el("td", { class: "value" }, val)))));
  });
  const scanOut = el("div", { id: "scan-result" });
  const scan = el("button", { id: "scan-run" }, T.scan_run);
  scan.addEventListener("click", async () => {
    scanOut.textContent = "…";
    const answer = await post("/api/scan", { bus: v("scan-bus"), first: Number(v("scan-first")), last: Number(v("scan-last")) });
    if (!answer) return;
    if (!answer.ok) { scanOut.replaceChildren(el("p", { class: "error" }, answer.message || answer.error)); return; }
    scanOut.replaceChildren(answer.found.length
      ? el("ul", {}, ...answer.found.map((f) => el("li", { "data-unit": String(f.unit) }, T.unit + " " + f.unit + ": " + f.answer)))
      : el("p", {}, T.scan_none));
  });
  document.getElementById("probe").replaceChildren(
    el("h2", {}, T.probe),
    el("div", { class: "form" },
      select("probe-protocol", T.protocol, ["modbus_tcp", "modbus_rtu"]),
      field("probe-host", T.host, { value: "", size: "16" }), field("probe-port", T.port, { value: "502", size: "5" }),
      field("probe-bus", T.bus, { size: "10" }), field("probe-unit", T.unit, { value: "1", size: "4" }),
      select("probe-table", T.table, ["holding", "input", "coil", "discrete"]),
      field("probe-address", T.address, { value: "0", size: "6" }), field("probe-count", T.count, { value: "1", size: "3" }),
      select("probe-type", T.type, ["uint16", "int16", "uint32", "int32", "float32", "uint64", "int64", "float64"]),
      select("probe-order", T.order, ["ABCD", "CDAB", "BADC", "DCBA"]), read),
    out,
    el("h3", {}, T.scan),
    el("div", { class: "form" }, field("scan-bus", T.bus, { size: "10" }),
      field("scan-first", T.first_unit, { value: "1", size: "4" }), field("scan-last", T.last_unit, { value: "32", size: "4" }), scan),
    scanOut);
}

renderProbe();
