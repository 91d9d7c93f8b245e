"""The one health verdict: BinderHub's own checks, the prime's versions, the pod headroom."""

from __future__ import annotations

from typing import Any

from federation_deploy.health.verdict import judge_health, judge_member, judge_versions


def health(*checks: dict[str, Any], ok: bool = True) -> dict[str, Any]:
    return {"ok": ok, "checks": list(checks)}


HUB = {"service": "Hub", "ok": True}
VERSIONS = {"binderhub": "1.0.0", "builder": "r2d-2023.06.0"}


def quota(total: int, limit: int | None = 100) -> dict[str, Any]:
    return {"service": "Pod quota", "ok": True, "total_pods": total, "quota": limit}


def test_every_check_ok_with_headroom_and_the_prime_versions_is_healthy() -> None:
    verdict = judge_member(200, health(HUB, quota(10)), VERSIONS, prime_versions=VERSIONS,
                           pod_headroom=10)
    assert verdict.healthy and verdict.failing == () and verdict.describe() == ""


def test_a_failing_check_is_named() -> None:
    verdict = judge_health(503, health(HUB, {"service": "Docker registry", "ok": False},
                                       ok=False))
    assert not verdict.healthy
    assert verdict.failing == ("Docker registry",)
    assert verdict.describe() == "failing checks: Docker registry"


def test_ok_false_alone_is_unhealthy() -> None:
    verdict = judge_health(200, health(HUB, ok=False))
    assert not verdict.healthy and verdict.describe() == "ok=False"


def test_http_error_with_every_check_ok_is_unhealthy() -> None:
    verdict = judge_health(500, health(HUB))
    assert not verdict.healthy and "HTTP 500" in verdict.describe()


def test_pod_headroom_follows_the_redirector() -> None:
    # 95 of 100 pods used: 5 free, the redirector wants 10
    verdict = judge_health(200, health(HUB, quota(95)), pod_headroom=10)
    assert not verdict.healthy
    assert verdict.failing == ("Pod quota",)
    assert "approaching pod quota: 95.0/100.0 (headroom 10)" in verdict.describe()
    assert judge_health(200, health(HUB, quota(90)), pod_headroom=10).healthy
    assert judge_health(200, health(HUB, quota(95)), pod_headroom=5).healthy
    assert judge_health(200, health(HUB, quota(500, limit=None)), pod_headroom=10).healthy


def test_a_quota_without_a_pod_count_is_unhealthy() -> None:
    verdict = judge_health(200, health(HUB, {"service": "Pod quota", "ok": True, "quota": 300}))
    assert not verdict.healthy and "no numeric quota/total_pods" in verdict.describe()


def test_versions_that_differ_from_the_prime_are_unhealthy() -> None:
    newer = {**VERSIONS, "binderhub": "1.1.0"}
    verdict = judge_versions(newer, VERSIONS)
    assert not verdict.healthy and verdict.failing == ("versions",)
    assert "differ from the prime's" in verdict.describe()
    both = judge_member(200, health(HUB, quota(10)), newer, prime_versions=VERSIONS)
    assert not both.healthy and both.failing == ("versions",)


def test_without_the_prime_versions_a_member_keeps_its_own() -> None:
    assert judge_versions(VERSIONS, None).healthy
    assert not judge_versions(["not", "an", "object"], None).healthy


def test_not_json_is_unhealthy() -> None:
    assert not judge_health(200, None).healthy
    assert not judge_health(200, {"ok": True, "checks": "all fine"}).healthy
