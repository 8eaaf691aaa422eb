"""The camera view's parts without a server: shapes listed from real example configs, geometry checks
in both languages, edits written into the file keeping its comments, counts reset at a reload."""

from __future__ import annotations

from pathlib import Path

from agent.web.camera_counts import CameraCounts
from agent.web.camera_geometry import Shape, apply_edits, check_edits, shapes_of
from buffer.record import Committed, Kind, Record
from config import load_settings_text

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"


def test_shapes_of_the_example_seal_camera_and_an_added_polygon_key() -> None:
    text = (EXAMPLES / "seals.yaml").read_text()
    settings = load_settings_text(text)
    shapes = shapes_of(settings, "cam-seal-vent")
    assert shapes == [Shape("seal", "seal", ("cameras", 1, "seal", "polygon"), [(0, 0), (1, 0), (1, 1), (0, 1)])]
    assert shapes_of(settings, "no-such-camera") is None
    # the vent camera's seal has no polygon in the file (the whole frame): saving one adds the key
    edited, problems = check_edits(shapes, [{"path": list(shapes[0].path), "points": [[0.1, 0.2], [0.9, 0.2], [0.5, 0.9]]}], "en")
    assert problems == []
    new = apply_edits(text, edited)
    assert load_settings_text(new).cameras[1].seal.polygon == [(0.1, 0.2), (0.9, 0.2), (0.5, 0.9)]  # type: ignore[union-attr]
    assert "# the ventilation shaft: sealed at night only" in new and "# where nobody may be" in new
    changed = [ln for ln in new.splitlines() if ln not in text.splitlines()]
    assert changed == ["      polygon: [[0.1, 0.2], [0.9, 0.2], [0.5, 0.9]]"], changed


def test_geometry_refusals_name_the_shape_in_both_languages() -> None:
    line = Shape("line", "gate", ("cameras", 0, "lines", 0, "points"), [(0.5, 0.1), (0.5, 0.9)])
    zone = Shape("hotwork", "weld-bay", ("rules", "hotwork", "zones", 0, "polygon"), [(0.1, 0.1), (0.4, 0.1), (0.4, 0.4)])

    def refuse(shape: Shape, points: list[list[float]], lang: str = "en") -> list[str]:
        return check_edits([line, zone], [{"path": list(shape.path), "points": points}], lang)[1]  # type: ignore[arg-type]

    assert refuse(line, [[0.3, 0.3], [0.3, 0.3]]) == [
        "Counting line gate has zero length (its two ends are on the same spot) and would count nothing. Drag one end away."
    ]
    assert refuse(line, [[0.3, 0.3], [0.3, 0.3]], "zh") == ["计数线 gate 长度为零（两端几乎重合），不会计数。请拖开一个端点。"]
    assert "point 2 (1.5, 0.2) is outside the picture" in refuse(line, [[0.3, 0.3], [1.5, 0.2]])[0]
    assert "动火区 weld-bay：第 3 个点 (0.2, -0.1) 在画面之外" in refuse(zone, [[0.1, 0.1], [0.4, 0.1], [0.2, -0.1]], "zh")[0]
    assert refuse(zone, [[0.1, 0.1], [0.4, 0.1]]) == ["Hot-work zone weld-bay needs at least 3 points."]
    assert refuse(line, [[0.1, 0.1], [0.4, 0.1], [0.5, 0.5]]) == ["Counting line gate must have exactly two end points."]
    for garbage in ([["a", 0.1], [0.2, 0.2]], [[float("nan"), 0.1], [0.2, 0.2]], "x", [[0.1, 0.1]] * 40):
        assert "Malformed request" in refuse(line, garbage)[0]  # type: ignore[arg-type]
    assert check_edits([line], [{"path": ["web", "port"], "points": [[0, 0], [1, 1]]}], "en")[1]


def committed(seq: int, source: str, kind: Kind, payload: dict[str, object]) -> Committed:
    return Committed(seq, Record(source, kind, payload, ts=1000.0 + seq), "c")


def test_counts_follow_telemetry_and_crossings_and_restart_at_a_reload() -> None:
    counts = CameraCounts()
    counts.on_commit(
        [
            committed(1, "cam-1", Kind.TELEMETRY, {"lines": {"mid": {"in": {"person": 2}, "out": {}}}}),
            committed(2, "cam-1", Kind.EVENT, {"event": "line_crossing", "line": "mid", "in": 2, "out": 1}),
        ]
    )
    assert counts.of("cam-1")["lines"] == {"mid": {"in": 2, "out": 1}}
    counts.on_commit([committed(3, "agent", Kind.EVENT, {"event": "config_reloaded", "hash": "x"})])
    assert counts.of("cam-1") == {"lines": {}, "since": 1003.0, "reloads": 1}
    counts.on_commit([committed(4, "cam-1", Kind.EVENT, {"event": "line_crossing", "line": "mid", "in": 0, "out": 1})])
    assert counts.of("cam-1")["lines"] == {"mid": {"in": 0, "out": 1}}


def test_every_example_camera_round_trips_unchanged() -> None:
    """Writing back the shapes as they are changes no setting of any example (only number spelling)."""
    for path in sorted(EXAMPLES.glob("*.yaml")):
        text = path.read_text()
        settings = load_settings_text(text, file=str(path), base_dir=path.parent)
        shapes = [s for cam in settings.cameras for s in shapes_of(settings, cam.id) or []]
        again = load_settings_text(apply_edits(text, shapes), file=str(path), base_dir=path.parent)
        assert again == settings, path.name


def test_a_line_shared_through_a_yaml_anchor_is_refused_not_moved_for_both_cameras() -> None:
    import pytest

    from agent.web.camera_geometry import Shape, apply_edits

    text = (
        "cameras:\n"
        "  - id: east\n    url: a\n    lines: &gate\n      - {name: g, points: [[0.1, 0.5], [0.9, 0.5]]}\n"
        "  - id: west\n    url: b\n    lines: *gate\n"
    )
    moved = Shape("line", "g", ("cameras", 1, "lines", 0, "points"), [(0.2, 0.2), (0.8, 0.8)])
    with pytest.raises(KeyError, match="anchor &gate"):
        apply_edits(text, [moved])
    plain = text.replace("&gate", "").replace("*gate", "\n      - {name: g, points: [[0.1, 0.5], [0.9, 0.5]]}")
    assert "[0.2, 0.2]" in apply_edits(plain, [moved])
