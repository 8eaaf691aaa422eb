"""A record sent as several messages (split: point) is acked to the buffer only when the broker
acknowledged every one of them; a session lost in between leaves it in the buffer, whole."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from agent.uplink.drain import Drain
from buffer.boundary import BufferService
from config import load_settings_text
from tests.mapping.helpers import TS, telemetry


def test_a_split_record_is_acked_once_all_its_messages_are(tmp_path: Path) -> None:
    settings = load_settings_text(json.dumps({"gateway": {"site": "s", "id": "g"}, "buffer": {"path": str(tmp_path / "b.db")}}))

    async def scenario() -> None:
        buffer = BufferService(settings)
        await buffer.open()
        try:
            [seq] = await buffer.append([telemetry(ts=TS)])
            drain = Drain(settings.uplink, buffer, formatter=None, wake=asyncio.Event(), beat=lambda: None)  # type: ignore[arg-type]
            [leased] = await buffer.lease(10)
            drain.inflight.update({101: leased.seq, 102: leased.seq})  # what the publish loop records for 2 parts
            drain._parts[leased.seq] = 2
            drain.on_ack(101)
            await drain.flush_acks(force=True)
            assert drain.acked == 0, "one part of two acknowledged: the record stays"
            await drain.reset()  # the session is lost here
            again = await buffer.lease(10)
            assert [r.seq for r in again] == [seq], "leased again, whole"
            drain.inflight.update({201: seq, 202: seq})
            drain._parts[seq] = 2
            drain.on_ack(202)
            drain.on_ack(201)
            await drain.flush_acks(force=True)
            assert drain.acked == 1 and (await buffer.stats())["depth"] == 0
        finally:
            await buffer.close()

    asyncio.run(scenario())
