"""The config key map lives in a side file written once per config, not in every state save."""

from __future__ import annotations

from pathlib import Path

import orjson

from agent.continuity.state import ContinuityState, StateFile


def _state(config_hash: str, n: int) -> ContinuityState:
    keys = {f"devices[d{i // 100}].points[r{i % 100}].scale": f"{i:016x}" for i in range(n)}
    return ContinuityState(last_seq=5, config_hash=config_hash, file_hash="f", config_keys=keys)


def test_periodic_saves_do_not_rewrite_the_key_map_and_a_restart_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "buf.db.continuity.json"
    f = StateFile(path)
    state = _state("sha256:aaa", 20_000)
    f.save(state)
    keys_file = f.keys_path("sha256:aaa")
    inode = keys_file.stat().st_ino
    for seq in range(6, 10):  # the periodic saves while records flow
        state.last_seq = seq
        f.save(state)
    assert keys_file.stat().st_ino == inode, "the key map was rewritten by a periodic save"
    assert len(path.read_bytes()) < 2000, "the state still carries the key map inline"
    loaded = StateFile(path).load()
    assert loaded is not None and loaded.last_seq == 9 and loaded.config_keys == state.config_keys

    state.config_hash, state.config_keys = "sha256:bbb", {"uplink.host": "1"}  # a new config applied
    f.save(state)
    assert not keys_file.exists(), "the old config's key map is left behind"
    again = StateFile(path).load()
    assert again is not None and again.config_keys == {"uplink.host": "1"}


def test_a_state_with_the_keys_inline_still_loads(tmp_path: Path) -> None:
    """State files written before the side file existed keep their key map."""
    path = tmp_path / "s.json"
    doc = _state("sha256:ccc", 3).to_doc()
    path.write_bytes(orjson.dumps(doc))
    loaded = StateFile(path).load()
    assert loaded is not None and loaded.config_keys == doc["config"]["keys"]


def test_a_key_map_of_another_config_is_not_used(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    f = StateFile(path)
    f.save(_state("sha256:ddd", 3))
    f.keys_path("sha256:ddd").write_bytes(orjson.dumps({"hash": "sha256:other", "keys": {"x": "1"}}))
    loaded = StateFile(path).load()
    assert loaded is not None and loaded.config_keys == {}
