"""Counting accuracy per clip and overall: development set, held-out set, full vtest.

    .venv/bin/python -m bench.count_bench dev [--model nanodet_m_416] [--threshold 0.3] [--tiles off|lines] [--fps 4]
    .venv/bin/python -m bench.count_bench heldout2 heldout vtest --json out.json
    .venv/bin/python -m bench.count_bench dev --tiles off      # the whole frame instead of tiles

Every clip runs through the real replay path (decode → pipeline → tracker → line counter);
detections are memoised per frame content in build/vision-cache/<model>.npz so that tuning
the tracker does not re-run the network (``vision.groundtruth.detcache``: exact at any
threshold at or above its 0.2 floor). Development figures are for tuning; held-out figures are
reported, never tuned on.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any

from config.vision import COUNTING_THRESHOLD, CameraSettings, DetectorSettings
from vision.cli import replay
from vision.groundtruth.__main__ import OUT, write_set
from vision.groundtruth.detcache import CachedDetector
from vision.groundtruth.sets import SETS

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "vision-cache"
VTEST_TRUTH = ROOT / "tests" / "vision" / "data" / "vtest_ground_truth.json"


def clips(name: str) -> list[dict[str, Any]]:
    """Truth records (with ``path``, ``line``, ``in``, ``out``) of a set name."""
    if name in SETS:
        return write_set(SETS[name], OUT)
    truth = json.loads(VTEST_TRUTH.read_text())
    full = truth.get("full", truth)
    line = [[0.5, 0.15], [0.5, 1.0]]
    rows = [
        {
            "name": "vtest-0-399",
            "path": str(ROOT / truth["video"]),
            "line": line,
            "in": truth["in"],
            "out": truth["out"],
            "max_frames": 400,
        }
    ]
    if "full" in truth:
        rows.append(
            {"name": "vtest-0-794", "path": str(ROOT / truth["video"]), "line": line, "in": full["in"], "out": full["out"]}
        )
    return rows


#: detector settings for a run beyond model and thresholds (``--tiles``, ``--tile-size``)
EXTRA: dict[str, Any] = {}


def camera(
    clip: dict[str, Any], model: str, threshold: float, fps: float, band: float | None, low: float | None = None
) -> CameraSettings:
    line: dict[str, Any] = {"name": "l", "points": clip["line"]}
    if band is not None:
        line["band"] = band
    return CameraSettings.model_validate(
        {
            "id": "bench",
            "url": clip["path"],
            "fps": fps,
            "tamper": {"enabled": False},
            "detector": {
                "model": model,
                "score_threshold": threshold,
                **({} if low is None else {"low_score_threshold": low}),
                **EXTRA,
            },
            "lines": [line],
        }
    )


def evaluate(
    names: list[str],
    model: str,
    threshold: float,
    fps: float,
    band: float | None = None,
    low: float | None = None,
    quiet: bool = False,
    only: list[str] | None = None,
) -> dict[str, Any]:
    floor = DetectorSettings(
        model=model, score_threshold=threshold, **({} if low is None else {"low_score_threshold": low})
    ).floor
    det = CachedDetector(model, floor, store=CACHE / f"{model}.npz")
    report: dict[str, Any] = {"model": model, "threshold": threshold, "low": floor, "fps": fps, "sets": {}}
    try:
        for name in names:
            rows = []
            for clip in clips(name):
                if only and clip["name"] not in only:
                    continue
                t0 = time.perf_counter()
                summary = replay(
                    camera(clip, model, threshold, fps, band, low), clip["path"], max_frames=clip.get("max_frames"), detector=det
                )
                got = {d: summary["lines"]["l"][d].get("person", 0) for d in ("in", "out")}
                rows.append(
                    {"clip": clip["name"], "truth_in": clip["in"], "truth_out": clip["out"], "in": got["in"], "out": got["out"]}
                )
                if not quiet:
                    print(
                        f"  {clip['name']:<14} truth {clip['in']:>2}/{clip['out']:<2} got {got['in']:>2}/{got['out']:<2} "
                        f"err {got['in'] - clip['in']:+d}/{got['out'] - clip['out']:+d}  ({time.perf_counter() - t0:.1f} s)",
                        flush=True,
                    )
                det.save()
            report["sets"][name] = summarise(rows)
            s = report["sets"][name]
            print(
                f"{name}: {model} {EXTRA or ''} thr {threshold} (low {floor}) @ {fps} fps: truth {s['truth']} crossings, "
                f"abs error {s['abs_error']} "
                f"({s['abs_error_pct']:.1f} %), net {s['net_error']:+d}; clips with every direction within ±1: "
                f"{s['clips_within_1']}/{s['clips']}; worst {s['worst']}",
                flush=True,
            )
    finally:
        det.save()
    return report


def tune(
    min_hits: int | None,
    max_age: int | None,
    relink: int | None,
    tentative_age: int | None = None,
    appearance: float | None = None,
) -> None:
    """Swap the pipeline's tracker/counter defaults for a tuning run (the code paths stay the real ones)."""
    import vision.pipeline as pipeline

    tracker_kw = {
        k: v
        for k, v in {
            "min_hits": min_hits,
            "max_age": max_age,
            "tentative_age": tentative_age,
            "appearance_weight": appearance,
        }.items()
        if v is not None
    }
    if tracker_kw:
        pipeline.Tracker = functools.partial(pipeline.Tracker, **tracker_kw)  # type: ignore[assignment,misc,arg-type]
    if relink is not None:
        pipeline.LineCounter = functools.partial(pipeline.LineCounter, relink_frames=relink)  # type: ignore[assignment,misc]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    truth = sum(r["truth_in"] + r["truth_out"] for r in rows)
    errors = [(r["in"] - r["truth_in"], r["out"] - r["truth_out"]) for r in rows]
    abs_error = sum(abs(a) + abs(b) for a, b in errors)
    return {
        "rows": rows,
        "clips": len(rows),
        "truth": truth,
        "abs_error": abs_error,
        "abs_error_pct": 100.0 * abs_error / max(1, truth),
        "net_error": sum(a + b for a, b in errors),
        "clips_within_1": sum(1 for a, b in errors if abs(a) <= 1 and abs(b) <= 1),
        "worst": max((max(abs(a), abs(b)) for a, b in errors), default=0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sets", nargs="+", choices=[*sorted(SETS), "vtest"])
    ap.add_argument("--model", default="nanodet_m_416")
    ap.add_argument("--threshold", type=float, default=COUNTING_THRESHOLD)
    ap.add_argument("--fps", type=float, default=4.0)
    ap.add_argument("--band", type=float)
    ap.add_argument("--low", type=float, help="low score threshold (tracker's second stage); default half the threshold")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--only", nargs="*", help="only these clips (names)")
    ap.add_argument("--min-hits", type=int, help="tuning: tracker min_hits (default: the pipeline's)")
    ap.add_argument("--max-age", type=int, help="tuning: tracker max_age in analysed frames")
    ap.add_argument("--tentative-age", type=int, help="tuning: misses a tentative track survives")
    ap.add_argument("--appearance", type=float, help="tuning: tracker appearance_weight (0 = off)")
    ap.add_argument("--relink", type=int, help="tuning: line counter relink_frames (0 = off)")
    ap.add_argument("--tiles", choices=["off", "lines"], help="detector.tiles (default: the camera default)")
    ap.add_argument("--tile-size", type=int, help="detector.tile_size in frame pixels")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    EXTRA.update({k: v for k, v in {"tiles": args.tiles, "tile_size": args.tile_size}.items() if v is not None})
    tune(args.min_hits, args.max_age, args.relink, args.tentative_age, args.appearance)
    report = evaluate(args.sets, args.model, args.threshold, args.fps, args.band, args.low, args.quiet, args.only)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
