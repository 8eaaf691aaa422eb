"""Platform mappings: render time per record against the plain JSON formatter and hand-written code.

    .venv/bin/python -m bench.mapping_bench [--records 20000] [--points 8] [--runs 5]

The same committed, chained records (a real ``BufferStore``: telemetry of 20 meters with
``--points`` values each) go through, in one process, alternating per run:

* ``plain``: ``JsonFormatter`` (today's default: the stored bytes go out as they are);
* ``hand``: the province-A payload of ``config/examples/platform_mapping_province_a.yaml``
  written as Python (parse the document, build the dict, local time, orjson) — the best an
  integrator could do in code, and the baseline for the template engine doing the same work;
* ``province_a``: that example's templates (``MappingFormatter``), one message per record;
* ``thingsboard``: ``config/examples/platform_mapping_thingsboard.yaml`` (mirror_json: two messages);
* ``split``: one message per point (``split: point``).

Prints CPU µs per record (process time; min and median over the runs) and the ratios of the
medians to ``plain`` and to ``hand``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from agent.uplink import JsonFormatter, OutboundMessage, Topics
from agent.uplink.mapping import MappingFormatter
from buffer import BufferStore
from buffer.boundary import StoredRecord
from buffer.record import Kind, Record
from config import Settings, load_settings, load_settings_text

EXAMPLES = Path(__file__).resolve().parents[1] / "config" / "examples"
SPLIT = """
gateway: {site: mine-a, id: gw-01}
uplink:
  mapping:
    static: {mine_code: "370802001"}
    telemetry:
      split: point
      topic: "mine/${static.mine_code}/${source}/${point.name}"
      payload: {tag: "${source}_${point.name}", value: "${point.value}", time: "${ts_local}", seq: "${seq}"}
"""


def stored_records(n: int, points: int) -> list[StoredRecord]:
    tmp = Path(tempfile.mkdtemp())
    store = BufferStore(tmp / "b.db", gateway="gw-01", site="mine-a", chain_key=b"k" * 32, max_bytes=10 * 1024**3)
    values = {f"p{j}": {"v": 1.5 * j, "q": "good", "unit": "kW"} for j in range(points)}
    recs = [
        Record(f"meter-{i % 20}", Kind.TELEMETRY, {"group": "default", "values": values}, ts=1.7e9 + i * 0.01) for i in range(n)
    ]
    for i in range(0, n, 1000):
        store.append(recs[i : i + 1000])
    out = store.lease(n)
    store.close()
    return out


def hand_written(settings: Settings) -> Callable[[StoredRecord], OutboundMessage]:
    """Province A in code: what the templates must not be much slower than."""
    tz = ZoneInfo("Asia/Shanghai")
    codes = {f"meter-{i}": f"370802001MT{i:04d}" for i in range(20)}
    quality = {"good": 0, "bad": 1, "stale": 2}

    def fmt(rec: StoredRecord) -> OutboundMessage:
        doc = orjson.loads(rec.doc)
        code = codes.get(rec.source, "370802001GW0001")
        local = dt.datetime.fromtimestamp(int(rec.ts * 1000) / 1000, tz).strftime("%Y-%m-%d %H:%M:%S")
        data = [
            {
                "tag": f"{code}_{name}",
                "value": v.get("v"),
                "unit": v.get("unit"),
                "state": quality[v.get("q", "good")],
                "time": local,
            }
            for name, v in doc["payload"]["values"].items()
        ]
        body: dict[str, Any] = {"mineCode": "370802001", "deviceCode": code, "collectTime": local, "data": data}
        body["seq"], body["chain"] = rec.seq, doc["chain"]
        return OutboundMessage(f"mine/370802001/realtime/{code}", orjson.dumps(body))

    return fmt


def time_it(fn: Callable[[StoredRecord], Any], recs: list[StoredRecord]) -> float:
    t0 = time.process_time()  # CPU of this process: the figure other loads on the box distort least
    for rec in recs:
        fn(rec)
    return (time.process_time() - t0) / len(recs) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    recs = stored_records(args.records, args.points)
    prov = load_settings(EXAMPLES / "platform_mapping_province_a.yaml")
    tb = load_settings(EXAMPLES / "platform_mapping_thingsboard.yaml")
    split = load_settings_text(SPLIT)
    plain = JsonFormatter(Topics(prov))
    cases: dict[str, Callable[[StoredRecord], Any]] = {
        "plain": plain.format,
        "hand": hand_written(prov),
        "province_a": MappingFormatter(prov, plain).format_all,
        "thingsboard": MappingFormatter(tb, JsonFormatter(Topics(tb))).format_all,
        "split": MappingFormatter(split, JsonFormatter(Topics(split))).format_all,
    }
    results: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.runs):
        for name, fn in cases.items():
            results[name].append(time_it(fn, recs))
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"{args.records} records x {args.points} points, {args.runs} runs; CPU µs per record; ratios of medians")
    for name, xs in results.items():
        m = med[name]
        print(f"{name:12s} min {min(xs):8.2f}  median {m:8.2f}  x plain {m / med['plain']:7.1f}  x hand {m / med['hand']:5.2f}")


if __name__ == "__main__":
    main()
