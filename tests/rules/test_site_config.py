"""Site-rules config: bad references and conflicting schedules are named by key and line."""

from __future__ import annotations

import pytest

from config import ConfigError, load_settings_text
from rules.site import build

BASE = """gateway: {site: s, id: g}
devices:
  - {id: plc-hoist, protocol: modbus_tcp, host: h, profile: siemens_s7_1200_hoist}
  - {id: meter-main, protocol: modbus_tcp, host: h, profile: eastron_sdm630}
cameras:
  - {id: cam-seal, url: x.mp4, role: seal, seal: {classes: [person]}}
  - {id: cam-belt, url: y.mp4, role: belt, belt: {polygon: [[0, 0], [1, 0], [1, 1]]}}
  - id: cam-a
    url: z.mp4
    zones: [{name: face-1, polygon: [[0, 0], [1, 0], [1, 1]]}]
"""

GOOD = (
    BASE
    + """rules:
  site:
    shifts: [{name: day, start: "08:00", end: "16:00"}]
    sections:
      - name: north
        state: stopped
        schedule:
          - {from: 2026-11-01, until: 2026-11-30, state: sealed}
          - {from: 2026-12-01, until: 2026-12-31, state: operating}
        expected_loads: [plc-hoist.fan_running, plc-hoist.pump1_running]
        activity:
          power: [{point: meter-main.p_total, above: 20}]
          run_bits: [plc-hoist.hoist_running, plc-hoist.belt_running]
          belt_cameras: [cam-belt]
          seal_cameras: [cam-seal]
    rectification:
      - {name: fix, from: 2026-11-24, until: 2026-11-26, shifts: [day], places: [cam-a.face-1, cam-seal]}
    belt_scales:
      - {name: main, scale: plc-hoist.belt_load, camera: cam-belt, for: 2m}
"""
)


def test_a_good_config_builds_every_site_rule() -> None:
    settings = load_settings_text(GOOD, "site.yaml")
    names = [r.name for r in build(settings)]
    # rectification runs before the sections: they must see which seal alarms it suppressed
    assert names == ["rectification", "secretly_running:north", "belt_scale:main"]
    assert settings.rules.site.belt_scales[0].for_ == 120.0


@pytest.mark.parametrize(
    ("old", "new", "line", "key", "words"),
    [
        (
            "plc-hoist.pump1_running]",
            "plc-hoist.pump9_running]",
            20,
            "rules.site.sections[0].expected_loads[1]",
            "a point of device 'plc-hoist'",
        ),
        (
            "{point: meter-main.p_total",
            "{point: meter-ghost.p_total",
            22,
            "rules.site.sections[0].activity.power[0].point",
            "device.point of a configured device",
        ),
        (
            "run_bits: [plc-hoist.hoist_running",
            "run_bits: [plc-hoist.hoist_runing",
            23,
            "rules.site.sections[0].activity.run_bits[0]",
            "hoist_running",
        ),
        (
            "belt_cameras: [cam-belt]",
            "belt_cameras: [cam-seal]",
            24,
            "rules.site.sections[0].activity.belt_cameras[0]",
            "a camera with a 'belt:' section",
        ),
        (
            "seal_cameras: [cam-seal]",
            "seal_cameras: [cam-gate]",
            25,
            "rules.site.sections[0].activity.seal_cameras[0]",
            "a camera id from cameras",
        ),
        ("{from: 2026-12-01, until", "{from: 2026-11-30, until", 19, "rules.site.sections[0].schedule[1]", "do not overlap"),
        (
            "until: 2026-11-30, state: sealed",
            "until: 2026-10-30, state: sealed",
            18,
            "rules.site.sections[0].schedule[0]",
            "'until' on or after 'from'",
        ),
        ("shifts: [day]", "shifts: [dya]", 27, "rules.site.rectification[0].shifts[0]", "a shift name"),
        (
            "places: [cam-a.face-1,",
            "places: [cam-a.face-9,",
            27,
            "rules.site.rectification[0].places[0]",
            "a zone of camera 'cam-a'",
        ),
        ("scale: plc-hoist.belt_load", "scale: plc-belt.belt_load", 29, "rules.site.belt_scales[0].scale", "device.point"),
        ("camera: cam-belt, for", "camera: cam-a, for", 29, "rules.site.belt_scales[0].camera", "'belt:' section"),
        ("  site:\n", "  site:\n    timezone: Mars/Olympus\n", 13, "rules.site.timezone", "IANA time zone"),
        # a rule on a disabled camera would never see it: silent, not safe
        (
            "{id: cam-seal, url: x.mp4,",
            "{id: cam-seal, enabled: false, url: x.mp4,",
            25,
            "rules.site.sections[0].activity.seal_cameras[0]",
            "an enabled camera",
        ),
        (
            "{id: cam-belt, url: y.mp4,",
            "{id: cam-belt, enabled: false, url: y.mp4,",
            24,
            "rules.site.sections[0].activity.belt_cameras[0]",
            "an enabled camera",
        ),
        (
            "{id: cam-belt, url: y.mp4,",
            "{id: cam-belt, enabled: false, url: y.mp4,",
            29,
            "rules.site.belt_scales[0].camera",
            "enabled: false",
        ),
        (
            'shifts: [{name: day, start: "08:00", end: "16:00"}]',
            'shifts: [{name: day, start: "08:00", end: "16:00"}, {name: late, start: "15:00", end: "01:00"}]',
            13,
            "rules.site.shifts[1]",
            "overlaps shift 'day'",
        ),
    ],
)
def test_site_rule_config_errors_name_the_key(old: str, new: str, line: int, key: str, words: str) -> None:
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    with pytest.raises(ConfigError) as info:
        load_settings_text(text, "site.yaml")
    msgs = [str(p) for p in info.value.problems]
    hit = [m for m in msgs if f" {key}:" in m]
    assert hit, msgs
    assert hit[0].startswith(f"site.yaml:{line}:"), hit
    assert words in hit[0]


def test_overlapping_rectification_windows_are_rejected() -> None:
    text = GOOD.replace(
        "places: [cam-a.face-1, cam-seal]}\n",
        "places: [cam-a.face-1, cam-seal]}\n      - {name: fix2, from: 2026-11-26, until: 2026-11-28, places: [cam-seal]}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings_text(text, "site.yaml")
    msgs = [str(p) for p in info.value.problems]
    assert any(" rules.site.rectification[1]:" in m and "overlaps window 'fix'" in m for m in msgs), msgs


def test_nothing_configured_builds_no_site_rule() -> None:
    assert build(load_settings_text(BASE, "site.yaml")) == []


def test_a_window_on_a_camera_overlaps_one_on_its_zone() -> None:
    text = GOOD.replace(
        "places: [cam-a.face-1, cam-seal]}\n",
        "places: [cam-a.face-1, cam-seal]}\n      - {name: fix2, from: 2026-11-25, until: 2026-11-28, places: [cam-a]}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings_text(text, "site.yaml")
    msgs = [str(p) for p in info.value.problems]
    assert any(" rules.site.rectification[1]:" in m and "overlaps window 'fix'" in m for m in msgs), msgs


def test_shifts_past_midnight_that_do_not_overlap_are_fine() -> None:
    text = GOOD.replace(
        'shifts: [{name: day, start: "08:00", end: "16:00"}]',
        'shifts: [{name: day, start: "08:00", end: "16:00"}, {name: night, start: "22:00", end: "08:00"}]',
    )
    assert [s.name for s in load_settings_text(text, "site.yaml").rules.site.shifts] == ["day", "night"]


def test_an_external_headcount_point_the_device_does_not_have_is_named() -> None:
    doc = BASE.replace(
        "    zones: [{name: face-1",
        "    lines: [{name: gate, points: [[0, 0], [1, 1]], shaft: main}]\n    zones: [{name: face-1",
    )
    ok = doc + "shafts: [{name: main}]\nrules:\n  headcount:\n    external: [{shaft: main, device: meter-main, point: p_total}]\n"
    assert load_settings_text(ok, "site.yaml").rules.headcount.external[0].point == "p_total"  # a profile point counts
    with pytest.raises(ConfigError) as info:
        load_settings_text(ok.replace("point: p_total", "point: no_such_point"), "site.yaml")
    msgs = [str(p) for p in info.value.problems]
    assert any(
        " rules.headcount.external[0].point: found 'no_such_point'" in m and "a point of device 'meter-main'" in m for m in msgs
    ), msgs
