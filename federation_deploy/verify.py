"""After a deploy: rollout status of workloads, then a member's /health and /versions, retried."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from .actions.kube_auth import ClusterAccess
from .config import Member
from .errors import ToolError, VerificationError
from .runner import Runner

T = TypeVar("T")


@dataclass(frozen=True)
class HttpAnswer:
    """What a GET returned, reduced to what the checks read."""

    status: int
    text: str


Fetch = Callable[[str, float], HttpAnswer]


@dataclass(frozen=True)
class Retry:
    """How hard to try: attempts per check, seconds between them, seconds per request, and an
    optional overall deadline (seconds from the first attempt, on the injected clock)."""

    attempts: int = 6
    delay: float = 10.0
    timeout: float = 10.0
    deadline: float | None = None


@dataclass(frozen=True)
class VerifyResult:
    member: str
    health: dict[str, Any]
    versions: dict[str, Any]
    attempts: int  # attempts used, both checks together


def http_get(url: str, timeout: float) -> HttpAnswer:
    """GET url with a timeout (requests raises on connection problems)."""
    response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
    return HttpAnswer(response.status_code, response.text)


def _get_json(member: str, what: str, url: str, timeout: float, fetch: Fetch) -> tuple[int, Any]:
    try:
        answer = fetch(url, timeout)
    except requests.RequestException as exc:
        raise VerificationError(
            f"member {member!r}: {what} {url} unreachable: {_one_line(exc)}"
        ) from None
    try:
        return answer.status, json.loads(answer.text)
    except ValueError:
        snippet = answer.text.strip().splitlines()[0][:120] if answer.text.strip() else "empty"
        raise VerificationError(
            f"member {member!r}: {what} {url} answered HTTP {answer.status} with no JSON "
            f"({snippet!r})"
        ) from None


def _one_line(exc: BaseException) -> str:
    """requests' messages nest three exceptions deep: say what happened in a few words."""
    text = str(exc)
    if isinstance(exc, requests.Timeout):
        return "timed out"
    for marker, said in (("Failed to resolve", "cannot resolve the host name"),
                         ("Name or service not known", "cannot resolve the host name"),
                         ("Connection refused", "connection refused"),
                         ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted")):
        if marker in text:
            return said
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def check_health(member: str, url: str, *, timeout: float = 10.0,
                 fetch: Fetch = http_get) -> dict[str, Any]:
    """One GET of a BinderHub /health: `ok` true and every `checks[].ok` true, else
    VerificationError naming the failing checks (binderhub answers 503 with the JSON)."""
    status, body = _get_json(member, "health", url, timeout, fetch)
    if not isinstance(body, dict):
        raise VerificationError(f"member {member!r}: health {url} did not answer a JSON object")
    checks = body.get("checks", [])
    if not isinstance(checks, list):
        raise VerificationError(f"member {member!r}: health {url}: `checks` is not a list")
    failing = [_check_name(c, i) for i, c in enumerate(checks)
               if not (isinstance(c, dict) and c.get("ok") is True)]
    if body.get("ok") is not True or failing or status != 200:
        detail = f"failing checks: {', '.join(failing)}" if failing else f"ok={body.get('ok')!r}"
        raise VerificationError(
            f"member {member!r}: unhealthy (HTTP {status} from {url}; {detail})"
        )
    return body


def _check_name(check: Any, index: int) -> str:
    if isinstance(check, dict):
        for key in ("service", "name", "check"):
            if isinstance(check.get(key), str):
                return str(check[key])
    return f"checks[{index}]"


def check_versions(member: str, url: str, *, timeout: float = 10.0,
                   fetch: Fetch = http_get) -> dict[str, Any]:
    """One GET of /versions: HTTP 200 and a JSON object (what the redirector compares)."""
    status, body = _get_json(member, "versions", url, timeout, fetch)
    if status != 200:
        raise VerificationError(f"member {member!r}: versions {url} answered HTTP {status}")
    if not isinstance(body, dict):
        raise VerificationError(f"member {member!r}: versions {url} did not answer a JSON object")
    return body


def with_retries(
    check: Callable[[], T],
    retry: Retry,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[T, int]:
    """Run check until it passes: at most retry.attempts times, retry.delay apart, and not
    past retry.deadline. Returns (result, attempts used); the last failure says how many."""
    start = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return check(), attempt
        except VerificationError as exc:
            # another wait would end past the deadline: give up now, not after sleeping
            elapsed_after_wait = clock() - start + retry.delay
            out_of_time = retry.deadline is not None and elapsed_after_wait > retry.deadline
            if attempt >= retry.attempts or out_of_time:
                spacing = f", {retry.delay:g}s apart" if attempt > 1 else ""
                raise VerificationError(
                    f"{exc} (gave up after {attempt} attempt(s){spacing})") from None
        sleep(retry.delay)


def verify_member(
    member: Member,
    retry: Retry | None = None,
    *,
    fetch: Fetch = http_get,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[str], None] | None = None,
) -> VerifyResult:
    """The member's /health (all checks ok), then /versions, each retried; VerificationError
    (stage 'verify') naming the member and what failed after the last attempt."""
    retry = retry or Retry()
    say = progress or (lambda _message: None)
    try:
        say(f"verify: {member.health_url}")
        health, used_health = with_retries(
            lambda: check_health(member.name, member.health_url, timeout=retry.timeout,
                                 fetch=fetch),
            retry, sleep=sleep, clock=clock,
        )
        say(f"verify: {member.versions_url}")
        versions, used_versions = with_retries(
            lambda: check_versions(member.name, member.versions_url, timeout=retry.timeout,
                                   fetch=fetch),
            retry, sleep=sleep, clock=clock,
        )
    except VerificationError as exc:
        raise VerificationError(str(exc), stage="verify") from None
    return VerifyResult(member.name, health, versions, used_health + used_versions)


# --------------------------------------------------------------------------------------------
# Rollout: every Deployment and DaemonSet of the release namespaces must finish rolling out.


def list_workloads(runner: Runner, access: ClusterAccess, namespace: str) -> list[str]:
    """`deployment.apps/x` and `daemonset.apps/y` names in namespace (read-only)."""
    proc = runner.run(access.kubectl_argv("get", "deployments,daemonsets", "--namespace",
                                          namespace, "--output", "name"), mutating=False)
    return [line.strip() for line in (proc.stdout or "").splitlines() if line.strip()]


def rollout_status(
    runner: Runner,
    access: ClusterAccess,
    namespaces: Sequence[str],
    *,
    timeout: str = "10m",
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Wait for each workload's rollout (`kubectl rollout status`); returns `ns/kind/name`
    of each. ToolError (stage 'rollout') naming the workload and carrying kubectl's stderr."""
    say = progress or (lambda _message: None)
    done: list[str] = []
    for namespace in dict.fromkeys(namespaces):  # each namespace once, in order
        try:
            workloads = list_workloads(runner, access, namespace)
        except ToolError as exc:
            raise _rollout_error(
                exc, f"cannot list the workloads of namespace {namespace!r}") from None
        for workload in workloads:
            say(f"rollout: {namespace}/{workload}")
            try:
                runner.run(access.kubectl_argv("rollout", "status", workload, "--namespace",
                                               namespace, f"--timeout={timeout}"),
                           mutating=False)
            except ToolError as exc:
                raise _rollout_error(
                    exc, f"{workload} in namespace {namespace!r} did not finish rolling out"
                ) from None
            done.append(f"{namespace}/{workload}")
    return done


def _rollout_error(exc: ToolError, what: str) -> ToolError:
    return ToolError(exc.argv, exc.returncode, exc.stdout, exc.stderr,
                     summary=f"stage 'rollout' failed: {what}", hint=exc.hint)
