"""Rendering of the fleet: a plain-text table and a small self-refreshing HTML page."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agent.fleet.model import FleetState

#: C0 and C1 control characters and DEL: a published name holding ESC sequences must not be able
#: to rewrite the operator's terminal (clear it, move the cursor, retitle the window)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _plain(value: Any) -> Any:
    """Strings with every control character shown as ``\\xNN``; other values unchanged."""
    if isinstance(value, str):
        return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def text_table(rows: list[dict[str, Any]]) -> str:
    """The terminal view; everything from MQTT is printed with control characters escaped."""
    rows = [_plain(r) for r in rows]
    lines = [
        f"{'gateway':<24}{'status':<9}{'since':<21}{'last seen':<21}{'backlog':>8}{'oldest s':>9}"
        f"{'drop':>6}{'disk MB':>9}{'temp':>6}  clock"
    ]
    for r in rows:
        lines.append(
            f"{r['gateway']:<24}{r['status']:<9}{r['since'] or '-':<21}{r['last_seen'] or '-':<21}"
            f"{r['backlog'] if r['backlog'] is not None else '-':>8}{r['oldest_unsent_s'] or 0:>9.0f}"
            f"{r['dropped']:>6}{r['disk_free_mb'] or '-':>9}{r['temperature_c'] or '-':>6}  "
            f"{'ok' if r['clock_synced'] else 'NOT SYNCED' if r['clock_synced'] is False else '?'}"
        )
        if r["status"] == "online" and r["previous_down_s"] is not None:
            lines.append(f"    previous outage: {r['previous_down_s']:.0f} s down ({r['previous_reason'] or 'no reason'})")
        for dev, st in {**r["devices"], **r["cameras"]}.items():
            lines.append(f"    {dev}: {st}")
        for p in r["problems"]:
            lines.append(f"    !! {p}")
    return "\n".join(lines)


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Headframe fleet</title>
<style>body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}td,th{border:1px solid #999;padding:4px 8px}
.offline{background:#fdd}.problem{color:#b00}.online{background:#dfd}</style></head><body>
<h1>Headframe fleet</h1><p id="updated">loading…</p><table id="fleet"><thead><tr><th>gateway</th><th>status</th>
<th>since</th><th>last seen</th><th>backlog</th><th>oldest unsent s</th><th>dropped</th><th>devices / cameras</th>
<th>disk MB</th><th>temp °C</th><th>clock</th><th>problems</th></tr></thead><tbody></tbody></table>
<script>"""

SCRIPT = """
// Everything shown comes from MQTT: gateway ids from topic levels, states, reasons and device
// names from payloads anyone allowed to publish can write. Nothing of it is parsed as HTML:
// the table is built with DOM nodes and textContent; the row class is one of a fixed set.
const STATUSES=['online','offline','unknown'];
function txt(v){return v===null||v===undefined?'-':String(v)}
function cell(tr,parts,cls){const td=document.createElement('td');if(cls)td.className=cls;
 parts.forEach((p,i)=>{if(i)td.appendChild(document.createElement('br'));
  if(p instanceof Node)td.appendChild(p);else td.appendChild(document.createTextNode(txt(p)))});
 tr.appendChild(td);return td}
function small(s){const e=document.createElement('small');e.textContent=s;return e}
function row(g){const tr=document.createElement('tr');
 tr.className=STATUSES.includes(g.status)?g.status:'unknown';tr.dataset.gateway=txt(g.gateway);
 cell(tr,[g.gateway]);
 const back=g.status==='online'&&g.previous_down_s!=null;
 cell(tr,back?[g.status,small('after '+Math.round(g.previous_down_s)+' s down')]:[g.status]);
 cell(tr,[txt(g.since)+(g.since_is_last_seen?' (last sign of life)':'')]);cell(tr,[g.last_seen]);
 cell(tr,[g.backlog]);cell(tr,[g.oldest_unsent_s]);cell(tr,[g.dropped]);
 cell(tr,Object.entries({...g.devices,...g.cameras}).map(([k,v])=>k+': '+txt(v)));
 cell(tr,[g.disk_free_mb]);cell(tr,[g.temperature_c]);
 cell(tr,[g.clock_synced===false?'NOT SYNCED':g.clock_synced]);
 cell(tr,Array.isArray(g.problems)?g.problems:[],'problem');return tr}
async function refresh(){const r=await fetch('/api/fleet');const rows=await r.json();
 document.querySelector('#fleet tbody').replaceChildren(...rows.map(row));
 document.getElementById('updated').textContent='updated '+new Date().toLocaleTimeString()+' — '+rows.length+' gateway(s)';}
refresh();setInterval(refresh,2000);
"""

PAGE = PAGE + SCRIPT + "</script></body></html>"

#: defence in depth behind the DOM building: only this page's own script runs (no inline event
#: handlers, no injected <script>), it talks only to this server, and nothing is loaded from elsewhere
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; connect-src 'self'; "
    f"script-src 'sha256-{base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()}'"
)


class FleetWeb:
    """A local page (no external assets) and ``/api/fleet`` JSON."""

    def __init__(self, state: FleetState, lock: threading.Lock, host: str, port: int) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def do_GET(self) -> None:
                if self.path.startswith("/api/fleet"):
                    with outer.lock:
                        body = json.dumps(outer.state.rows()).encode()
                    ctype = "application/json"
                elif self.path in ("/", "/index.html"):
                    body, ctype = PAGE.encode(), "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Security-Policy", CSP)
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.state, self.lock = state, lock
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]

    def serve_in_background(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="fleet-web").start()


__all__ = ["PAGE", "FleetWeb", "text_table"]
