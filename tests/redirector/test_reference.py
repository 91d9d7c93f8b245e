"""The versions reference and last resort: the prime, or the member acting for a prime long
unhealthy. The choice as a pure function, then a real `redirector serve` process in front of
stand-in members, with a short prime_fallback_after (no sleeps: conditions are polled)."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from federation_deploy.redirector import parse_config
from federation_deploy.redirector.health_checks import HealthMonitor
from federation_deploy.redirector.reference import (
    HEALTHY,
    UNFIT,
    VERSIONS_ONLY,
    ReferenceKeeper,
)
from federation_deploy.sandbox.member import StandinHandle
from tests.redirector.conftest import hosts_config, wait_until, write_json_atomic
from tests.redirector.test_health_checks import FakeClock, FakeMembers, health
from tests.traffic.test_one_writer import RedirectorProcess, start_redirector, stop

V1 = {"binderhub": "1.0.0-0.dev.git.1.h1"}
V2 = {"binderhub": "1.0.0-0.dev.git.2.h2"}


def config(**extra: Any) -> Any:
    hosts = {n: {"url": f"https://{n}.example.org", "weight": w, "prime": n == "alpha"}
             for n, w in (("alpha", 60), ("beta", 40), ("gamma", 20))}
    return parse_config({"hosts": hosts, "prime_fallback_after": 600, **extra})


def test_the_prime_while_healthy_or_not_yet_long_unhealthy() -> None:
    keeper = ReferenceKeeper()
    cfg = config()
    checked = {"alpha": True, "beta": True, "gamma": True}
    assert keeper.choose(cfg, {"alpha": HEALTHY}, checked, 0).name == "alpha"
    assert keeper.choose(cfg, {}, {}, 5).reason == "the prime has not been checked yet"
    ranks = {"alpha": UNFIT, "beta": HEALTHY, "gamma": HEALTHY}
    first = keeper.choose(cfg, ranks, checked, 1000)
    assert (first.name, first.prime) == ("alpha", True)
    assert keeper.choose(cfg, ranks, checked, 1599).name == "alpha"
    acting = keeper.choose(cfg, ranks, checked, 1600)
    assert (acting.name, acting.prime) == ("beta", False)
    assert acting.reason == ("the prime alpha has been unhealthy for 600s, longer than "
                             "prime_fallback_after (600s): beta is the healthiest member with "
                             "the highest weight")


def test_healthy_beats_weight_and_the_acting_member_stays_when_all_fail() -> None:
    keeper = ReferenceKeeper()
    cfg = config(prime_fallback_after=10)
    checked = {"alpha": True, "beta": True, "gamma": True}
    keeper.choose(cfg, {"alpha": UNFIT}, checked, 0)
    # beta's /health passes but its versions differ from the old reference; gamma is healthy
    ranks = {"alpha": UNFIT, "beta": VERSIONS_ONLY, "gamma": HEALTHY}
    assert keeper.choose(cfg, ranks, checked, 10).name == "gamma"
    ranks = {"alpha": UNFIT, "beta": UNFIT, "gamma": UNFIT}
    kept = keeper.choose(cfg, ranks, checked, 20)
    assert kept.name == "gamma" and "no member is healthy now: gamma stays" in kept.reason
    # the prime back: the prime again, and its clock starts over
    assert keeper.choose(cfg, {"alpha": HEALTHY}, checked, 30).prime
    assert keeper.choose(cfg, {"alpha": UNFIT, "gamma": HEALTHY}, checked, 31).name == "alpha"


def test_prime_fallback_after_is_validated() -> None:
    with pytest.raises(Exception, match="prime_fallback_after: expected a number > 0"):
        config(prime_fallback_after=0)
    assert config().prime_fallback_after == 600


# --------------------------------------------------------------------------------------------
# a real redirector process


@pytest.fixture
def served(standins: Callable[..., StandinHandle], tmp_path: Path
           ) -> Iterator[tuple[RedirectorProcess, dict[str, StandinHandle]]]:
    members = {n: standins(n, versions=V1) for n in ("alpha", "beta", "gamma")}
    data = hosts_config({"alpha": (members["alpha"], 60), "beta": (members["beta"], 40),
                         "gamma": (members["gamma"], 20)}, primes=("alpha",),
                        prime_fallback_after=1.0)
    path = tmp_path / "config.json"
    write_json_atomic(path, data)
    running = start_redirector(path, tmp_path / "redirector.log")
    try:
        wait_until(lambda: set(active(running)) == {"alpha", "beta", "gamma"})
        yield running, members
    finally:
        stop(running.proc)


def active(running: RedirectorProcess) -> dict[str, Any]:
    hosts: dict[str, Any] = requests.get(running.url + "/active_hosts", timeout=5).json()[
        "active_hosts"]
    return hosts


def reference(running: RedirectorProcess) -> dict[str, Any]:
    data: dict[str, Any] = requests.get(running.url + "/health", timeout=5).json()["reference"]
    return data


def metric(running: RedirectorProcess, pattern: str) -> float | None:
    text = requests.get(running.url + "/metrics", timeout=5).text
    found = re.search(rf"^{pattern} (\S+)$", text, re.MULTILINE)
    return None if found is None else float(found.group(1))


def launch(running: RedirectorProcess, members: dict[str, StandinHandle]) -> str:
    answer = requests.get(running.url + "/build/gh/org/repo/HEAD", allow_redirects=False,
                          timeout=5)
    assert answer.status_code == 307
    return next(n for n, s in members.items() if answer.headers["Location"].startswith(s.url))


def test_a_long_unhealthy_prime_hands_the_reference_over_and_takes_it_back(
        served: tuple[RedirectorProcess, dict[str, StandinHandle]]) -> None:
    running, members = served
    assert reference(running) == {"member": "alpha", "prime": True,
                                  "reason": "the prime is healthy"}
    assert metric(running, 'federation_reference{member="alpha",prime="true"}') == 1
    assert metric(running, "federation_prime_fallback") == 0

    # the prime goes down, then the others are deployed with new versions: against the
    # prime's last versions they would all fail, and every launch would go to the dead prime
    members["alpha"].set_healthy(False)
    wait_until(lambda: "alpha" not in active(running))
    members["beta"].set_versions(V2)
    members["gamma"].set_versions(V2)
    acting = wait_until(lambda: (r := reference(running))["member"] == "beta" and r)
    assert acting["prime"] is False
    assert "longer than prime_fallback_after (1s): beta is the healthiest member with the " \
           "highest weight" in acting["reason"]
    wait_until(lambda: set(active(running)) == {"beta", "gamma"})  # judged against beta's
    assert metric(running, 'federation_reference{member="beta",prime="false"}') == 1
    assert metric(running, "federation_prime_fallback") == 1
    health = requests.get(running.url + "/health", timeout=5).json()
    assert (health["fallback"], health["prime_fallback"], health["routing_fallback"]) == (
        True, True, False)

    # nobody healthy: the last resort is the acting member, not the dead prime (gamma first:
    # beta going first would hand the role to a still healthy gamma)
    members["gamma"].set_healthy(False)
    wait_until(lambda: set(active(running)) == {"beta"})
    members["beta"].set_healthy(False)
    wait_until(lambda: not active(running))
    assert reference(running)["member"] == "beta"
    assert launch(running, members) == "beta"

    # the prime recovers (deployed too): it is the reference again at once
    members["alpha"].set_versions(V2)
    members["alpha"].set_healthy(True)
    members["beta"].set_healthy(True)
    members["gamma"].set_healthy(True)
    wait_until(lambda: reference(running) == {"member": "alpha", "prime": True,
                                              "reason": "the prime is healthy"})
    wait_until(lambda: set(active(running)) == {"alpha", "beta", "gamma"})
    assert metric(running, "federation_prime_fallback") == 0
    health = requests.get(running.url + "/health", timeout=5).json()
    assert (health["fallback"], health["prime_fallback"]) == (False, False)


# --------------------------------------------------------------------------------------------
# the monitor with the injected clock: production timings, no wait at all


def test_the_monitor_falls_back_after_prime_fallback_after_to_the_second() -> None:
    def host(name: str, weight: float, prime: bool = False) -> dict[str, Any]:
        return {"url": f"http://{name}", "weight": weight, "prime": prime,
                "health": f"http://{name}/health", "versions": f"http://{name}/versions"}

    cfg = parse_config({
        "hosts": {"p": host("p", 60, True), "a": host("a", 40), "b": host("b", 20)},
        "check": {"period": 10, "jitter": 0, "retries": 1, "timeout": 2, "failed_period": 300},
        "prime_fallback_after": 600})

    async def scenario() -> None:
        clock = FakeClock()
        members = FakeMembers(p={"versions": V1}, a={"versions": V1}, b={"versions": V1})
        monitor = HealthMonitor(cfg, fetch=members.fetch, clock=clock, rng=random.Random(0),
                                retry_delay=0)
        monitor.start()
        await clock.advance(0)
        assert monitor.healthy() == {"p", "a", "b"} and monitor.reference.name == "p"
        # the prime goes down, then a and b are deployed with new versions
        members.state["p"]["health"] = health(hub=False)
        members.state["a"]["versions"] = V2
        members.state["b"]["versions"] = V2
        await clock.advance(10)
        assert monitor.healthy() == frozenset()  # a and b fail against the prime's V1
        assert monitor.reference.name == "p"
        await clock.advance(599)  # t = 609: 599 s unhealthy
        assert monitor.reference.name == "p"
        assert monitor.healthy() == frozenset()
        await clock.advance(1)  # t = 610: a acts, is checked without a reference, then b
        assert (monitor.reference.name, monitor.reference.prime) == ("a", False)
        assert monitor.healthy() == {"a", "b"}
        assert monitor.prime_versions == V2
        # the prime comes back (deployed too): at its next check (t = 910) it is the reference
        members.state["p"]["health"] = health()
        members.state["p"]["versions"] = V2
        await clock.advance(299)
        assert monitor.reference.name == "a"
        await clock.advance(1)
        assert monitor.reference.name == "p" and monitor.reference.prime
        assert monitor.healthy() == {"p", "a", "b"}
        await monitor.stop()

    asyncio.run(scenario())
