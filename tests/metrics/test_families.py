"""The metric table (agent/metrics/specs.py) against what the exporter emits, the dashboard and the docs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from agent.metrics.exporter import HealthRecordCollector
from agent.metrics.specs import AGENT_SPECS, FLEET_SPECS, exposed_names
from drivers.latency import LatencyHistogram
from tests.metrics.payloads import HEALTH, JUNK

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _exposition(payload: dict[str, Any]) -> str:
    collector = HealthRecordCollector("mine-a", "gw-01")
    collector.update(payload, 1.0)
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_every_family_in_the_table_is_emitted_from_a_full_record() -> None:
    names = {s.name for f in text_string_to_metric_families(_exposition(HEALTH)) for s in f.samples}
    assert names == exposed_names(AGENT_SPECS)


def test_junk_costs_series_not_the_scrape() -> None:
    text = _exposition(JUNK)
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    # meter-2 is the one device with a valid id and an object body; its wrong-typed fields are skipped
    assert {s.labels.get("device") for s in samples} == {None, "meter-2"}
    assert {s.name for s in samples if s.labels.get("device")} == {"headframe_device_state"}
    assert len(samples) < 60


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k in ("expr", "definition") and isinstance(v, str)]
        return found + [e for v in node.values() for e in _exprs(v)]
    if isinstance(node, list):
        return [e for v in node for e in _exprs(v)]
    return []


def test_the_grafana_dashboard_reads_only_what_is_exported_and_shows_every_family() -> None:
    dashboard = json.loads((DOCS / "grafana" / "headframe.json").read_text())
    exprs = _exprs(dashboard)
    used = {m for e in exprs for m in re.findall(r"\b(?:headframe|process)_[a-z0-9_]+", e)}
    exposed = exposed_names(AGENT_SPECS) | exposed_names(FLEET_SPECS)
    assert used and used <= exposed, f"not exported: {sorted(used - exposed)}"
    for spec in [*AGENT_SPECS.values(), *FLEET_SPECS.values()]:
        assert any(n.startswith(spec.name) for n in used), f"no panel shows {spec.name}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_the_docs_describe_every_metric() -> None:
    text = (DOCS / "metrics.md").read_text()
    missing = [name for name in [*AGENT_SPECS, *FLEET_SPECS] if f"`{name}`" not in text]
    assert not missing, f"docs/metrics.md does not describe {missing}"


def test_latency_buckets_are_upper_inclusive_like_prometheus() -> None:
    hist = LatencyHistogram()
    for seconds in (0.005, 0.0051, 0.3, 99.0):
        hist.observe(seconds)
    doc = hist.as_dict()
    cumulative = dict(zip([*doc["le"], "+Inf"], doc["cumulative"], strict=True))
    assert cumulative[0.005] == 1 and cumulative[0.01] == 2 and cumulative[0.5] == 3 and cumulative["+Inf"] == 4
    assert doc["count"] == 4 and abs(doc["sum"] - 99.3101) < 1e-9
