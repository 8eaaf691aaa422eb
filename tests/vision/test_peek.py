"""The worker side of the page's peek never stalls the analysis; the agent side gets the right answer."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time

import numpy as np

from tests.vision.conftest import read_frames
from vision.peek import PeekLine, PeekServer
from vision.trail import Trail, TrailFrame


class BigTrail:
    """A trail whose copy pickles far larger than a pipe's buffer (64 KiB)."""

    def copy(self) -> Trail:
        frames = tuple(
            TrailFrame(
                i, float(i), tuple((k, "person", i + 0.5, k + 0.5, 10.5, 20.5, 0, ((i, 5.5 + k, 20.5 + i),)) for k in range(20))
            )
            for i in range(3000)
        )
        return Trail("cam-1", (768, 576), frames)


def test_an_answer_nobody_reads_does_not_block_the_worker_and_the_next_answer_is_the_right_one() -> None:
    line = PeekLine(mp.get_context("spawn"))
    server = PeekServer(line.renew())
    server.trail = BigTrail()  # type: ignore[assignment]
    server.offer(read_frames("vtest.avi", 1)[0], 123.0)
    line._conn.send((99, "trail"))  # type: ignore[union-attr]  # an agent that asks and then gives up

    served = threading.Thread(target=server.serve, args=(True, None), daemon=True)
    served.start()
    served.join(2.0)
    assert not served.is_alive(), "the worker's loop waited for the agent to read"

    stop = threading.Event()

    def worker_loop() -> None:  # the worker goes on, answering between frames
        while not stop.is_set():
            server.serve(False, "end of file x")
            time.sleep(0.01)

    loop = threading.Thread(target=worker_loop, daemon=True)
    loop.start()
    try:
        answer = line.ask("snapshot", timeout=5.0)  # drains the stale trail first
    finally:
        stop.set()
        loop.join(2)
    assert answer["online"] is False and answer["error"] == "end of file x" and answer["ts"] == 123.0
    jpeg = np.frombuffer(answer["jpeg"], np.uint8)
    assert jpeg[:2].tobytes() == b"\xff\xd8" and len(jpeg) > 5000
