"""Which /versions keep a member in rotation: the prime's, or a rollout's published set (pure
judgements, then a real redirector hot-reloading the set in front of stand-ins)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from federation_deploy.redirector.config import RedirectorConfigError, parse_config
from federation_deploy.redirector.criteria import evaluate_versions
from federation_deploy.sandbox.member import StandinHandle

from .conftest import RedirectorServer, hosts_config, wait_until, write_json_atomic

Federation = Callable[..., tuple[RedirectorServer, dict[str, StandinHandle], Path]]
OLD = {"binderhub": "1.0.0", "builder": "2025.01.0"}
NEW = {"binderhub": "1.1.0", "builder": "2025.01.0"}
THIRD = {"binderhub": "0.9.0", "builder": "2025.01.0"}
ACCEPTED = {"binderhub": ["1.0.0", "1.1.0"]}
WEIGHTS = {"gke": 60.0, "ovh": 30.0, "gesis": 10.0}


def test_without_a_set_versions_must_equal_the_prime() -> None:
    assert evaluate_versions(OLD, OLD) is None
    assert evaluate_versions(OLD, None) is None
    assert "differ from the prime's" in (evaluate_versions(NEW, OLD) or "")


def test_the_set_accepts_either_version_and_drops_a_third() -> None:
    assert evaluate_versions(NEW, OLD, ACCEPTED) is None
    assert evaluate_versions(OLD, NEW, ACCEPTED) is None
    why = evaluate_versions(THIRD, OLD, ACCEPTED)
    assert why == ("binderhub '0.9.0' is not an accepted version during the rollout "
                   "(1.0.0, 1.1.0)")
    # a key outside the set still has to equal the prime's
    other_builder = {**NEW, "builder": "2024.12.0"}
    assert "in 'builder'" in (evaluate_versions(other_builder, OLD, ACCEPTED) or "")
    # a member that does not report the key at all is not on an accepted version
    assert evaluate_versions({"builder": "2025.01.0"}, OLD, ACCEPTED) is not None


def test_the_set_is_parsed_and_checked() -> None:
    base = {"hosts": {"a": {"url": "https://a.example.org", "weight": 1, "prime": True}}}
    assert parse_config(base).accepted_versions is None
    config = parse_config({**base, "accepted_versions": ACCEPTED})
    assert config.accepted_versions == {"binderhub": ("1.0.0", "1.1.0")}
    with pytest.raises(RedirectorConfigError, match=r"accepted_versions.binderhub: expected a "
                       "non-empty list"):
        parse_config({**base, "accepted_versions": {"binderhub": "1.0.0"}})


def shares(server: RedirectorServer, count: int = 600) -> Counter[str]:
    return Counter(server.launch_member(f"/build/gh/o/r{i}/HEAD") for i in range(count))


def test_a_published_set_keeps_the_new_version_in_rotation(federation: Federation) -> None:
    """Ring 1 of a rollout, on a real redirector: the set published (hot reload) before the
    member moves to the new version keeps it in rotation with its share; a member on a third
    version is dropped; without the set, the rule is the prime's versions again."""
    server, members, path = federation(WEIGHTS, primes=("gke",), reload_interval=0.1)
    for standin in members.values():
        standin.set_versions(OLD)
    wait_until(lambda: server.active() == {"gke", "ovh", "gesis"})
    before = shares(server)

    data = hosts_config({n: (members[n], w) for n, w in WEIGHTS.items()}, primes=("gke",),
                        accepted_versions=ACCEPTED, generation=5)
    write_json_atomic(path, data)
    wait_until(lambda: server.redirector.config.accepted_versions is not None)
    assert server.get("/active_hosts").json()["accepted_versions"] == ACCEPTED
    members["ovh"].set_versions(NEW)
    members["gesis"].set_versions(THIRD)
    wait_until(lambda: server.active() == {"gke", "ovh"})
    assert server.metric('federation_health{member="gesis",reason="versions"}') == 0
    during = shares(server)
    # ovh keeps exactly the repositories it had (rendezvous: gesis's went elsewhere)
    assert during["ovh"] >= before["ovh"] > 0
    assert during["gesis"] == 0
    for _ in range(20):  # stays in rotation over several checks
        assert "ovh" in server.active()

    # the set cleared with ovh still on the new version: it differs from the prime again
    del data["accepted_versions"]
    write_json_atomic(path, data)
    wait_until(lambda: server.active() == {"gke"})
    # everyone on the new version (the rollout's end): all back
    members["gke"].set_versions(NEW)
    members["gesis"].set_versions(NEW)
    wait_until(lambda: server.active() == {"gke", "ovh", "gesis"})
