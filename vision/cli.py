"""``headframe vision replay``: one camera's analytics over a file, as fast as it runs."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from buffer.record import Record


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    vision = sub.add_parser("vision", help="video analytics tools")
    vsub = vision.add_subparsers(dest="vision_command", required=True)
    p = vsub.add_parser("replay", help="run a camera's analytics over a video file and print the results")
    p.add_argument("-c", "--config", type=Path, required=True)
    p.add_argument("camera")
    p.add_argument("video")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--every-frame", action="store_true", help="analyse every frame instead of the camera's fps")
    p.add_argument("--save-evidence", type=Path, help="folder to write alarm attachments (JPEG) into")
    p.add_argument("--max-frames", type=int, help="stop after this many frames of the file")
    p.set_defaults(func=cmd_replay)


def replay(
    cam: Any,
    video: str,
    every_frame: bool = False,
    evidence: Path | None = None,
    max_frames: int | None = None,
    detector: Any = None,
) -> dict[str, Any]:
    """Every frame of ``video`` in order (no clock, no threads: the same file gives the same result),
    sampled at the camera's fps in media time. ``detector`` replaces the camera's (e.g. a memo)."""
    from vision.pipeline import CameraPipeline
    from vision.source import file_frames

    saved: list[str] = []
    crossings: list[dict[str, Any]] = []

    def out(record: Record) -> None:
        if record.payload.get("event") == "line_crossing":
            p = record.payload
            crossings.append(
                {"line": p["line"], "direction": p["direction"], "track": p["track"], "t": record.ts - (first or 0.0)}
            )
        if evidence and record.attachments:
            evidence.mkdir(parents=True, exist_ok=True)
            for a in record.attachments:
                path = evidence / f"{len(saved):03d}-{a.name}"
                path.write_bytes(a.data)
                saved.append(str(path))

    pipeline = CameraPipeline(cam, out, detector=detector)
    tick = 0  # next sampling instant is tick / fps of media time (computed, never accumulated)
    first: float | None = None
    started = time.perf_counter()
    for n, (frame, ts) in enumerate(file_frames(video)):
        if max_frames is not None and n >= max_frames:
            break
        first = ts if first is None else first
        media = ts - first  # exact to ~1e-7 whatever the wall clock: sampling does not depend on when it runs
        if not every_frame:
            if media + 1e-6 < tick / cam.fps:
                continue
            tick = math.floor(media * cam.fps + 1e-6) + 1
        pipeline.process(frame, ts)
    summary = pipeline.summary()
    summary["seconds"] = round(time.perf_counter() - started, 2)
    summary["evidence_files"] = saved
    summary["crossings"] = crossings  # in order, with media time: what a rerun must reproduce exactly
    return summary


def cmd_replay(args: argparse.Namespace) -> int:
    from config import load_or_report
    from vision.detector import ModelError

    settings = load_or_report(args.config)
    if settings is None:
        return 1
    cams = {c.id: c for c in settings.cameras}
    if args.camera not in cams:
        print(f"no camera {args.camera!r} in {args.config}; cameras: {', '.join(cams) or 'none'}", file=sys.stderr)
        return 1
    try:
        summary = replay(cams[args.camera], args.video, args.every_frame, args.save_evidence, args.max_frames)
    except (ModelError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"{summary['camera']}: {summary['frames']} frames in {summary['seconds']} s")
        for name, counts in summary["lines"].items():
            print(f"  line {name}: in {counts['in']} out {counts['out']}")
        for name, z in summary["zones"].items():
            print(f"  zone {name}: peak {z['peak']} (limit {z['limit']})")
        print(f"  alarms: {len(summary['alarms'])}")
    return 0
