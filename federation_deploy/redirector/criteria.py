"""When the redirector counts a member healthy: pure judgements of /health and /versions answers."""

from __future__ import annotations

from typing import Any

POD_QUOTA = "Pod quota"  # the BinderHub /health check that carries total_pods and quota

# Failure reasons that are not a /health service name.
REASON_UNCHECKED = "unchecked"
REASON_UNREACHABLE = "unreachable"
REASON_VERSIONS = "versions"
REASON_HEALTH = "health"


def evaluate_versions(versions: Any, reference: Any) -> str | None:
    """None when versions match the prime's (or no prime versions are known yet), else why not.

    Without the prime's versions every member is allowed its own, as mybinder does, so that an
    unreachable prime does not take the whole federation out of rotation.
    """
    if reference is None or versions == reference:
        return None
    return f"versions {versions} differ from the prime's {reference}"


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
