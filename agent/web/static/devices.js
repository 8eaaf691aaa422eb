// "Add a device from a profile": a small form whose answer is the loader's verdict and the diff;
// the save goes the config editor's way on the gateway. Uses el/post/notice/field/select from app.js.
"use strict";

const DEVICE_FIELDS = {
  modbus_tcp: ["dev-host", "dev-port", "dev-unit"],
  modbus_rtu: ["dev-bus", "dev-unit"],
  dlt645: ["dev-bus", "dev-address"],
};
let deviceProfiles = [];
let deviceHash = null;

function deviceForm() {
  const v = (id) => document.getElementById(id).value.trim();
  const body = {
    profile: v("dev-profile"), protocol: v("dev-protocol"), id: v("dev-id"),
    probe: document.getElementById("dev-probe").checked,
  };
  for (const id of DEVICE_FIELDS[body.protocol] || []) {
    const value = v(id);
    if (value !== "") body[id.slice(4)] = value;
  }
  if (v("dev-interval") !== "") body.interval = v("dev-interval");
  return body;
}

function showDeviceAnswer(answer) {
  document.getElementById("dev-message").textContent = answer.message || answer.error || "";
  document.getElementById("dev-message").className = answer.ok ? "ok" : "error";
  document.getElementById("dev-problems").replaceChildren(...(answer.explained || answer.problems || []).map((p) => el("li", {}, p)));
  document.getElementById("dev-diff").textContent = answer.diff || "";
}

function showProtocolFields() {
  const protocol = document.getElementById("dev-protocol").value;
  for (const id of ["dev-host", "dev-port", "dev-unit", "dev-bus", "dev-address"]) {
    document.getElementById(id).parentElement.style.display = (DEVICE_FIELDS[protocol] || []).includes(id) ? "" : "none";
  }
}

function fillProtocols() {
  const name = document.getElementById("dev-profile").value;
  const profile = deviceProfiles.find((p) => p.name === name);
  const protocols = profile ? profile.protocols : ["modbus_tcp", "modbus_rtu", "dlt645"];
  document.getElementById("dev-protocol").replaceChildren(...protocols.map((p) => el("option", { value: p }, p)));
  document.getElementById("dev-profile-notes").textContent = profile
    ? profile.title + " — " + T.points_n.replace("{n}", profile.points) + (profile.notes ? " · " + profile.notes : "") : "";
  showProtocolFields();
}

async function renderAddDevice() {
  const section = el("section", { id: "add-device" });
  document.querySelector("main").insertBefore(section, document.getElementById("config"));
  const res = await fetch("/api/profiles", { credentials: "same-origin" });
  if (!res.ok) return;
  const data = await res.json();
  deviceProfiles = data.profiles;
  const preview = el("button", { id: "dev-preview" }, T.preview);
  const add = el("button", { id: "dev-add" }, T.add_apply);
  preview.addEventListener("click", async () => {
    document.getElementById("dev-message").textContent = "…";
    const answer = await post("/api/devices/preview", deviceForm());
    if (!answer) return;
    deviceHash = answer.ok ? answer.hash : null;
    showDeviceAnswer(answer);
  });
  add.addEventListener("click", async () => {
    const body = deviceForm();
    body.probe = false; // the probe belongs to the preview
    if (deviceHash) body.hash = deviceHash;
    const answer = await post("/api/devices/add", body);
    if (!answer) return;
    showDeviceAnswer(answer);
    if (answer.ok) { notice(answer.message, false); deviceHash = null; loadConfig(); refresh(); }
  });
  section.replaceChildren(
    el("h2", {}, T.add_device),
    el("div", { class: "form" },
      select("dev-profile", T.profile, deviceProfiles.map((p) => p.name)),
      select("dev-protocol", T.protocol, []),
      field("dev-id", T.device_id, { size: "14" }),
      field("dev-host", T.host, { size: "16" }), field("dev-port", T.port, { value: "502", size: "5" }),
      el("label", {}, T.bus + " ", el("select", { id: "dev-bus" }, ...data.buses.map((b) => el("option", { value: b }, b)))),
      field("dev-unit", T.unit, { value: "1", size: "4" }),
      field("dev-address", T.meter_address, { size: "13" }),
      field("dev-interval", T.interval, { placeholder: "1s", size: "5" }),
      el("label", {}, el("input", { id: "dev-probe", type: "checkbox" }), " " + T.probe_first),
      preview, add),
    el("p", { id: "dev-profile-notes" }),
    el("p", { id: "dev-message" }), el("ul", { id: "dev-problems", class: "error" }), el("pre", { id: "dev-diff" }));
  document.getElementById("dev-profile").addEventListener("change", fillProtocols);
  document.getElementById("dev-protocol").addEventListener("change", showProtocolFields);
  fillProtocols();
}

renderAddDevice();
