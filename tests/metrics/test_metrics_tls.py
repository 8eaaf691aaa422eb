"""/metrics over mutual TLS on a real agent: the scraper with the CA's client certificate reads, others cannot."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics.exporter import MetricsExporter
from config import ConfigError, load_settings
from config.metrics import MetricsSettings
from tests.support.agentproc import AgentProcess, write_config
from tests.support.broker import MosquittoBroker, free_port
from tests.support.certs import make_tls_files
from tests.support.wait import wait_until


def _get(url: str, ctx: ssl.SSLContext) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
            return resp.read().decode()
    except (urllib.error.URLError, OSError):
        return None


def test_mutual_tls_lets_only_the_scraper_with_a_certificate_in(
    tmp_path: Path, broker: MosquittoBroker, agents: list[AgentProcess]
) -> None:
    tls = make_tls_files(tmp_path / "tls")
    port = free_port()
    metrics = {
        "enabled": True,
        "port": port,
        "tls": {"cert_file": str(tls.server_cert), "key_file": str(tls.server_key), "client_ca_file": str(tls.ca)},
    }
    cfg = write_config(tmp_path / "c.yaml", broker.port, buffer_path=tmp_path / "buf.db", extra={"metrics": metrics})
    agents.append(agent := AgentProcess(cfg))
    url = f"https://127.0.0.1:{port}/metrics"
    with_cert = ssl.create_default_context(cafile=str(tls.ca))
    with_cert.load_cert_chain(str(tls.client_cert), str(tls.client_key))

    def sample_names() -> set[str]:
        text = _get(url, with_cert)
        return {s.name for f in text_string_to_metric_families(text or "") for s in f.samples}

    # a family's HELP/TYPE lines are there from the start; its samples only once a health record was built
    names = wait_until(
        "a health record's samples over mutual TLS", lambda: (n := sample_names()) and "headframe_buffer_last_seq" in n and n
    )
    assert "headframe_uplink_connected" in names
    without_cert = ssl.create_default_context(cafile=str(tls.ca))
    assert _get(url, without_cert) is None
    assert _get(f"http://127.0.0.1:{port}/metrics", ssl.create_default_context()) is None  # no clear text either
    assert agent.terminate() == 0


def test_a_bad_certificate_is_named_and_mtls_allows_a_remote_listener(tmp_path: Path) -> None:
    tls = make_tls_files(tmp_path / "tls")
    settings = MetricsSettings.model_validate(
        {"enabled": True, "port": free_port(), "tls": {"cert_file": str(tmp_path / "nope.pem"), "key_file": str(tls.server_key)}}
    )
    exporter = MetricsExporter(settings, "s", "g")
    assert exporter.start() is False
    assert exporter.error is not None and "nope.pem" in exporter.error
    # mutual TLS authenticates the scraper: another address is then allowed without allow_remote
    mtls = {"cert_file": str(tls.server_cert), "key_file": str(tls.server_key), "client_ca_file": str(tls.ca)}
    cfg = write_config(
        tmp_path / "c.yaml", 1883, buffer_path=tmp_path / "b.db", extra={"metrics": {"listen": "0.0.0.0", "tls": mtls}}
    )
    load_settings(cfg)
    del mtls["client_ca_file"]
    write_config(cfg, 1883, buffer_path=tmp_path / "b.db", extra={"metrics": {"listen": "0.0.0.0", "tls": mtls}})
    with pytest.raises(ConfigError, match="allow_remote: true"):
        load_settings(cfg)
