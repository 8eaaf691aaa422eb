"""Site "operating / stopped" from metered power, with hysteresis and a minimum duration.

A sealed (stopped) mine that draws hoist or fan power is "stopped on paper, secretly
running"; vision's electronic seals combine with this state.
"""

from __future__ import annotations

from collections.abc import Callable

from buffer.record import Kind, Record
from buffer.sink import RecordSink
from config.drivers import OperatingStateSettings


class OperatingState:
    """Sums the configured power points; switches state only after ``min_duration`` beyond a threshold."""

    def __init__(self, settings: OperatingStateSettings, sink: RecordSink, source: str = "site") -> None:
        self.settings, self.sink, self.source = settings, sink, source
        self.power: dict[str, float] = {}
        self.state = "unknown"
        self.since: float | None = None
        self._candidate: str | None = None
        self._candidate_since = 0.0
        self.wanted = set(settings.power_points)

    def listener(self) -> Callable[[str, str, object, str, float], None]:
        def on_value(device: str, point: str, value: object, quality: str, ts: float) -> None:
            key = f"{device}.{point}"
            if key in self.wanted and isinstance(value, int | float):
                self.power[key] = float(value)
                if len(self.power) == len(self.wanted):
                    self.update(sum(self.power.values()), ts)

        return on_value

    def update(self, total_kw: float, ts: float) -> None:
        s = self.settings
        if total_kw >= s.on_above_kw:
            target = "operating"
        elif total_kw <= s.off_below_kw:
            target = "stopped"
        else:
            target = None  # inside the hysteresis band: keep whatever we are heading for
        if target is None or target == self.state:
            if target == self.state:
                self._candidate = None
            return
        if self._candidate != target:
            self._candidate, self._candidate_since = target, ts
        if ts - self._candidate_since >= s.min_duration:
            previous, self.state, self.since = self.state, target, self._candidate_since
            self._candidate = None
            self.sink.emit(Record(self.source, Kind.EVENT, {
                "event": "operating_state", "state": target, "previous": previous, "power_kw": round(total_kw, 3),
                "since_ts": self.since, "thresholds_kw": [s.off_below_kw, s.on_above_kw]}, ts=ts))
