"""`traffic`: target shares, live state from the redirector, ramps in progress; the checks
the ramp uses (member /health, Prometheus error rate)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands.ramp import advance_ramp
from federation_deploy.commands.traffic import live_errors, traffic_report, traffic_table
from federation_deploy.errors import VerificationError
from federation_deploy.health.probe import check_member_health
from federation_deploy.traffic.live import (
    check_error_rate,
    error_rate_query,
    parse_prometheus_text,
)
from federation_deploy.traffic.publish import PublishTarget, make_publisher
from federation_deploy.traffic.ramp.engine import RampSettings
from tests.helpers.standin_federation import (
    RedirectorThread,
    StandinFederation,
    send_launches,
    zipf_launch_paths,
)


def cli_json(federation: StandinFederation, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--config-dir", str(federation.config_dir), *args])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_traffic_json_target_shares(federation: StandinFederation) -> None:
    rows = cli_json(federation, "traffic", "--output", "json")
    assert [(r["name"], r["weight"], r["share"]) for r in rows] == [
        ("alpha", 60, 60.0), ("beta", 40, 40.0), ("gamma", 0, 0.0)]
    assert all(r["ramp"] is None and "live" not in r for r in rows)


def test_traffic_live_and_ramp_in_progress(
    federation: StandinFederation, published: Path, redirector: RedirectorThread
) -> None:
    advance_ramp(federation.load(), "gamma", make_publisher(PublishTarget("file", published)),
                 steps=(1, 5), hold="1h",
                 settings=RampSettings(gate="time", redirector_url=redirector.url,
                                       poll_interval=0.05))
    send_launches(redirector.url, zipf_launch_paths(300), federation.url_to_member())
    federation.standins["beta"].set_healthy(False)
    redirector.wait_active(["alpha", "gamma"])

    rows = {r["name"]: r for r in cli_json(federation, "traffic", "-o", "json",
                                           "--redirector-url", redirector.url)}
    gamma = rows["gamma"]
    assert gamma["weight"] == 1.0101 and gamma["share"] == pytest.approx(1.0, abs=1e-3)
    assert gamma["ramp"]["step"] == 0 and gamma["ramp"]["percent"] == 1
    assert gamma["ramp"]["started"].endswith("Z") and gamma["ramp"]["last_healthy"]
    assert gamma["live"]["in_rotation"] and gamma["live"]["weight"] == 1.0101
    assert rows["beta"]["live"]["in_rotation"] is False
    assert rows["beta"]["live"]["healthy"] is False and rows["beta"]["live"]["reason"] == "Hub"
    assert rows["alpha"]["live"]["healthy"] is True
    # live share: over the members in rotation now (beta is out)
    assert rows["alpha"]["live"]["share"] == pytest.approx(100 * 60 / 61.0101, abs=1e-3)
    redirects = sum(r["live"]["redirects"] for r in rows.values())
    assert redirects == 300

    table = traffic_table(traffic_report(federation.load(), redirector.url))
    gamma_line = next(line for line in table.splitlines() if line.startswith("gamma "))
    assert "in rotation" in gamma_line and gamma_line.rstrip().endswith("step 1/3 (1%)")
    # the ramp's details below the table: it stays narrow (it was ~220 columns, issue 30)
    assert "\ngamma: ramp at step 1/3 (1%) since " in table and ", hold " in table
    assert max(len(line) for line in table.splitlines()) <= 120, table
    beta_line = next(line for line in table.splitlines() if line.startswith("beta"))
    assert "failing (Hub)" in beta_line


def test_traffic_with_unreachable_redirector_says_so(federation: StandinFederation) -> None:
    rows = traffic_report(federation.load(), "http://127.0.0.1:9")
    assert rows[0].live is not None and rows[0].live["errors"]
    assert live_errors(rows) and all("127.0.0.1:9" in e for e in live_errors(rows))
    # /active_hosts unread: rotation unknown, not "out"
    assert rows[0].live["in_rotation"] is None
    assert " out " not in traffic_table(rows)


def test_parse_prometheus_text() -> None:
    samples = parse_prometheus_text(
        '# HELP x y\n# TYPE x gauge\nfederation_health{member="a",reason=""} 1\n'
        'federation_health{member="b",reason="Hub \\"x\\""} 0\nplain 2.5 1700000000\n')
    assert [(s.name, dict(s.labels), s.value) for s in samples] == [
        ("federation_health", {"member": "a", "reason": ""}, 1.0),
        ("federation_health", {"member": "b", "reason": 'Hub "x"'}, 0.0),
        ("plain", {}, 2.5),
    ]


def test_member_health_check(federation: StandinFederation) -> None:
    gamma = federation.standins["gamma"]
    assert check_member_health(gamma.url + "/health").ok
    gamma.set_failing_check("Docker registry")
    result = check_member_health(gamma.url + "/health")
    assert not result.ok and "HTTP 503" in result.reason and "Docker registry" in result.reason
    result = check_member_health("http://127.0.0.1:9/health", timeout=1)
    assert not result.ok and "connection refused" in result.reason


# --------------------------------------------------------------------------------------------
# Prometheus: a tiny fake of the HTTP API on 127.0.0.1


class FakePrometheus:
    def __init__(self) -> None:
        self.value: str | None = "0.01"
        self.queries: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                if parts.path != "/api/v1/query":
                    self.send_error(404)
                    return
                fake.queries.append(parse_qs(parts.query)["query"][0])
                result = [] if fake.value is None else [
                    {"metric": {}, "value": [1700000000.0, fake.value]}]
                body = json.dumps({"status": "success",
                                   "data": {"resultType": "vector", "result": result}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    try:
        yield fake
    finally:
        fake.stop()


def test_error_rate_check(prometheus: FakePrometheus) -> None:
    assert check_error_rate(prometheus.url, "gamma", 0.05).ok
    assert prometheus.queries[-1] == error_rate_query("gamma")
    assert 'status="failure",member="gamma"' in prometheus.queries[-1]
    prometheus.value = "0.2"
    result = check_error_rate(prometheus.url, "gamma", 0.05)
    assert not result.ok and "20.0% is above 5.0%" in result.reason
    prometheus.value = "NaN"  # no launches in the window: 0 / 0
    assert check_error_rate(prometheus.url, "gamma", 0.05).ok
    prometheus.value = None
    assert check_error_rate(prometheus.url, "gamma", 0.05).ok
    assert not check_error_rate("http://127.0.0.1:9", "gamma", 0.05, timeout=1).ok


def test_ramp_rolls_back_on_a_high_error_rate(
    federation: StandinFederation, published: Path, redirector: RedirectorThread,
    prometheus: FakePrometheus,
) -> None:
    publish = make_publisher(PublishTarget("file", published))
    settings = RampSettings(redirector_url=redirector.url, prometheus_url=prometheus.url,
                            max_error_rate=0.05, poll_interval=0.05, check_interval=0.2,
                            gate="fixed")  # today's gate (the evidence gate: tests/traffic)
    advance_ramp(federation.load(), "gamma", publish, steps=(1, 5), hold="1h",
                 settings=settings)
    prometheus.value = "0.5"
    with pytest.raises(VerificationError, match=r"launch error rate 50\.0% is above 5\.0%"):
        advance_ramp(federation.load(), "gamma", publish, settings=settings)
    gamma = federation.load().members["gamma"]
    assert gamma.weight == 0 and gamma.ramp is not None and gamma.ramp.step == -1


def test_traffic_cli_unreachable_redirector_warns_first_and_exits_1(config_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "traffic",
                                      "--redirector-url", "http://127.0.0.1:9"])
    assert result.exit_code == 1, result.output
    # output: both streams in the order written
    assert result.output.index("warning: live state incomplete: ") < result.output.index("name")
    assert "127.0.0.1:9/active_hosts" in result.stderr
    gke = next(line for line in result.stdout.splitlines() if line.startswith("gke"))
    assert " ? " in gke and " out " not in gke  # unknown, not out of rotation


def test_traffic_cli_url_without_scheme_is_a_usage_error(config_dir: Path) -> None:
    for command in (["traffic"], ["ramp", "curvenote", "--yes", "--publish", "file:x.json"]):
        result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), *command,
                                          "--redirector-url", "mybinder.org"])
        assert result.exit_code == 2, result.output
        assert "--redirector-url: expected an http(s) URL like https://mybinder.org, got " \
               "'mybinder.org'" in result.stderr
        assert "InvalidSchema" not in result.output
