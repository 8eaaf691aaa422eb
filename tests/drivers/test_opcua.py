"""The OPC UA driver against a real asyncua server: subscription, poll, quality, trust, restart.

The server runs on its own thread (tests/support/opcua_server.py); the poller and driver run
on the test's loop exactly as in the agent, records go to a ListSink.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from asyncua import ua

from agent.cli import main as cli_main
from buffer.record import Kind
from buffer.sink import ListSink
from config import ConfigError, load_settings_text
from config.drivers import OpcUaDevice
from drivers.device import DevicePoller
from drivers.registry import make_driver
from tests.support.broker import free_port
from tests.support.opcua_server import CertFiles, OpcUaServer, make_cert

VARIABLES = {"Speed": 1.5, "Count": 3, "Run": True, "Level": 0.25, "Polled": 1}
HEAD = "gateway: {site: s, id: g}\n"


def opcua_device(endpoint: str, **kw: Any) -> OpcUaDevice:
    base: dict[str, Any] = {
        "id": "plc-line1",
        "protocol": "opcua",
        "endpoint": endpoint,
        "publishing_interval": 0.05,
        "timeout": 1.0,
        "backoff_after": 2,
        "backoff_interval": 0.3,
        # a long poll interval: a change seen within it came through the subscription
        "groups": [{"name": "default", "interval": 30}],
        "points": [
            {"name": "speed", "node": "ns=2;s=Speed", "unit": "m/s"},
            {"name": "count", "node": "ns=2;s=Count", "scale": 2},
            {"name": "run", "node": "ns=2;s=Run"},
            {"name": "level", "node": "ns=2;s=Level", "unit": "m"},
            {"name": "ghost", "node": "ns=2;s=NoSuchTag"},
        ],
    }
    return OpcUaDevice(**(base | kw))


@pytest.fixture(scope="module")
def server() -> Iterator[OpcUaServer]:
    """One plain server for the tests that only read and write variables (a start costs seconds);
    each test changes only its own variables."""
    srv = OpcUaServer(free_port(), VARIABLES).start()
    yield srv
    srv.stop()


def values(sink: ListSink) -> list[dict[str, Any]]:
    return [r.payload["values"] for r in sink.records if r.kind is Kind.TELEMETRY]


def last(sink: ListSink, point: str) -> dict[str, Any] | None:
    seen = [v[point] for v in values(sink) if point in v]
    return seen[-1] if seen else None


async def until(what: str, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Wait on the loop (the poller runs on it) until ``predicate`` is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@asynccontextmanager
async def running(dev: OpcUaDevice, sink: ListSink) -> AsyncIterator[DevicePoller]:
    poller = DevicePoller(dev, list(dev.points), sink, make_driver(dev, {}))
    stop = asyncio.Event()
    tasks = [asyncio.create_task(poller.run_group(g, stop)) for g in poller.groups]
    try:
        yield poller
    finally:
        stop.set()
        await asyncio.wait(tasks, timeout=5)
        await poller.driver.close()


def test_subscription_delivers_values_changes_and_the_servers_quality(server: OpcUaServer) -> None:
    sink = ListSink()

    async def go() -> None:
        async with running(opcua_device(server.endpoint), sink) as poller:
            first = await until("the first values", lambda: last(sink, "speed"))
            assert first["v"] == 1.5 and first["q"] == "good" and first["unit"] == "m/s" and "src_ts" in first
            assert last(sink, "count") == {"v": 6.0, "q": "good", "src_ts": last(sink, "count")["src_ts"]}  # scaled
            assert last(sink, "run")["v"] is True
            ghost = last(sink, "ghost")
            assert ghost["q"] == "bad" and ghost["v"] is None
            assert "ns=2;s=NoSuchTag" in ghost["reason"] and "BadNodeIdUnknown" in ghost["reason"]
            # a data change on the server arrives long before the next poll (30 s)
            started = time.monotonic()
            server.set("Speed", 2.75)
            changed = await until("the change", lambda: last(sink, "speed")["v"] == 2.75 and last(sink, "speed"))
            assert changed["q"] == "good" and time.monotonic() - started < 5
            # the server's status codes: uncertain keeps the value and says why, bad has none
            server.set_status("Level", 0.5, ua.StatusCodes.UncertainSensorNotAccurate)
            unc = await until("uncertain", lambda: last(sink, "level")["q"] == "uncertain" and last(sink, "level"))
            assert unc["v"] == 0.5 and "UncertainSensorNotAccurate" in unc["reason"]
            server.set_status("Level", 0.0, ua.StatusCodes.BadSensorFailure)
            bad = await until("bad", lambda: last(sink, "level")["q"] == "bad" and last(sink, "level"))
            assert bad["v"] is None and "ns=2;s=Level: BadSensorFailure" in bad["reason"]
            assert poller.health.state == "ok"  # one bad node is that point's problem, not the device's

    asyncio.run(go())
    assert {r.source for r in sink.records} == {"plc-line1"}


def test_poll_mode_reads_every_point_in_one_request_each_interval(server: OpcUaServer) -> None:
    sink = ListSink()
    points = [{"name": "polled", "node": "ns=2;s=Polled", "scale": 2}, {"name": "ghost", "node": "ns=2;s=NoSuchTag"}]
    dev = opcua_device(server.endpoint, mode="poll", groups=[{"name": "default", "interval": 0.1}], points=points)

    async def go() -> None:
        async with running(dev, sink) as poller:
            await until("the first values", lambda: last(sink, "polled"))
            assert last(sink, "ghost")["q"] == "bad" and "ns=2;s=NoSuchTag" in last(sink, "ghost")["reason"]
            server.set("Polled", 10)
            await until("the polled change", lambda: last(sink, "polled")["v"] == 20.0)
            assert poller.requests_issued >= 2 and len(poller.blocks("default")) == 1

    asyncio.run(go())


def test_server_down_at_start_then_restarted_mid_run_values_resume() -> None:
    port = free_port()
    srv = OpcUaServer(port, VARIABLES)
    sink = ListSink()

    async def go() -> None:
        # each poll checks the session (and reconnects): 0.2 s here; changes still come only by subscription
        async with running(opcua_device(srv.endpoint, groups=[{"name": "default", "interval": 0.2}]), sink) as poller:
            prepared = asyncio.create_task(asyncio.to_thread(srv.prepare))  # the address space, not yet listening
            down = await until("bad quality while down", lambda: last(sink, "speed"))
            assert down["q"] == "bad" and "connection refused" in down["reason"] and srv.endpoint in down["reason"]
            await until("backoff", lambda: poller.health.state == "backoff")
            await prepared
            await asyncio.to_thread(srv.listen)
            await until("values once the server is up", lambda: last(sink, "speed")["q"] == "good")
            # restart: every connection, session and subscription is closed; the port refuses meanwhile
            await asyncio.to_thread(srv.pause)
            await until("bad while restarting", lambda: last(sink, "speed")["q"] == "bad")
            await asyncio.to_thread(srv.set, "Speed", 7.5)
            await asyncio.to_thread(srv.listen)
            await until("values after the restart", lambda: last(sink, "speed")["v"] == 7.5)
            # the subscription was re-created: changes are pushed again
            await asyncio.to_thread(srv.set, "Speed", 8.25)
            await until("a pushed change after the restart", lambda: last(sink, "speed")["v"] == 8.25)
            assert poller.health.state == "ok"

    try:
        asyncio.run(go())
    finally:
        srv.stop()
    states = [r.payload["state"] for r in sink.records if r.kind is Kind.EVENT]
    assert states[:2] == ["offline", "backoff"] and states.count("ok") == 2, states


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, CertFiles]:
    return {
        "plc": make_cert(tmp_path / "pki", "plc", "urn:headframe:test-plc", client=False),
        "impostor": make_cert(tmp_path / "pki", "impostor", "urn:headframe:test-plc", client=False),
        "gw": make_cert(tmp_path / "pki", "gw", "urn:headframe:gateway", client=True),
    }


def _secure(gw: CertFiles, trusted: Path) -> dict[str, Any]:
    key = "trust_dir" if trusted.is_dir() else "server_certificate"
    return {"security": {"policy": "Basic256Sha256", "certificate": gw.cert, "private_key": gw.key, key: trusted}}


def probe(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``headframe probe opcua ...`` as a technician runs it (in this process: a start costs seconds)."""
    code = cli_main(["probe", "opcua", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_probe_browses_variables_with_their_node_ids_and_reads_nodes(server: OpcUaServer, capsys) -> None:
    code, out, err = probe(capsys, server.endpoint, "--browse", "ns=2;s=Plant")
    assert code == 0, err
    rows = {line.split()[1]: line for line in out.splitlines()}
    assert "Int64 = 3" in rows["ns=2;s=Count"] and "Boolean = True" in rows["ns=2;s=Run"] and "Double" in rows["ns=2;s=Speed"]
    code, out, err = probe(capsys, server.endpoint, "--read", "ns=2;s=Count", "--read", "ns=2;s=Nope")
    assert code == 0 and "ns=2;s=Count = 3" in out and "ns=2;s=Nope: BadNodeIdUnknown" in out
    code, out, err = probe(capsys, server.endpoint, "--read", "ns=2;Speed")
    assert code == 2 and "ns=2;s=Hoist.Speed" in err


def test_untrusted_server_certificate_refused_and_login_password_never_shown(
    certs: dict[str, CertFiles], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys
) -> None:
    """One secured server (a start costs seconds): an untrusted certificate, then the trusted one
    with the right password (from the environment), a wrong one and an unset variable."""
    secret = "s3cret-Pw-42"
    srv = OpcUaServer(free_port(), VARIABLES, secure=certs["impostor"], users={"operator": secret}).start()
    monkeypatch.setenv("HF_TEST_OPCUA_PW", secret)
    monkeypatch.setenv("HF_TEST_OPCUA_WRONG", "not-" + secret)
    sinks = {k: ListSink() for k in ("untrusted", "good", "wrong", "unset")}

    trust_dir = certs["gw"].cert.parent / "trusted"
    trust_dir.mkdir()

    def dev(trust: Path, env: str) -> OpcUaDevice:
        login = {"username": "operator", "password_env": env}
        return opcua_device(srv.endpoint, login=login, **_secure(certs["gw"], trust))

    async def go() -> None:
        async with running(dev(certs["plc"].cert, "HF_TEST_OPCUA_PW"), sinks["untrusted"]) as poller:
            await until("refusal", lambda: last(sinks["untrusted"], "speed"))
            await until("offline", lambda: poller.health.state in ("offline", "backoff"))
        # the technician saves this server's certificate into the trust directory (after comparing
        # the fingerprint): an encrypted session, the password accepted, values
        code, out, err = await asyncio.to_thread(probe, capsys, srv.endpoint, "--save-cert", str(trust_dir / "plc.der"))
        assert code == 0 and "CN=impostor" in out, err
        async with running(dev(trust_dir, "HF_TEST_OPCUA_PW"), sinks["good"]) as poller:
            await until("values over Basic256Sha256", lambda: last(sinks["good"], "speed"))
            client = poller.driver._client  # type: ignore[attr-defined]
            assert client.security_policy.URI.endswith("#Basic256Sha256")
        for case, env in (("wrong", "HF_TEST_OPCUA_WRONG"), ("unset", "HF_TEST_OPCUA_UNSET")):
            async with running(dev(trust_dir, env), sinks[case]):
                await until(f"{case} password refused", lambda case=case: last(sinks[case], "speed"))

    try:
        asyncio.run(go())
    finally:
        srv.stop()
    refused = last(sinks["untrusted"], "speed")
    assert refused is not None and refused["q"] == "bad" and refused["v"] is None
    assert "server certificate not trusted: 'CN=impostor'" in refused["reason"]
    assert "security.server_certificate" in refused["reason"] and "SHA-256" in refused["reason"]
    events = [r.payload for r in sinks["untrusted"].records if r.kind is Kind.EVENT]
    assert events[0]["state"] == "offline" and "not trusted" in events[0]["reason"]
    assert last(sinks["good"], "speed")["q"] == "good"
    assert "server refused the login of user 'operator'" in last(sinks["wrong"], "speed")["reason"]
    assert "environment variable HF_TEST_OPCUA_UNSET is not set" in last(sinks["unset"], "speed")["reason"]
    shown = repr([r.payload for sink in sinks.values() for r in sink.records]) + caplog.text
    assert secret not in shown


@pytest.mark.parametrize(
    ("point_or_device", "line", "key", "words"),
    [
        ("      - {name: s, node: 'ns=2;q=Speed'}\n", 7, "devices[0].points[0].node", "ns=2;s=Hoist.Speed"),
        ("      - {name: s, node: 'ns=70000;i=1'}\n", 7, "devices[0].points[0].node", "ns=3;i=1001"),
        ("      - {name: s, node: 'nsu=urn:plc;s=X'}\n", 7, "devices[0].points[0].node", "ns=3;i=1001"),
        ("      - {name: s, address: 3, node: 'ns=2;i=3'}\n", 3, "devices[0]", "no address on point s"),
        ("      - {name: s}\n", 3, "devices[0]", "'node:'"),
        (
            "      - {name: s, node: 'i=3'}\n    security: {policy: Basic256Sha256, certificate: a.der, private_key: k.pem}\n",
            8,
            "devices[0].security",
            "'server_certificate' or 'trust_dir'",
        ),
        (
            "      - {name: s, node: 'i=3'}\n    security: {certificate: a.der}\n",
            8,
            "devices[0].security",
            "policy Basic256Sha256",
        ),
        (
            "      - {name: s, node: 'i=3'}\n    login: {username: op, password_file: p, password_env: P}\n",
            8,
            "devices[0].login",
            "exactly one of",
        ),
        ("      - {name: s, node: 'i=3'}\n    host: 10.0.0.1\n", 8, "devices[0].host", "endpoint: opc.tcp://host:4840"),
        (
            "      - {name: s, node: 'i=3'}\n    login: {username: op, password_env: P}\n",
            3,
            "devices[0]",
            "password goes in clear",
        ),
        ('      - {name: s, node: "ns=2;s=X\\n[ERROR] fake"}\n', 7, "devices[0].points[0].node", "node id"),
    ],
)
def test_opcua_config_errors_name_the_key(point_or_device: str, line: int, key: str, words: str) -> None:
    text = HEAD + "devices:\n  - id: plc\n    protocol: opcua\n    endpoint: opc.tcp://10.0.0.40:4840\n    points:\n"
    with pytest.raises(ConfigError) as info:
        load_settings_text(text + point_or_device, "site.yaml")
    msgs = [str(p) for p in info.value.problems]
    hit = [m for m in msgs if m.startswith(f"site.yaml:{line}:") and f" {key}:" in m]
    assert hit and words in hit[0], msgs


def test_endpoint_with_a_password_in_it_is_refused_without_echoing_it() -> None:
    text = HEAD + "devices:\n  - id: plc\n    protocol: opcua\n    endpoint: opc.tcp://op:s3cret@10.0.0.40:4840\n"
    with pytest.raises(ConfigError) as info:
        load_settings_text(text + "    points: [{name: s, node: 'i=3'}]\n", "site.yaml")
    assert "use 'login:'" in str(info.value) and "s3cret" not in str(info.value)
