"""A member's /health and /versions over HTTP, retried, judged by the one health verdict."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from federation_deploy.config import Member
from federation_deploy.errors import VerificationError
from federation_deploy.health import http
from federation_deploy.health.http import HttpAnswer
from federation_deploy.health.verdict import (
    DEFAULT_POD_HEADROOM,
    HealthVerdict,
    judge_health,
    judge_versions,
)

T = TypeVar("T")


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


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome, for the ramp's gates: ok, and why not (or a short summary)."""

    ok: bool
    reason: str


# Every request opens a new connection: behind a Service each answer may come from another
# replica, and the ramp wants several replicas to agree (they reload config on their own).
_HEADERS = {"Accept": "application/json", "Connection": "close"}


def http_get(url: str, timeout: float) -> HttpAnswer:
    """GET url, the whole answer within `timeout` seconds in all (health.http: a body that
    trickles fails as a timeout), requests raising on connection problems: the one HTTP
    client of member probes (verify, the ramp's health gate, the sandbox)."""
    return http.get(url, timeout, headers=_HEADERS)


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
    if isinstance(exc, http.DeadlineExceeded):
        return str(exc)
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


def check_health(member: str, url: str, *, timeout: float = 10.0, fetch: Fetch = http_get,
                 pod_headroom: int = DEFAULT_POD_HEADROOM) -> dict[str, Any]:
    """One GET of a BinderHub /health, judged by health.verdict.judge_health (`ok` true, every check
    ok, pod headroom as the redirector wants it), else VerificationError naming what failed
    (binderhub answers 503 with the JSON)."""
    status, body = _get_json(member, "health", url, timeout, fetch)
    if not isinstance(body, dict):
        raise VerificationError(f"member {member!r}: health {url} did not answer a JSON object")
    if not isinstance(body.get("checks", []), list):
        raise VerificationError(f"member {member!r}: health {url}: `checks` is not a list")
    verdict = judge_health(status, body, pod_headroom)
    if not verdict.healthy:
        raise VerificationError(
            f"member {member!r}: unhealthy (HTTP {status} from {url}; {verdict.describe()})"
        )
    return body


def check_versions(member: str, url: str, *, timeout: float = 10.0, fetch: Fetch = http_get,
                   prime_versions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One GET of /versions: HTTP 200 and a JSON object, equal to the prime's when given
    (what the redirector compares)."""
    status, body = _get_json(member, "versions", url, timeout, fetch)
    if status != 200:
        raise VerificationError(f"member {member!r}: versions {url} answered HTTP {status}")
    if not isinstance(body, dict):
        raise VerificationError(f"member {member!r}: versions {url} did not answer a JSON object")
    verdict = judge_versions(body, prime_versions)
    if not verdict.healthy:
        raise VerificationError(f"member {member!r}: versions {url}: {verdict.describe()}")
    return body


def fetch_prime_versions(url: str, *, timeout: float = 10.0,
                         fetch: Fetch = http_get) -> dict[str, Any] | None:
    """The prime's /versions, or None when it cannot be read: then, as in the redirector, a
    member is allowed its own versions (an unreachable prime must not fail every member)."""
    try:
        answer = fetch(url, timeout)
        body = json.loads(answer.text)
    except (requests.RequestException, ValueError):
        return None
    return body if answer.status == 200 and isinstance(body, dict) else None


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
    pod_headroom: int = DEFAULT_POD_HEADROOM,
    prime_versions_url: str | None = None,
) -> VerifyResult:
    """The member's /health, then /versions (equal to the prime's, read from
    prime_versions_url when given), each retried; VerificationError (stage 'verify') naming
    the member and what failed after the last attempt."""
    retry = retry or Retry()
    say = progress or (lambda _message: None)
    try:
        say(f"verify: {member.health_url}")
        health, used_health = with_retries(
            lambda: check_health(member.name, member.health_url, timeout=retry.timeout,
                                 fetch=fetch, pod_headroom=pod_headroom),
            retry, sleep=sleep, clock=clock,
        )
        say(f"verify: {member.versions_url}")
        versions, used_versions = with_retries(
            lambda: check_versions(
                member.name, member.versions_url, timeout=retry.timeout, fetch=fetch,
                prime_versions=None if prime_versions_url is None else fetch_prime_versions(
                    prime_versions_url, timeout=retry.timeout, fetch=fetch)),
            retry, sleep=sleep, clock=clock,
        )
    except VerificationError as exc:
        raise VerificationError(str(exc), stage="verify") from None
    return VerifyResult(member.name, health, versions, used_health + used_versions)


def check_member_health(
    health_url: str,
    timeout: float = 5.0,
    *,
    pod_headroom: int = DEFAULT_POD_HEADROOM,
    versions_url: str | None = None,
    prime_versions_url: str | None = None,
    fetch: Fetch = http_get,
    accepted_versions: Mapping[str, Sequence[str]] | None = None,
) -> CheckResult:
    """One look at a member (the ramp's health gate): its /health, and its /versions when
    versions_url is given (equal to the prime's at prime_versions_url, or during a rollout
    within accepted_versions), judged by the one verdict the redirector applies. Never
    raises: a member that cannot be asked fails."""
    try:
        answer = fetch(health_url, timeout)
    except requests.RequestException as exc:
        return CheckResult(False, f"{health_url}: {_one_line(exc)}")
    body: Any = None
    with contextlib.suppress(ValueError):
        body = json.loads(answer.text)
    verdict = judge_health(answer.status, body, pod_headroom)
    if versions_url is not None:
        verdict = verdict & _versions_verdict(versions_url, prime_versions_url, timeout, fetch,
                                              accepted_versions)
    if verdict.healthy:
        return CheckResult(True, f"{health_url}: ok")
    status = f" HTTP {answer.status}" if answer.status != 200 else ""
    failing = [f"failing: {', '.join(verdict.failing)}"] if verdict.failing else []
    detail = "; ".join(failing + list(verdict.problems))
    return CheckResult(False, f"{health_url}:{status} ({detail})")


def _versions_verdict(url: str, prime_url: str | None, timeout: float,
                      fetch: Fetch, accepted: Mapping[str, Sequence[str]] | None = None
                      ) -> HealthVerdict:
    try:
        versions = _json_of(url, timeout, fetch)
    except ValueError as exc:
        return HealthVerdict(False, ("versions",), (str(exc),))
    prime: Any = None
    if prime_url is not None:
        # an unreadable prime allows every member its own versions, as in the redirector
        with contextlib.suppress(ValueError):
            prime = _json_of(prime_url, timeout, fetch)
    return judge_versions(versions, prime if isinstance(prime, dict) else None, accepted)


def _json_of(url: str, timeout: float, fetch: Fetch) -> Any:
    """url's JSON answer; ValueError saying why there is none."""
    try:
        answer = fetch(url, timeout)
    except requests.RequestException as exc:
        raise ValueError(f"{url}: {_one_line(exc)}") from None
    if answer.status != 200:
        raise ValueError(f"{url}: HTTP {answer.status}")
    try:
        return json.loads(answer.text)
    except ValueError:
        raise ValueError(f"{url}: not JSON") from None
