"""Small geometry helpers in pixel coordinates."""

from __future__ import annotations

import math

import cv2
import numpy as np


def to_pixels(points: list[tuple[float, float]], width: int, height: int) -> np.ndarray:
    return np.array([(x * width, y * height) for x, y in points], dtype=np.float32)


def inside(polygon: np.ndarray, point: tuple[float, float]) -> bool:
    return cv2.pointPolygonTest(polygon.reshape(-1, 1, 2), point, False) >= 0


def signed_distance(a: np.ndarray, b: np.ndarray, p: tuple[float, float]) -> float:
    """Distance of p from the line A→B; positive on the right-hand side (image coordinates)."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = math.hypot(dx, dy) or 1.0
    return ((p[0] - a[0]) * dy - (p[1] - a[1]) * dx) / length


def within_segment(a: np.ndarray, b: np.ndarray, p: tuple[float, float], slack: float) -> bool:
    """Is p's projection on A→B within the segment (plus slack pixels at the ends)?"""
    dx, dy = b[0] - a[0], b[1] - a[1]
    length2 = dx * dx + dy * dy or 1.0
    t = ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2
    extra = slack / math.sqrt(length2)
    return -extra <= t <= 1 + extra


def polygon_mask(polygon: np.ndarray, width: int, height: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(mask, [polygon.astype(np.int32)], 255)
    return mask
