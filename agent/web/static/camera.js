// The camera view: each camera's last picture with its lines and zones drawn over it (SVG),
// points dragged with the pointer, "replay the last minutes with this line", save.
// Coordinates are normalised to the picture (0..1), as in the configuration. Uses el(), post(),
// notice() and T from app.js; builds its DOM with textContent only.
"use strict";
const SVGNS = "http://www.w3.org/2000/svg";
const MIN_LINE = 0.01;   // as the server (agent/web/camera_geometry.py): shorter is "zero length"
const cams = {};         // id -> {id, shapes, saved, dirty, size, dom, selected}
let camHash = null;

function fmt(key, args) {
  return (T[key] || key).replace(/\{(\w+)\}/g, (_, k) => (args[k] === undefined ? "{" + k + "}" : String(args[k])));
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function copyShapes(shapes) { return shapes.map((s) => ({ ...s, points: s.points.map((p) => [p[0], p[1]]) })); }

function camMessage(cam, text, bad) {
  const m = cam.dom.message;
  m.textContent = text || "";
  m.className = "cam-message " + (bad ? "error" : "ok");
}

// ----- drawing -------------------------------------------------------------------------------
function inArrow(cam, a, b) {
  // "in" is crossing from the left of A→B to its right: the right-hand normal, in picture pixels
  const [w, h] = cam.size;
  const dx = (b[0] - a[0]) * w, dy = (b[1] - a[1]) * h;
  const len = Math.hypot(dx, dy) || 1;
  const nx = dy / len, ny = -dx / len;
  const mx = (a[0] + b[0]) / 2 * w, my = (a[1] + b[1]) / 2 * h;
  const reach = Math.max(w, h) / 14;
  const tx = mx + nx * reach, ty = my + ny * reach;
  const head = reach / 3;
  const l = [tx - nx * head + ny * head / 1.5, ty - ny * head - nx * head / 1.5];
  const r = [tx - nx * head - ny * head / 1.5, ty - ny * head + nx * head / 1.5];
  return { d: `M${mx},${my} L${tx},${ty} M${l[0]},${l[1]} L${tx},${ty} L${r[0]},${r[1]}`, label: [tx + nx * head, ty + ny * head] };
}

function place(cam, i) {
  const s = cam.shapes[i], g = cam.dom.groups[i], [w, h] = cam.size;
  const pts = s.points.map(([x, y]) => `${x * w},${y * h}`).join(" ");
  g.outline.setAttribute("points", pts);
  g.handles.forEach((c, j) => { c.setAttribute("cx", s.points[j][0] * w); c.setAttribute("cy", s.points[j][1] * h); });
  if (g.arrow) {
    const arrow = inArrow(cam, s.points[0], s.points[1]);
    g.arrow.setAttribute("d", arrow.d);
    g.label.setAttribute("x", arrow.label[0]);
    g.label.setAttribute("y", arrow.label[1]);
  }
}

function draw(cam) {
  const [w, h] = cam.size;
  const over = cam.dom.svg;
  over.setAttribute("viewBox", `0 0 ${w} ${h}`);
  over.replaceChildren();
  cam.dom.groups = cam.shapes.map((s, i) => {
    const line = s.kind === "line";
    const selected = cam.selected && cam.selected.shape === i;
    const g = svg("g", { class: `shape kind-${s.kind}${selected ? " selected" : ""}`, "data-shape": s.kind + ":" + s.name });
    const outline = svg(line ? "polyline" : "polygon", { class: "outline", "stroke-width": Math.max(w, h) / 300 });
    outline.addEventListener("pointerdown", () => selectShape(cam, i, null));
    g.append(outline);
    const parts = { outline, handles: [] };
    if (line) {
      parts.arrow = svg("path", { class: "arrow", "stroke-width": Math.max(w, h) / 250, "data-direction": "in" });
      parts.label = svg("text", { class: "arrow-label", "font-size": Math.max(w, h) / 40 });
      parts.label.textContent = T.direction_in + " · " + s.name;
      g.append(parts.arrow, parts.label);
    } else {
      const name = svg("text", { class: "zone-label", x: s.points[0][0] * w + Math.max(w, h) / 60,
        y: s.points[0][1] * h - Math.max(w, h) / 120, "font-size": Math.max(w, h) / 50 });
      name.textContent = T["shape_" + s.kind] + " " + s.name;
      g.append(name);
    }
    s.points.forEach((_, j) => {
      const c = svg("circle", { class: "handle", r: Math.max(w, h) / 90, "data-vertex": j });
      if (selected && cam.selected.vertex === j) c.classList.add("selected");
      c.addEventListener("pointerdown", (ev) => startDrag(cam, i, j, ev));
      parts.handles.push(c);
      g.append(c);
    });
    over.append(g);
    return parts;
  });
  cam.shapes.forEach((_, i) => place(cam, i));
  renderTools(cam);
}

// ----- editing -------------------------------------------------------------------------------
function toPicture(cam, ev) {
  const r = cam.dom.svg.getBoundingClientRect();
  return [(ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height];
}

function refusal(s, points) {
  // the server decides; this only spares the technician a round trip
  const what = T["shape_" + s.kind];
  for (let n = 0; n < points.length; n++) {
    const [x, y] = points[n];
    if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) {
      return fmt("geometry_outside", { what, name: s.name, n: n + 1, x: Math.round(x * 1000) / 1000, y: Math.round(y * 1000) / 1000 });
    }
  }
  if (s.kind === "line" && Math.hypot(points[1][0] - points[0][0], points[1][1] - points[0][1]) < MIN_LINE) {
    return fmt("geometry_zero_length", { what, name: s.name });
  }
  return null;
}

function startDrag(cam, i, j, ev) {
  ev.preventDefault();
  const handle = ev.target;
  handle.setPointerCapture(ev.pointerId);
  const before = cam.shapes[i].points[j].slice();
  cam.selected = { shape: i, vertex: j };
  cam.dragging = true;
  const move = (e) => { cam.shapes[i].points[j] = toPicture(cam, e); place(cam, i); };
  const end = (e) => {
    cam.dragging = false;
    handle.removeEventListener("pointermove", move);
    handle.removeEventListener("pointerup", end);
    handle.removeEventListener("pointercancel", end);
    cam.shapes[i].points[j] = toPicture(cam, e);
    const why = refusal(cam.shapes[i], cam.shapes[i].points);
    if (why) {
      cam.shapes[i].points[j] = before;
      camMessage(cam, why, true);
    } else {
      cam.shapes[i].points[j] = cam.shapes[i].points[j].map((v) => Math.round(v * 10000) / 10000);
      markDirty(cam);
      camMessage(cam, "", false);
    }
    draw(cam);
  };
  handle.addEventListener("pointermove", move);
  handle.addEventListener("pointerup", end);
  handle.addEventListener("pointercancel", end);
}

function selectShape(cam, i, vertex) { cam.selected = { shape: i, vertex }; draw(cam); }

function markDirty(cam) {
  cam.dirty = JSON.stringify(cam.shapes) !== JSON.stringify(cam.saved);
  cam.dom.root.classList.toggle("dirty", cam.dirty);
  cam.dom.dirty.textContent = cam.dirty ? T.unsaved : "";
}

function renderTools(cam) {
  const sel = cam.selected && cam.shapes[cam.selected.shape];
  const tools = cam.dom.tools;
  if (!sel) { tools.replaceChildren(el("span", { class: "hint" }, T.drag_hint)); return; }
  const label = el("strong", {}, T["shape_" + sel.kind] + " " + sel.name + " ");
  const buttons = [];
  if (sel.kind === "line") {
    const flip = el("button", { class: "cam-flip" }, T.flip);
    flip.addEventListener("click", () => { sel.points.reverse(); markDirty(cam); draw(cam); });
    buttons.push(flip);
  } else {
    const add = el("button", { class: "cam-add-point" }, T.add_point);
    add.addEventListener("click", () => {
      const j = cam.selected.vertex ?? sel.points.length - 1;
      const a = sel.points[j], b = sel.points[(j + 1) % sel.points.length];
      sel.points.splice(j + 1, 0, [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]);
      cam.selected.vertex = j + 1;
      markDirty(cam); draw(cam);
    });
    const remove = el("button", { class: "cam-remove-point" }, T.remove_point);
    remove.disabled = sel.points.length <= 3 || cam.selected.vertex == null;
    remove.addEventListener("click", () => {
      sel.points.splice(cam.selected.vertex, 1);
      cam.selected.vertex = null;
      markDirty(cam); draw(cam);
    });
    buttons.push(add, remove);
  }
  tools.replaceChildren(label, ...buttons);
}

// ----- replay, save, counts -------------------------------------------------------------------
function edits(cam) { return cam.shapes.map((s) => ({ path: s.path, points: s.points })); }

async function replay(cam) {
  cam.dom.replay.textContent = "…";
  const answer = await post(`/api/cameras/${encodeURIComponent(cam.id)}/replay`, { shapes: edits(cam) });
  if (!answer) return;
  if (!answer.ok) { cam.dom.replay.replaceChildren(el("p", { class: "error" }, answer.message || answer.error)); return; }
  const rows = Object.entries(answer.lines).map(([name, c]) => {
    const old = answer.saved_lines[name] || {};
    return el("tr", { "data-line": name }, el("td", {}, name),
      el("td", { class: "replay-in" }, c.in), el("td", { class: "replay-out" }, c.out),
      el("td", { class: "saved-in" }, old.in ?? "—"), el("td", { class: "saved-out" }, old.out ?? "—"));
  });
  cam.dom.replay.replaceChildren(el("p", { class: "replay-summary" }, answer.message),
    table(["", T.edited_line + " " + T.direction_in, T.direction_out, T.saved_line + " " + T.direction_in, T.direction_out], rows));
}

async function saveCamera(cam) {
  const answer = await post(`/api/cameras/${encodeURIComponent(cam.id)}/save`, { shapes: edits(cam), hash: camHash });
  if (!answer) return;
  camMessage(cam, [answer.message, ...(answer.problems || [])].filter(Boolean).join(" "), !answer.ok);
  cam.dom.diff.textContent = answer.diff || "";
  if (answer.ok && answer.saved) {
    camHash = answer.hash;
    cam.saved = copyShapes(cam.shapes);
    markDirty(cam);
    notice(answer.message, false);
    if (typeof loadConfig === "function") loadConfig();   // the text editor shows the new file too
  }
  loadCameras();
}

function renderCounts(cam, counts) {
  const since = new Date(counts.since * 1000).toLocaleTimeString(document.documentElement.lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
  const rows = Object.entries(counts.lines).map(([name, c]) => el("tr", { "data-line": name },
    el("td", {}, name), el("td", { class: "count-in" }, c.in), el("td", { class: "count-out" }, c.out)));
  cam.dom.counts.replaceChildren(el("h4", { "data-reloads": String(counts.reloads) }, fmt("counts_since", { time: since })),
    table(["", T.direction_in, T.direction_out], rows));
}

async function snapshot(cam) {
  const res = await fetch(`/api/cameras/${encodeURIComponent(cam.id)}/snapshot`, { credentials: "same-origin" });
  if (res.status === 401) { location.href = "/login?expired=1"; return; }
  const answer = await res.json();
  cam.dom.status.textContent = answer.message || "";
  cam.dom.status.className = "cam-status " + (answer.ok ? "ok" : "error");
  cam.dom.root.dataset.online = answer.online ? "yes" : "no";
  if (answer.image && answer.ts !== cam.shownTs) {
    cam.shownTs = answer.ts;
    cam.dom.img.src = answer.image;   // the last picture stays when the camera goes offline
  }
}

function buildCamera(doc) {
  const img = el("img", { class: "cam-snapshot", alt: doc.id });
  const over = svg("svg", { class: "cam-overlay", preserveAspectRatio: "none" });
  const replayBtn = el("button", { class: "cam-replay" }, T.replay);
  const saveBtn = el("button", { class: "cam-save" }, T.save_lines);
  const undo = el("button", { class: "cam-undo" }, T.undo_edits);
  const dom = {
    img, svg: over, tools: el("div", { class: "cam-tools" }), message: el("p", { class: "cam-message", role: "alert" }),
    status: el("p", { class: "cam-status" }), replay: el("div", { class: "cam-replay-result" }),
    counts: el("div", { class: "cam-counts" }), diff: el("pre", { class: "cam-diff" }), dirty: el("span", { class: "cam-dirty" }),
  };
  dom.root = el("div", { class: "camera", "data-camera": doc.id },
    el("h3", {}, doc.id + " (" + doc.role + ") ", dom.dirty), dom.status,
    el("div", { class: "cam-stage no-picture" }, img, over), dom.tools, el("div", {}, replayBtn, saveBtn, undo),
    dom.message, dom.replay, dom.counts, dom.diff);
  const cam = { id: doc.id, shapes: copyShapes(doc.shapes), saved: copyShapes(doc.shapes), dirty: false, size: [1280, 720], dom, selected: null };
  img.addEventListener("load", () => {
    dom.root.querySelector(".cam-stage").classList.remove("no-picture");
    const size = [img.naturalWidth, img.naturalHeight];
    if (size[0] === cam.size[0] && size[1] === cam.size[1]) return;   // a new picture: the drawing stands
    cam.size = size;
    if (!cam.dragging) draw(cam);
  });
  replayBtn.addEventListener("click", () => replay(cam));
  saveBtn.addEventListener("click", () => saveCamera(cam));
  undo.addEventListener("click", () => { cam.shapes = copyShapes(cam.saved); cam.selected = null; markDirty(cam); draw(cam); });
  draw(cam);
  return cam;
}

async function loadCameras() {
  const res = await fetch("/api/cameras", { credentials: "same-origin" });
  if (!res.ok) return;
  const doc = await res.json();
  const section = document.getElementById("cameras");
  if (!doc.ok) {
    section.replaceChildren(el("h2", {}, T.cameras), el("p", { class: "error" }, doc.message), el("ul", {}, ...(doc.problems || []).map((p) => el("li", {}, p))));
    return;
  }
  const fresh = doc.hash !== camHash;
  camHash = doc.hash;
  if (!section.querySelector("h2")) section.replaceChildren(el("h2", {}, T.cameras));
  if (!doc.cameras.length && !section.querySelector(".no-cameras")) section.append(el("p", { class: "no-cameras" }, T.no_cameras));
  for (const c of doc.cameras) {
    let cam = cams[c.id];
    if (!cam) { cam = cams[c.id] = buildCamera(c); section.append(cam.dom.root); snapshot(cam); }
    else if (fresh && !cam.dirty && !cam.dragging) { cam.shapes = copyShapes(c.shapes); cam.saved = copyShapes(c.shapes); draw(cam); }
    else if (fresh) { cam.saved = copyShapes(c.shapes); markDirty(cam); }
    renderCounts(cam, c.counts);
  }
}

loadCameras();
setInterval(() => { loadCameras(); for (const cam of Object.values(cams)) snapshot(cam); }, 3000);
