"""Fixtures of the ramp tests: a federation of stand-in members and a real redirector."""

from __future__ import annotations

import asyncio
import http.client
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from federation_deploy.config import Federation, load_federation
from federation_deploy.redirector import load_config, make_app
from federation_deploy.sandbox.member import StandinHandle, start_standin
from federation_deploy.traffic.publish import publish_file

# Comments, blank lines, quoting and key order here are what the round-trip must keep.
FEDERATION_YAML = """\
# Test federation for the ramp: every member is a stand-in on 127.0.0.1.

redirector:
  host: redirector.test
  member: alpha                # runs the redirector
  release: federation-redirect
  load_balancer: rendezvous
  check:
    period: 0.2                # fast health checks, for tests only
    jitter: 0
    retries: 1
    timeout: 1
    failed_period: 0.3
  pod_headroom: 10
  host_cookie_age_hours: 4

members:
  # The prime.
  alpha:
    url: {alpha}
    cloud: kubeconfig
    prime: true
    weight: 60                 # the prime's weight
    cluster:
      kubeconfig: alpha-kubeconfig.yml
    releases:
      - name: federation-redirect
        chart: package:federation-redirect
        version: "0.1.0"
        namespace: federation-redirect

  # A partner's member: routed to, never deployed, never ramped.
  beta:
    url: {beta}
    cloud: external
    weight: 40

  # The new member the tests ramp.
  gamma:
    url: "{gamma}"             # quoted on purpose: quoting must survive the ramp
    cloud: kubeconfig
    weight: 0                  # zero until ramped
    target_weight: 100         # 50% of launches once the ramp is complete
    cluster:
      kubeconfig: 'gamma-kubeconfig.yml'
"""

MEMBERS = ("alpha", "beta", "gamma")


@dataclass
class StandinFederation:
    config_dir: Path
    standins: dict[str, StandinHandle]

    @property
    def path(self) -> Path:
        return self.config_dir / "federation.yaml"

    def load(self) -> Federation:
        return load_federation(self.config_dir)

    def url_to_member(self) -> dict[str, str]:
        return {s.url: name for name, s in self.standins.items()}


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[StandinFederation]:
    """config/federation.yaml of three members, each a running stand-in."""
    standins = {name: start_standin(name) for name in MEMBERS}
    try:
        config_dir = tmp_path / "config"
        config_dir.mkdir()
        text = FEDERATION_YAML.format(**{n: s.url for n, s in standins.items()})
        (config_dir / "federation.yaml").write_text(text)
        yield StandinFederation(config_dir, standins)
    finally:
        for standin in standins.values():
            standin.stop()


class RedirectorThread:
    """The real redirector (make_app) serving on 127.0.0.1 in a background thread, watching
    the config.json the ramp publishes to."""

    def __init__(self, config_path: Path, seed: int = 7) -> None:
        self.config_path = config_path
        self.seed = seed
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> RedirectorThread:
        ready = threading.Event()
        errors: list[BaseException] = []

        async def main() -> None:
            try:
                config = load_config(self.config_path)
                app = make_app(config, config_path=self.config_path,
                               rng=random.Random(self.seed), retry_delay=0.05,
                               reload_interval=0.1)
                server = HTTPServer(app)
                sockets = bind_sockets(0, "127.0.0.1")
                server.add_sockets(sockets)
                self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
                app.start()
                self._loop = asyncio.get_running_loop()
                self._stop = asyncio.Event()
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            await self._stop.wait()
            server.stop()
            await server.close_all_connections()
            await app.stop()

        self._thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True,
                                        name="redirector")
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def active_hosts(self) -> dict[str, dict[str, object]]:
        data = requests.get(self.url + "/active_hosts", timeout=5).json()
        hosts: dict[str, dict[str, object]] = data["active_hosts"]
        return hosts

    def wait_active(self, expected: Sequence[str], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self.active_hosts()) == set(expected):
                return
            time.sleep(0.05)
        raise AssertionError(f"active hosts {sorted(self.active_hosts())}, wanted {expected}")


@pytest.fixture
def published(federation: StandinFederation, tmp_path: Path) -> Path:
    """The redirector's config.json, published once from the initial federation.yaml."""
    path = tmp_path / "redirector" / "config.json"
    path.parent.mkdir()
    publish_file(federation.load(), path)
    return path


@pytest.fixture
def redirector(federation: StandinFederation, published: Path) -> Iterator[RedirectorThread]:
    running = RedirectorThread(published).start()
    try:
        running.wait_active(["alpha", "beta"])
        yield running
    finally:
        running.stop()


# --------------------------------------------------------------------------------------------
# Launch traffic: repositories with Zipf(1.1) popularity

ZIPF_S = 1.1
REPOSITORIES = 2000


def zipf_launch_paths(n: int, seed: int = 2024) -> list[str]:
    """n launch paths whose repositories follow Zipf(1.1) popularity over 2,000 repositories
    (a fixed sample: the same seed gives the same launches)."""
    rng = random.Random(seed)
    weights = [1.0 / (k ** ZIPF_S) for k in range(1, REPOSITORIES + 1)]
    ranks = rng.choices(range(1, REPOSITORIES + 1), weights=weights, k=n)
    return [f"/build/gh/org{r % 17}/repo-{r}/HEAD" for r in ranks]


def send_launches(redirector_url: str, paths: Sequence[str],
                  url_to_member: dict[str, str]) -> Counter[str]:
    """Launch each path once as a new browser and count the member each 307 points to.

    http.client, not requests: it has no cookie jar at all (no `host` cookie is ever sent, so
    every launch is a first visit) and never follows redirects, and it is about four times
    faster, which is what lets 20,000 real launches run in about ten seconds. One keep-alive
    connection; each launch is still its own request to the real redirector.
    """
    parts = urlsplit(redirector_url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    counts: Counter[str] = Counter()
    try:
        for path in paths:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 307, response.status
            location = response.getheader("Location") or ""
            member = next(name for url, name in url_to_member.items()
                          if location.startswith(url + "/"))
            counts[member] += 1
    finally:
        conn.close()
    return counts

