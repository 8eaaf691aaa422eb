"""What the Sparkplug B formatter costs: CPU per 1000 values against the JSON formatter.

    .venv/bin/python -m bench.sparkplug_bench [--records 20000] [--values 8] [--rounds 5]

Every formatter gets the same leased telemetry records (``values`` points of a meter, the stored
document as the buffer builds it) and turns each into the bytes the uplink publishes; the
session is a stub that only counts (paho's publish costs the same for every format). Reported:
CPU seconds (process time, best of ``rounds``) per 1000 values and bytes per record.

* ``json``: today's JsonFormatter, the default (the stored document goes out as it is).
* ``sparkplug``: SparkplugFormatter (parse the document, DDATA with aliases and quality).
* ``pysparkplug``: the same DDATA built with pysparkplug's payload classes (the reference
  library, if installed: ``pip install --no-deps pysparkplug``), to show what a maintained
  library would cost for the same work.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import orjson

from agent.uplink.formatters import JsonFormatter, Topics
from agent.uplink.sparkplug import SparkplugFormatter
from buffer.boundary import StoredRecord
from buffer.record import Kind
from config import load_settings_text


class StubSession:
    """Counts what would be published; never loses the connection."""

    lost = False

    def __init__(self) -> None:
        self.messages = 0

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        self.messages += 1

    def subscribe(self, topic: str, on_message: Callable[[str, bytes, bool], None]) -> None:
        pass


def records(n: int, values: int) -> list[StoredRecord]:
    """Telemetry as the poller emits it (report-on-change: every value changed), stored docs."""
    out = []
    for i in range(n):
        vals = {
            f"p{j}": (
                {"v": 230.0 + i % 97 + j / 10, "unit": "V", "q": "good"}
                if (i + j) % 50
                else {"v": None, "q": "bad", "reason": "timeout"}
            )
            for j in range(values)
        }
        doc = {
            "chain": "ab" * 32,
            "gateway": "gw-01",
            "kind": "telemetry",
            "payload": {"group": "default", "values": vals},
            "prev": "cd" * 32,
            "seq": i + 1,
            "site": "mine-a",
            "source": f"meter-{i % 10}",
            "synced": True,
            "ts": "2026-11-25T10:00:00.000Z",
        }
        out.append(
            StoredRecord(i + 1, f"meter-{i % 10}", Kind.TELEMETRY, 1.7e9 + i, orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), ())
        )
    return out


def pysparkplug_formatter() -> Callable[[StoredRecord], bytes] | None:
    try:
        import pysparkplug as spb  # the reference library (tests' decoder), optional here
    except ImportError:
        return None
    aliases: dict[tuple[str, str], int] = {}

    def fmt(rec: StoredRecord) -> bytes:
        vals = orjson.loads(rec.doc)["payload"]["values"]
        ts = int(rec.ts * 1000)
        metrics = []
        for name, e in vals.items():
            alias = aliases.setdefault((rec.source, name), len(aliases) + 1)
            metrics.append(spb.Metric(timestamp=ts, name=None, alias=alias, datatype=spb.DataType.DOUBLE, value=e["v"]))
        return bytes(spb.DData(timestamp=ts, seq=rec.seq % 256, metrics=tuple(metrics)).encode())

    return fmt


def run(fmt: Callable[[StoredRecord], bytes], recs: list[StoredRecord], rounds: int) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(rounds):
        t0 = time.process_time()
        size = sum(len(fmt(r)) for r in recs)
        best = min(best, time.process_time() - t0)
    return best, size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--values", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    recs = records(args.records, args.values)
    n_values = args.records * args.values
    with TemporaryDirectory() as tmp:
        settings = load_settings_text(
            f"gateway: {{site: mine-a, id: gw-01}}\nbuffer: {{path: {Path(tmp) / 'b.db'}}}\nuplink: {{format: sparkplug}}\n"
        )
        topics = Topics(settings)
        json_fmt = JsonFormatter(topics)
        sp_fmt = SparkplugFormatter(settings, topics)
        sp_fmt.will()
        session: Any = StubSession()
        sp_fmt.begin(session)
        candidates: dict[str, Callable[[StoredRecord], bytes]] = {
            "json": lambda r: json_fmt.format(r).payload,
            "sparkplug": lambda r: sp_fmt.format(r).payload,
        }
        ref = pysparkplug_formatter()
        if ref is not None:
            candidates["pysparkplug"] = ref
        results = {name: run(fmt, recs, args.rounds) for name, fmt in candidates.items()}
    base = results["json"][0]
    print(f"{args.records} telemetry records x {args.values} values, best of {args.rounds} rounds (process CPU)")
    print(f"{'formatter':<12} {'ms / 1000 values':>17} {'µs / record':>12} {'bytes / record':>15} {'vs json':>8}")
    for name, (cpu, size) in results.items():
        print(
            f"{name:<12} {cpu / n_values * 1e6:>17.2f} {cpu / args.records * 1e6:>12.2f} "
            f"{size / args.records:>15.0f} {cpu / base if base else float('nan'):>7.1f}x"
        )
    print(f"births and deaths published along the way: {session.messages}")


if __name__ == "__main__":
    main()
