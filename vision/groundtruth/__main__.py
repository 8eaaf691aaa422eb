"""``python -m vision.groundtruth``: build the walker bank, write labelled clips.

python -m vision.groundtruth walkers            # cut walkers from hil/media/vtest.avi (once; committed)
python -m vision.groundtruth make dev heldout   # write clips + truth to build/groundtruth/<set>/
python -m vision.groundtruth make dev --clips 3 --out /tmp/gt
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import cv2

from vision.groundtruth import walkers as bank_mod
from vision.groundtruth.compose import render
from vision.groundtruth.detcache import CachedDetector
from vision.groundtruth.sets import MEDIA, SETS, SetSpec, make_clip

BANK = Path(__file__).resolve().parent / "bank"
OUT = Path(__file__).resolve().parents[2] / "build" / "groundtruth"
SOURCE = MEDIA / "vtest.avi"
TRUTH_KEYS = ("events", "in", "out")  # what a change of the truth rule alone rewrites (not the video)


def build_bank(folder: Path = BANK) -> int:
    det = CachedDetector("nanodet_m_416", 0.5)
    bg, walkers = bank_mod.build(SOURCE, det)
    sha = hashlib.sha256(SOURCE.read_bytes()).hexdigest()
    provenance: dict[str, object] = {
        "source": "hil/media/vtest.avi",
        "sha256": sha,
        "method": "temporal median background (every 4th of 795 frames); people: NanoDet-m 416 at 0.5 + vision.tracker, "
        "frames where the track's box stands clear of all other detections, cut by difference to the background",
        "licence": "as vtest.avi (OpenCV: Apache-2.0 / BSD-3-Clause), see hil/media/PROVENANCE.md",
    }
    bank_mod.save(folder, bg, walkers, provenance)
    print(f"{len(walkers)} walkers, background {bg.shape[1]}x{bg.shape[0]} -> {folder}")
    return 0


def write_set(spec: SetSpec, out: Path, clips: int | None = None) -> list[dict[str, Any]]:
    """Write (or reuse, if unchanged) the set's clips; return their truth records."""
    still, walkers = bank_mod.load(BANK)
    folder = out / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(clips if clips is not None else spec.clips):
        clip, bgs = make_clip(spec, i, walkers, still)
        desc = clip.describe()
        video = folder / f"{clip.name}.avi"
        truth_file = folder / f"{clip.name}.json"
        desc["video"] = video.name
        old = json.loads(truth_file.read_text()) if truth_file.is_file() else {}
        same_picture = {k: v for k, v in old.items() if k not in TRUTH_KEYS} == {
            k: v for k, v in desc.items() if k not in TRUTH_KEYS
        }
        if not (video.is_file() and same_picture):
            writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), clip.fps, clip.size)
            if not writer.isOpened():
                raise RuntimeError(f"cannot write {video} (OpenCV without an MJPG writer?)")
            seed = spec.seed * 1000 + i
            for f in range(clip.frames):
                writer.write(render(clip, walkers, bgs, f, seed))
            writer.release()
        if old != desc:
            truth_file.write_text(json.dumps(desc, indent=1) + "\n")
        records.append({**desc, "path": str(video)})
    (folder / "index.json").write_text(json.dumps([{k: r[k] for k in ("name", "in", "out")} for r in records], indent=1) + "\n")
    return records


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vision.groundtruth", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("walkers", help="cut the walker bank from hil/media/vtest.avi into vision/groundtruth/bank/")
    mk = sub.add_parser("make", help="write a set's clips (MJPG .avi) and truth (.json)")
    mk.add_argument("sets", nargs="+", choices=sorted(SETS))
    mk.add_argument("--out", type=Path, default=OUT)
    mk.add_argument("--clips", type=int, help="only the first N clips of each set")
    args = ap.parse_args(argv)
    if args.cmd == "walkers":
        return build_bank()
    for name in args.sets:
        records = write_set(SETS[name], args.out, args.clips)
        total = {d: sum(r[d] for r in records) for d in ("in", "out")}
        print(f"{name}: {len(records)} clips, truth in {total['in']} out {total['out']} -> {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
