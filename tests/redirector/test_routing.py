"""Routing: compatibility with mybinder's rendezvous, the ramp split, cookies, target URLs."""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter

import pytest

from federation_deploy.redirector.app import LaunchDraws
from federation_deploy.redirector.config import HostConfig
from federation_deploy.redirector.routing import (
    REASON_COOKIE,
    REASON_FALLBACK,
    REASON_RAMP,
    REASON_RENDEZVOUS,
    Candidate,
    RoutingTable,
    build_table,
    cache_key,
    choose_member,
    cookie_member,
    cookie_path,
    member_target,
    rendezvous_choose,
    route,
)

# ---------------------------------------------------------------------------------------------
# The algorithm exactly as the issue states it, written independently of the module.


def reference_key(path: str) -> str:
    key = path.lower()
    if key.startswith("/build/gh/"):
        key = key.rsplit("/", 1)[0]
    return key


def reference_pick(path: str, weights: dict[str, float]) -> str:
    key = reference_key(path)
    best: tuple[float, str] | None = None
    for member, weight in weights.items():
        digest = hashlib.blake2b(f"{key}-{member}".encode(), digest_size=8).digest()
        h = int.from_bytes(digest, "big")
        score = weight / -math.log(h / (2**64 - 1))
        if best is None or (score, member) > best:
            best = (score, member)
    assert best is not None
    return best[1]


def table(weights: dict[str, float], ramp: tuple[str, ...] = (),
          load_balancer: str = "rendezvous") -> RoutingTable:
    return RoutingTable.of(
        [Candidate(n, f"https://{n}.example.org", w, n in ramp) for n, w in weights.items()],
        load_balancer,
    )


def repo_paths(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    providers = ["gh", "gl", "gist", "zenodo", "git"]
    paths = []
    for i in range(count):
        provider = rng.choice(providers)
        ref = rng.choice(["HEAD", "main", "master", "v1.0", "0123abc"])
        owner = "".join(rng.choice("abcdefXYZ-_") for _ in range(6))
        paths.append(f"/build/{provider}/{owner}/Repo-{i}/{ref}")
    return paths


MYBINDER_WEIGHTS = {"gke": 60.0, "ovh2": 30.0, "gesis": 9.0, "curvenote": 0.7}

# ---------------------------------------------------------------------------------------------


def test_cache_key() -> None:
    assert cache_key("/build/gh/Org/Repo/HEAD") == "/build/gh/org/repo"
    assert cache_key("/build/gh/org/repo/some%2Fbranch") == "/build/gh/org/repo"
    assert cache_key("/build/gl/Org/Repo/HEAD") == "/build/gl/org/repo/head"
    zenodo = "/build/zenodo/10.5281/zenodo.3242074/"
    assert cache_key(zenodo) == zenodo
    # mybinder tests the prefix without a slash; so do we
    assert cache_key("/build/ghx/a/b") == "/build/ghx/a"


def test_score_is_weight_over_minus_log_of_the_blake2b_digest() -> None:
    # two members whose reference scores are close: only the exact hash (8-byte big-endian
    # blake2b of "<key>-<member>") and formula pick the same winner for every key
    def score(key: str, member: str, weight: float) -> float:
        digest = hashlib.blake2b(f"{key}-{member}".encode(), digest_size=8).digest()
        return weight / -math.log(int.from_bytes(digest, "big") / (2**64 - 1))

    cands = table({"gke": 1.0, "ovh": 1.0}).candidates
    for i in range(500):
        key = f"/build/gh/org/repo-{i}"
        expected = max(("gke", "ovh"), key=lambda m: (score(key, m, 1.0), m))
        assert rendezvous_choose(key, cands).name == expected
    # weight 0 scores 0: such a member never wins against a weighted one
    zero = table({"gke": 1.0, "ovh": 0.0}).candidates
    assert {rendezvous_choose(f"k{i}", zero).name for i in range(200)} == {"gke"}


@pytest.mark.parametrize("weights", [
    MYBINDER_WEIGHTS,
    {"a": 1.0, "b": 1.0},
    {"gke": 1.0, "ovh": 1.0, "gesis": 1.0, "aws": 1.0, "hetzner": 1.0},
    {"x": 0.01, "y": 1000.0, "z": 3.3},
])
def test_rendezvous_matches_the_described_algorithm(weights: dict[str, float]) -> None:
    cands = table(weights).candidates
    for path in repo_paths(3000, seed=len(weights)):
        assert rendezvous_choose(cache_key(path), cands).name == reference_pick(path, weights)


def test_refs_of_a_github_repo_stick_together_case_insensitively() -> None:
    cands = table(MYBINDER_WEIGHTS).candidates
    picks = {
        rendezvous_choose(cache_key(p), cands).name
        for p in ["/build/gh/Org/Repo/HEAD", "/build/gh/org/repo/main", "/build/gh/ORG/REPO/v2"]
    }
    assert len(picks) == 1


def test_mybinder_rendezvous_test_values() -> None:
    # the exact counts of mybinder's own test_rendezvous.py (keys "key-0".."key-99")
    def count(weights: dict[str, float]) -> Counter[str]:
        cands = table(weights).candidates
        return Counter(rendezvous_choose(f"key-{i}", cands).name for i in range(100))

    assert count({"a": 1.0, "b": 1.0}) == Counter({"a": 52, "b": 48})
    assert count({"a": 0.8, "b": 0.2}) == Counter({"a": 75, "b": 25})
    assert count({"a": 0.8, "b": 0.0}) == Counter({"a": 100})


def test_pinned_picks() -> None:
    # regression anchors, computed from reference_pick (and so from the formula)
    cands = table(MYBINDER_WEIGHTS).candidates
    for path in ["/build/gh/binder-examples/requirements/HEAD",
                 "/build/gh/jupyterlab/jupyterlab-demo/try.jupyter.org",
                 "/build/gl/gitlab-org/gitlab-foss/master",
                 "/build/zenodo/10.5281/zenodo.3242074/"]:
        assert rendezvous_choose(cache_key(path), cands).name == reference_pick(
            path, MYBINDER_WEIGHTS
        )


def test_weights_are_respected_over_many_repositories() -> None:
    cands = table({"a": 3.0, "b": 1.0}).candidates
    counts = Counter(rendezvous_choose(cache_key(p), cands).name for p in repo_paths(20000, 1))
    assert counts["a"] / 20000 == pytest.approx(0.75, abs=0.015)


# --- ramp mode ---------------------------------------------------------------------------------


def test_ramp_pick_gives_exact_weight_share_over_uniform_draws() -> None:
    t = table({"gke": 60.0, "ovh": 39.0, "new": 1.0}, ramp=("new",))
    n = 10000
    path = "/build/gh/org/repo/HEAD"
    hits = sum(choose_member(t, path, (i + 0.5) / n).reason == REASON_RAMP for i in range(n))
    assert hits == 100


def test_ramp_launch_never_depends_on_the_repository() -> None:
    t = table({"gke": 60.0, "ovh": 39.0, "new": 1.0}, ramp=("new",))
    path = "/build/gh/org/popular/HEAD"
    assert choose_member(t, path, 0.005).name == "new"
    assert choose_member(t, path, 0.005).reason == REASON_RAMP
    # every other draw: rendezvous among the non-ramp members, the same one each time
    others = {choose_member(t, path, d / 100).name for d in range(1, 100)}
    assert others == {reference_pick(path, {"gke": 60.0, "ovh": 39.0})}


def zipf_launches(count: int, repos: int, exponent: float, seed: int) -> list[str]:
    """Launch paths whose repositories follow a Zipf(exponent) popularity."""
    rng = random.Random(seed)
    weights = [rank ** -exponent for rank in range(1, repos + 1)]
    picks = rng.choices(range(repos), weights=weights, k=count)
    return [f"/build/gh/org{k % 41}/repo-{k}/HEAD" for k in picks]


def ramp_share(target: float, launches: list[str], draw: LaunchDraws | random.Random,
               ramp_name: str = "curvenote") -> float:
    others = {"gke": 50.0, "ovh2": 30.0, "gesis": 20.0}
    weights = {**others, ramp_name: target * sum(others.values()) / (1 - target)}
    t = table(weights, ramp=(ramp_name,))
    next_draw = draw.random if isinstance(draw, random.Random) else draw
    counts = Counter(route(t, p, None, next_draw).name for p in launches)
    return counts[ramp_name] / len(launches)


@pytest.mark.parametrize(("target", "tolerance"), [(0.01, 0.003), (0.25, 0.015)])
@pytest.mark.parametrize("seed", [1, 2])
def test_ramp_share_under_zipf_popularity(target: float, tolerance: float, seed: int) -> None:
    launches = zipf_launches(20000, 2000, 1.1, seed)
    # the redirector's default draws, and plain pseudo-random ones (both fixed-seed)
    assert ramp_share(target, launches, LaunchDraws(random.Random(seed).random())) == (
        pytest.approx(target, abs=tolerance)
    )
    assert ramp_share(target, launches, random.Random(seed)) == pytest.approx(
        target, abs=tolerance
    )


def test_plain_rendezvous_misses_the_share_that_ramp_mode_hits() -> None:
    # why ramp mode exists: per-repository routing under Zipf popularity is far off 1%
    launches = zipf_launches(20000, 2000, 1.1, seed=7)
    popularity = Counter(launches)
    plain = []
    for i in range(12):
        name = f"member{i}"
        others = {"gke": 50.0, "ovh2": 30.0, "gesis": 20.0}
        t = table({**others, name: 100 / 99})
        # rendezvous ignores the draw: one choice per repository, times its launches
        hits = sum(n for p, n in popularity.items() if choose_member(t, p, 0.5).name == name)
        plain.append(hits / len(launches))
        if i < 3:
            share = ramp_share(0.01, launches, LaunchDraws(0.3), ramp_name=name)
            assert share == pytest.approx(0.01, abs=0.003)
    assert any(abs(share - 0.01) > 0.003 for share in plain)


def test_ramp_share_renormalises_over_healthy_members() -> None:
    hosts = [
        HostConfig("gke", "https://gke.org", 50, prime=True),
        HostConfig("ovh", "https://ovh.org", 40),
        HostConfig("new", "https://new.org", 10, ramp=True),
    ]
    t = build_table(hosts, {"gke", "new"}, "rendezvous")  # ovh unhealthy
    draws = LaunchDraws(0.0)
    counts = Counter(route(t, f"/build/gh/o/r{i}/HEAD", None, draws).name for i in range(6000))
    assert counts["new"] / 6000 == pytest.approx(10 / 60, abs=0.002)
    assert counts["ovh"] == 0


def test_only_ramp_members_healthy_share_by_weight() -> None:
    t = table({"a": 1.0, "b": 3.0}, ramp=("a", "b"))
    n = 4000
    counts = Counter(choose_member(t, "/build/gh/x/y/z", (i + 0.5) / n).name for i in range(n))
    assert counts == Counter({"a": 1000, "b": 3000})


def test_random_load_balancer_is_weighted_per_launch() -> None:
    t = table({"a": 1.0, "b": 3.0}, load_balancer="random")
    rng = random.Random(5)
    counts = Counter(choose_member(t, "/build/gh/x/y/z", rng.random()).name for _ in range(20000))
    assert counts["b"] / 20000 == pytest.approx(0.75, abs=0.015)


# --- health, fallback, cookies ------------------------------------------------------------------

HOSTS = [
    HostConfig("gke", "https://gke.mybinder.org", 60, prime=True),
    HostConfig("ovh", "https://ovh.mybinder.org", 30),
    HostConfig("gesis", "https://gesis.mybinder.org", 10),
]


def test_table_has_only_healthy_weighted_members() -> None:
    t = build_table(HOSTS, {"ovh", "gesis"}, "rendezvous")
    assert [c.name for c in t.candidates] == ["ovh", "gesis"]
    assert not t.fallback


def test_none_healthy_falls_back_to_primes() -> None:
    t = build_table(HOSTS, set(), "rendezvous")
    assert [c.name for c in t.candidates] == ["gke"] and t.fallback
    choice = choose_member(t, "/build/gh/a/b/c", 0.3)
    assert (choice.name, choice.reason) == ("gke", REASON_FALLBACK)


def test_fallback_with_weight_zero_primes_shares_them_equally() -> None:
    hosts = [HostConfig("p1", "https://p1.org", 0, prime=True),
             HostConfig("p2", "https://p2.org", 0, prime=True),
             HostConfig("m", "https://m.org", 5)]
    t = build_table(hosts, set(), "rendezvous")
    assert {c.name for c in t.candidates} == {"p1", "p2"}
    assert all(c.weight == 1.0 for c in t.candidates)
    # a healthy weight-0 prime takes no launches while another member is healthy
    assert [c.name for c in build_table(hosts, {"p1", "m"}, "rendezvous").candidates] == ["m"]


def test_cookie_keeps_a_healthy_member() -> None:
    t = build_table(HOSTS, {"gke", "ovh", "gesis"}, "rendezvous")
    choice = route(t, "/build/gh/a/b/c", "https://gesis.mybinder.org", lambda: 0.5)
    assert (choice.name, choice.reason) == ("gesis", REASON_COOKIE)


@pytest.mark.parametrize("cookie", [
    "https://evil.example",
    "https://gesis.mybinder.org/",  # not the exact member URL
    "https://gesis.mybinder.org.evil.example",
    "gesis",
    "https://GESIS.mybinder.org",
    "",
    None,
    "https://ovh.mybinder.org",  # a member, but unhealthy
])
def test_other_cookies_are_ignored(cookie: str | None) -> None:
    t = build_table(HOSTS, {"gke", "gesis"}, "rendezvous")
    assert cookie_member(t, cookie) is None
    choice = route(t, "/build/gh/a/b/c", cookie, lambda: 0.5)
    assert choice.reason == REASON_RENDEZVOUS
    assert choice.url in {"https://gke.mybinder.org", "https://gesis.mybinder.org"}


@pytest.mark.parametrize(("uri", "expected"), [
    ("/build/gh/a/b/HEAD", "https://m.org/build/gh/a/b/HEAD"),
    ("/build/gh/a/b/HEAD?urlpath=lab", "https://m.org/build/gh/a/b/HEAD?urlpath=lab"),
    ("/build//evil.example/x", "https://m.org/build//evil.example/x"),
    ("/build/https://evil.example/", "https://m.org/build/https://evil.example/"),
    ("/build/gh/%2F%2Fevil.example/b/c", "https://m.org/build/gh/%2F%2Fevil.example/b/c"),
    ("/build/@evil.example", "https://m.org/build/@evil.example"),
    ("//evil.example/build/x", None),
    ("http://evil.example/build/x", None),
    ("@evil.example/build/x", None),
    ("evil.example", None),
    ("/build/a\r\nSet-Cookie: x=y", None),
    ("", None),
])
def test_member_target_stays_on_the_member(uri: str, expected: str | None) -> None:
    assert member_target("https://m.org", uri) == expected


def test_cookie_path_cannot_add_attributes() -> None:
    assert cookie_path("/build/gh/a/b/HEAD") == "/build/gh/a/b/HEAD"
    assert ";" not in cookie_path("/build/gh/a/b;Domain=evil.example")
    assert cookie_path("/build/gh/a/b%20c") == "/build/gh/a/b%20c"
    # raw non-ASCII bytes (read as latin-1) stay themselves, as in mybinder's cookie; the
    # ASCII around them is still made safe
    assert cookie_path("/build/gh/a/r\xc3\xa9po;x/HEAD") == "/build/gh/a/r\xc3\xa9po%3Bx/HEAD"


def test_shares_renormalise() -> None:
    t = build_table(HOSTS, {"gke", "gesis"}, "rendezvous")
    assert t.shares() == {"gke": pytest.approx(60 / 70), "gesis": pytest.approx(10 / 70)}
