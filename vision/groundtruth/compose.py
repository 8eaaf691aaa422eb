"""Scenes with exact counting truth: real walkers moved along known paths over an empty scene.

A clip is a counting line plus *events*; each event is one or more walkers following straight
paths (with optional dwelling), so how often and which way each foot point crosses the line
segment is known by construction. Walkers are drawn far-to-near (nearer people occlude farther
ones), scaled by a perspective model (small far away, large near), and the whole frame then
gets the clip's lighting and sensor noise.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from vision.groundtruth.walkers import Walker

Vec = np.ndarray


@dataclass
class Actor:
    """One walker in a clip: foot positions per clip frame (NaN = not in the scene)."""

    walker: int
    feet: np.ndarray  # [frames, 2] pixels
    phase: int


@dataclass
class Event:
    kind: str  # cross | linger | turn_back | parallel | pair | group | counterflow
    actors: list[int]  # indices into Clip.actors
    crossings: dict[str, int]  # truth of this event: {"in": n, "out": n}
    frame: int  # when its first foot crosses (or comes closest to) the line


@dataclass
class Clip:
    name: str
    size: tuple[int, int]  # width, height
    frames: int
    fps: float
    line: tuple[tuple[float, float], tuple[float, float]]  # normalised A, B; "in" = to the right of A→B
    background: str
    lighting: dict[str, float]
    perspective: tuple[float, float]  # person height (px) at the top and the bottom row
    actors: list[Actor] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    occluders: list[tuple[int, int, int, int]] = field(default_factory=list)  # x, y, w, h, drawn in front

    def truth(self) -> dict[str, int]:
        return {d: sum(e.crossings[d] for e in self.events) for d in ("in", "out")}

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": list(self.size),
            "frames": self.frames,
            "fps": self.fps,
            "line": [list(self.line[0]), list(self.line[1])],
            "background": self.background,
            "lighting": self.lighting,
            "perspective": list(self.perspective),
            "walkers": sorted({a.walker for a in self.actors}),
            "paths": hashlib.sha256(b"".join(np.nan_to_num(a.feet, nan=-1).round(2).tobytes() for a in self.actors)).hexdigest()[
                :16
            ],
            "occluders": [list(o) for o in self.occluders],
            "events": [{"kind": e.kind, "frame": e.frame, **e.crossings} for e in self.events],
            **self.truth(),
        }


class LineFrame:
    """The clip's line in pixels: A, unit vector ``u`` along A→B, ``n`` to its right ("in" side)."""

    def __init__(self, clip: Clip) -> None:
        w, h = clip.size
        self.a = np.array([clip.line[0][0] * w, clip.line[0][1] * h])
        b = np.array([clip.line[1][0] * w, clip.line[1][1] * h])
        self.length = float(np.linalg.norm(b - self.a))
        self.u = (b - self.a) / self.length
        self.n = np.array([self.u[1], -self.u[0]])
        self.diag = math.hypot(w, h)

    def point(self, t: float, s: float) -> Vec:
        """``t`` along the segment (0..1), ``s`` pixels to the right (in) side."""
        return self.a + t * self.length * self.u + s * self.n

    def side(self, p: Vec) -> float:
        return float((p - self.a) @ self.n)


def height_at(clip: Clip, y: float) -> float:
    top, bottom = clip.perspective
    return top + (bottom - top) * min(1.0, max(0.0, y / clip.size[1]))


def walk(points: list[tuple[Vec, int]], clip: Clip, speed: float) -> list[Vec]:
    """Foot positions visiting ``points`` (each with a dwell in frames) at ``speed`` × body height per frame."""
    out: list[Vec] = [points[0][0]]
    rng = np.random.default_rng(int(abs(points[0][0][0] * 1000 + points[0][0][1])))
    for (p, _), (q, dwell) in itertools.pairwise(points):
        pos = p.astype(float)
        while True:
            step = speed * height_at(clip, pos[1])
            gap = q - pos
            dist = float(np.linalg.norm(gap))
            if dist <= step:
                break
            pos = pos + gap / dist * step
            out.append(pos)
        out.append(q.astype(float))
        for k in range(dwell):  # shuffling on the spot: a few pixels either way, never across the band
            jitter = np.array([math.sin(k * 0.7), math.cos(k * 0.5)]) * 0.04 * height_at(clip, q[1])
            out.append(q + jitter + rng.normal(0, 0.3, 2))
    return out


def place(clip: Clip, walker: int, path: list[Vec], start: int) -> int:
    feet = np.full((clip.frames, 2), np.nan)
    for k, p in enumerate(path):
        if 0 <= start + k < clip.frames:
            feet[start + k] = p
    clip.actors.append(Actor(walker, feet, phase=start % 7))
    return len(clip.actors) - 1


def crossing_frame(clip: Clip, line: LineFrame, actor: int) -> int:
    feet = clip.actors[actor].feet
    sides = np.array([line.side(p) if not np.isnan(p[0]) else np.nan for p in feet])
    ok = np.nonzero(~np.isnan(sides))[0]
    flips = [int(i) for i, j in itertools.pairwise(ok) if np.sign(sides[i]) != np.sign(sides[j])]
    return flips[0] if flips else int(ok[np.argmin(np.abs(sides[ok]))])


def render(clip: Clip, bank: list[Walker], background: list[np.ndarray], frame_index: int, seed: int) -> np.ndarray:
    """Frame ``frame_index`` of the clip (deterministic for a given seed)."""
    w, h = clip.size
    frame = background[frame_index % len(background)].copy()
    visible = [(a.feet[frame_index], a) for a in clip.actors if not np.isnan(a.feet[frame_index][0])]
    for foot, actor in sorted(visible, key=lambda v: v[0][1]):  # far (higher up) first: near ones occlude
        walker = bank[actor.walker]
        k = (frame_index + actor.phase) % (2 * len(walker.frames) - 2)
        sprite = walker.frames[k if k < len(walker.frames) else 2 * len(walker.frames) - 2 - k]
        prev = actor.feet[max(0, frame_index - 3)]
        dx = foot[0] - prev[0] if not np.isnan(prev[0]) else 0.0
        if (dx < -0.5 and walker.moving_right) or (dx > 0.5 and not walker.moving_right):
            sprite = sprite[:, ::-1]
        target = height_at(clip, foot[1])
        scale = target / sprite.shape[0]
        sw, sh = max(2, round(sprite.shape[1] * scale)), max(2, round(target))
        sprite = cv2.resize(sprite, (sw, sh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        x0, y0 = round(foot[0] - sw / 2), round(foot[1] - sh)
        fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(w, x0 + sw), min(h, y0 + sh)
        if fx1 <= fx0 or fy1 <= fy0:
            continue
        part = sprite[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
        alpha = part[:, :, 3:] / 255.0
        region = frame[fy0:fy1, fx0:fx1].astype(np.float32)
        frame[fy0:fy1, fx0:fx1] = (part[:, :, :3] * alpha + region * (1 - alpha)).astype(np.uint8)
    for x, y, ow, oh in clip.occluders:  # a post or sign in front of the walkers: grey with a darker edge
        cv2.rectangle(frame, (x, y), (x + ow, y + oh), (90, 95, 100), thickness=cv2.FILLED)
        cv2.rectangle(frame, (x, y), (x + ow, y + oh), (40, 40, 45), thickness=2)
    light = clip.lighting
    out = frame.astype(np.float32) / 255.0
    out = np.power(out, light.get("gamma", 1.0)) * light.get("gain", 1.0)
    out = out * np.array([light.get("b", 1.0), light.get("g", 1.0), light.get("r", 1.0)], dtype=np.float32)
    rng = np.random.default_rng(seed * 100_003 + frame_index)
    out = out * 255.0 + rng.normal(0.0, light.get("noise", 2.0), out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)
