"""The one verdict on a member's health, from its /health and /versions answers (pure).

`verify`, the ramp's gate and the sandbox all judge with it, and it applies the redirector's own
criteria (imported from redirector/criteria.py, so the two cannot drift): a member that passes
here is one the redirector keeps in rotation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federation_deploy.redirector.config import DEFAULT_POD_HEADROOM
from federation_deploy.redirector.criteria import (
    REASON_HEALTH,
    REASON_VERSIONS,
    evaluate_health,
    evaluate_versions,
)

__all__ = ["DEFAULT_POD_HEADROOM", "HealthVerdict", "judge_health", "judge_member",
           "judge_versions"]


@dataclass(frozen=True)
class HealthVerdict:
    """Healthy or not, the checks that failed (by name) and why, one phrase per problem."""

    healthy: bool
    failing: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def describe(self) -> str:
        """`failing checks: a, b; <problem>; ...`, or "" when healthy."""
        parts = [f"failing checks: {', '.join(self.failing)}"] if self.failing else []
        return "; ".join([*parts, *self.problems])

    def __and__(self, other: HealthVerdict) -> HealthVerdict:
        return HealthVerdict(self.healthy and other.healthy, self.failing + other.failing,
                             self.problems + other.problems)


def check_name(check: Any, index: int) -> str:
    """What a /health check calls itself (BinderHub says `service`; others `name`)."""
    if isinstance(check, dict):
        for key in ("service", "name", "check"):
            if isinstance(check.get(key), str):
                return str(check[key])
    return f"checks[{index}]"


def judge_health(status: int, body: Any, pod_headroom: int = DEFAULT_POD_HEADROOM
                 ) -> HealthVerdict:
    """A /health answer: HTTP 200, `ok` true, every check ok, and the redirector's criteria
    (well-formed checks, at least pod_headroom free pods in the pod quota)."""
    if not isinstance(body, dict):
        return HealthVerdict(False, (), ("/health did not answer a JSON object",))
    checks = body.get("checks", [])
    if not isinstance(checks, list):
        return HealthVerdict(False, (), ("`checks` is not a list",))
    failing = [check_name(c, i) for i, c in enumerate(checks)
               if not (isinstance(c, dict) and c.get("ok") is True)]
    problems: list[str] = []
    _oks, failed, message = evaluate_health(status, body, pod_headroom)
    # what the redirector sees beyond the checks' own `ok` (headroom, malformed answers); its
    # generic complaint adds nothing once failing checks are named
    if failed is not None and failed not in failing and not (failed == REASON_HEALTH and failing):
        if failed != REASON_HEALTH:
            failing.append(failed)
        problems.append(message)
    healthy = status == 200 and body.get("ok") is True and not failing and not problems
    if not healthy and not failing and not problems:
        problems.append(f"ok={body.get('ok')!r}")
    return HealthVerdict(healthy, tuple(failing), tuple(problems))


def judge_versions(versions: Any, prime_versions: Mapping[str, Any] | None = None,
                   accepted: Mapping[str, Sequence[str]] | None = None) -> HealthVerdict:
    """A /versions answer: a JSON object, equal to the prime's when the prime's is given
    (during a rollout: within its accepted set, the redirector's rule)."""
    if not isinstance(versions, dict):
        return HealthVerdict(False, (), ("/versions did not answer a JSON object",))
    mismatch = evaluate_versions(versions, prime_versions, accepted)
    if mismatch:
        return HealthVerdict(False, (REASON_VERSIONS,), (mismatch,))
    return HealthVerdict(True)


def judge_member(
    health_status: int,
    health: Any,
    versions: Any,
    *,
    prime_versions: Mapping[str, Any] | None = None,
    pod_headroom: int = DEFAULT_POD_HEADROOM,
) -> HealthVerdict:
    """The whole verdict: the /health answer and the /versions answer both pass."""
    return judge_health(health_status, health, pod_headroom) & judge_versions(versions,
                                                                              prime_versions)
