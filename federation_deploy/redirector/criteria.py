"""When the redirector counts a member healthy: pure judgements of /health and /versions answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

POD_QUOTA = "Pod quota"  # the BinderHub /health check that carries total_pods and quota

# Failure reasons that are not a /health service name.
REASON_UNCHECKED = "unchecked"
REASON_UNREACHABLE = "unreachable"
REASON_VERSIONS = "versions"
REASON_HEALTH = "health"


def evaluate_versions(versions: Any, reference: Any,
                      accepted: Mapping[str, Sequence[str]] | None = None) -> str | None:
    """None when versions match the prime's (or no prime versions are known yet), else why not.

    Without the prime's versions every member is allowed its own, as mybinder does, so that an
    unreachable prime does not take the whole federation out of rotation. With accepted (a
    rollout's published set), a key listed there may hold any accepted version (see
    accepted_mismatch); the other keys must still equal the prime's.
    """
    if accepted:
        return accepted_mismatch(versions, reference, accepted)
    if reference is None or versions == reference:
        return None
    return f"versions {versions} differ from the prime's {reference}"


def accepted_mismatch(versions: Any, reference: Any,
                      accepted: Mapping[str, Sequence[str]]) -> str | None:
    """While a rollout runs: each accepted key must report one of its accepted versions (a
    member on a third version is dropped, whatever the prime runs); every other key equals
    the prime's, when the prime's are known."""
    if not isinstance(versions, Mapping):
        return f"versions {versions} are not an object"
    for key, allowed in accepted.items():
        if versions.get(key) not in allowed:
            return (f"{key} {versions.get(key)!r} is not an accepted version during the "
                    f"rollout ({', '.join(allowed)})")
    if isinstance(reference, Mapping):
        for key in dict.fromkeys([*versions, *reference]):
            if key not in accepted and versions.get(key) != reference.get(key):
                return f"versions {versions} differ from the prime's {reference} in {key!r}"
    return None


def evaluate_health(
    code: int, body: Any, pod_headroom: int
) -> tuple[dict[str, bool], str | None, str]:
    """Judge a /health answer: (ok per service, failed service or None, message).

    Every check must be ok, and the pod quota must leave at least `pod_headroom` free pods.
    BinderHub answers 503 with the same JSON when a check fails, so the body is read whatever
    the status code.
    """
    raw_checks = body.get("checks") if isinstance(body, dict) else None
    if not isinstance(raw_checks, list):
        if code != 200:
            return {}, REASON_HEALTH, f"/health answered HTTP {code}"
        return {}, REASON_HEALTH, "/health answer has no list of checks"
    oks: dict[str, bool] = {}
    failed: str | None = None
    message = ""
    for item in raw_checks:
        if not isinstance(item, dict) or not isinstance(item.get("service"), str):
            return oks, REASON_HEALTH, f"/health answer has a malformed check: {item!r}"
        service = item["service"]
        ok = item.get("ok") is True
        problem = "" if ok else f"{service} check failed: {item}"
        if ok and service == POD_QUOTA and item.get("quota") is not None:
            quota, total = _number(item.get("quota")), _number(item.get("total_pods"))
            if quota is None or total is None:
                ok, problem = False, f"{service} check has no numeric quota/total_pods: {item}"
            elif quota - total < pod_headroom:
                ok = False
                problem = f"approaching pod quota: {total}/{quota} (headroom {pod_headroom})"
        oks[service] = ok
        if not ok and failed is None:
            failed, message = service, problem
    if failed is None and code != 200:
        return oks, REASON_HEALTH, f"/health answered HTTP {code}"
    return oks, failed, message


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
