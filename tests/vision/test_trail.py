"""Recounting the track trail with another line gives exactly what the camera would have counted with it."""

from __future__ import annotations

import pytest

from buffer.record import Record
from config.vision import CameraSettings, LineSettings
from tests.vision.conftest import read_frames
from vision.analytics import FrameContext
from vision.pipeline import CameraPipeline
from vision.trail import TrackTrail, recount

LIVE = {"name": "mid", "points": [[0.5, 0.15], [0.5, 1.0]], "band": 0.015}
OTHER = {"name": "slant", "points": [[0.62, 0.1], [0.45, 0.95]], "band": 0.015}
#: a grid of lines over the road: tracks born near a line, lost and relinked, coasting across one
GRID = [{"name": f"v{i}", "points": [[x, 0.2], [x, 1.0]], "band": 0.01} for i, x in enumerate((0.3, 0.4, 0.6, 0.7))] + [
    {"name": f"h{i}", "points": [[0.05, y], [0.95, y + 0.05]], "band": 0.01} for i, y in enumerate((0.35, 0.45, 0.55, 0.65))
]


class Tee(TrackTrail):
    """The pipeline's trail, also feeding two small ones (to see the bounds hold on real tracks)."""

    def __init__(self) -> None:
        super().__init__("cam-1")
        self.short = TrackTrail("cam-1", seconds=5.0)
        self.few = TrackTrail("cam-1", max_entries=20)

    def add(self, ctx: FrameContext) -> None:
        super().add(ctx)
        self.short.add(ctx)
        self.few.add(ctx)


@pytest.fixture(scope="module")
def camera_run() -> CameraPipeline:
    """vtest.avi at 5 fps through the real detector and tracker, counting on two lines at once."""
    cam = CameraSettings.model_validate(
        {
            "id": "cam-1",
            "url": "x",
            "fps": 5,
            "detector": {"model": "ssdlite_person_300", "score_threshold": 0.5},
            "tamper": {"enabled": False},
            "lines": [LIVE, OTHER, *GRID],
        }
    )
    out: list[Record] = []
    pipeline = CameraPipeline(cam, out.append)
    pipeline.trail = Tee()
    for i, frame in enumerate(read_frames("vtest.avi", 100, step=2)):
        pipeline.process(frame, 1000.0 + i * 0.2)
    return pipeline


def test_recount_of_the_trail_equals_the_live_counter_for_any_line(camera_run: CameraPipeline) -> None:
    trail = camera_run.trail
    assert trail is not None and len(trail.frames) == 100
    live = {c.settings.name: {"in": c.total("in"), "out": c.total("out")} for c in camera_run.lines}
    assert sum(live["mid"].values()) >= 3  # the clip has crossings to get right
    copy = trail.copy()
    # each line alone, as if it had been the only line the camera ran
    assert recount(copy, [LineSettings.model_validate(LIVE)]) == {"mid": live["mid"]}
    assert recount(copy, [LineSettings.model_validate(OTHER)]) == {"slant": live["slant"]}
    grid = recount(copy, [LineSettings.model_validate(g) for g in GRID])
    assert grid == {g["name"]: live[g["name"]] for g in GRID}
    assert sum(sum(c.values()) for c in grid.values()) >= 10
    flipped = LineSettings.model_validate({**LIVE, "points": LIVE["points"][::-1]})
    assert recount(copy, [flipped]) == {"mid": {"in": live["mid"]["out"], "out": live["mid"]["in"]}}
    assert copy.seconds == pytest.approx(19.8)


def test_the_trail_is_bounded_in_time_and_entries(camera_run: CameraPipeline) -> None:
    tee = camera_run.trail
    assert isinstance(tee, Tee) and tee.entries > 40  # the whole clip: many tracks
    assert tee.short.frames[-1].ts - tee.short.frames[0].ts <= 5.0 and len(tee.short.frames) == 26
    assert 0 < tee.few.entries <= 20 and tee.few.entries == sum(len(f.tracks) for f in tee.few.frames)
    assert tee.few.frames[-1] == tee.frames[-1]
