"""Real media for vision tests (from hil/media, see its PROVENANCE.md)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

MEDIA = Path(__file__).resolve().parents[2] / "hil" / "media"


def read_frames(name: str, n: int, step: int = 1) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(MEDIA / name))
    frames = []
    i = 0
    while len(frames) < n:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(frame)
        i += 1
    cap.release()
    return frames


@pytest.fixture(scope="session")
def vtest_frames() -> list[np.ndarray]:
    return read_frames("vtest.avi", 60)


@pytest.fixture(scope="session")
def person_image() -> np.ndarray:
    img = cv2.imread(str(MEDIA / "person.jpg"))
    assert img is not None
    return img
