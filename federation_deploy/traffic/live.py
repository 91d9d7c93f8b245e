"""The live side of traffic (HTTP client): the redirector's state and the Prometheus checks;
member health is asked through health.probe, the one probe client."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from federation_deploy.config.schema import shown_url
from federation_deploy.errors import UsageError
from federation_deploy.health import http
from federation_deploy.health.probe import CheckResult
from federation_deploy.progress import answer_excerpt, kind_of_answer

DEFAULT_TIMEOUT = 5.0
# Every request opens a new connection: behind a Service each answer may come from another
# replica, and the ramp wants several replicas to agree (they reload config on their own).
_NO_KEEPALIVE = {"Connection": "close", "Accept": "application/json"}


class LiveError(Exception):
    """An endpoint (redirector, member, Prometheus) could not be read; says which and why."""


def _failed(url: str, problem: str) -> LiveError:
    """LiveError naming url without its credentials (a --redirector-url or a Prometheus URL
    with user:password@ is printed in every line that names it)."""
    return LiveError(f"{shown_url(url)}: {problem}")


# ------------------------------------------------------------------------------------------
# The redirector's endpoints


def fetch_active_hosts(redirector_url: str, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """{name: host config (url, weight, ramp, ...)} of the members the redirector routes to."""
    url = redirector_url.rstrip("/") + "/active_hosts"
    data = _get_json(url, timeout)
    hosts = data.get("active_hosts") if isinstance(data, dict) else None
    if not isinstance(hosts, dict):
        raise _failed(url, f"expected {{\"active_hosts\": {{...}}}}, got "
                      f"{kind_of_answer(data)}")
    return {str(name): host for name, host in hosts.items() if isinstance(host, dict)}


def fetch_live_generation(redirector_url: str, timeout: float = DEFAULT_TIMEOUT) -> int | None:
    """The generation of the weights the redirector serves (its /active_hosts `generation`);
    None when it reports none (an older redirector, a config without one) or cannot be
    asked: the caller then relies on the weights it sees."""
    url = redirector_url.rstrip("/") + "/active_hosts"
    try:
        data = _get_json(url, timeout)
    except LiveError:
        return None
    generation = data.get("generation") if isinstance(data, dict) else None
    if isinstance(generation, bool) or not isinstance(generation, int):
        return None
    return generation


def fetch_pool(redirector_url: str, member: str, final_weight: float, count: int,
               timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """The launch paths (gh/org/repo/HEAD) of the `count` most launched repositories member
    will serve at final_weight, from the redirector's /ramp_pool (its sticky estimate)."""
    url = (f"{redirector_url.rstrip('/')}/ramp_pool?member={member}"
           f"&final_weight={final_weight:g}&n={count}")
    data = _get_json(url, timeout)
    found = data.get("repositories") if isinstance(data, dict) else None
    if not isinstance(found, list):
        raise _failed(url, f"expected {{\"repositories\": [...]}}, got "
                      f"{kind_of_answer(data)}")
    return [str(item["path"]) for item in found if isinstance(item, dict) and "path" in item]


def fetch_metrics(redirector_url: str, timeout: float = DEFAULT_TIMEOUT) -> list[Sample]:
    url = redirector_url.rstrip("/") + "/metrics"
    try:
        response = http.get(url, timeout, headers={"Connection": "close"})
    except requests.RequestException as exc:
        raise _failed(url, f"{_reason(exc, timeout)}") from None
    if response.status != 200:
        raise _failed(url, f"HTTP {response.status}")
    return parse_prometheus_text(response.text)


@dataclass(frozen=True)
class Sample:
    """One line of the Prometheus text exposition format."""

    name: str
    labels: Mapping[str, str]
    value: float


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+"
                     r"(?P<value>\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_prometheus_text(text: str) -> list[Sample]:
    """Samples of a /metrics page (comments and unparsable lines skipped)."""
    samples: list[Sample] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = {k: _unescape(v) for k, v in _LABEL.findall(match.group("labels") or "")}
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        samples.append(Sample(match.group("name"), labels, value))
    return samples


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


# ------------------------------------------------------------------------------------------
# Member and Prometheus checks


ERROR_RATE_QUERY = (
    'sum(rate(binderhub_launch_time_seconds_count{{status="failure",{label}="{member}"}}[5m]))'
    ' / sum(rate(binderhub_launch_time_seconds_count{{{label}="{member}"}}[5m]))'
)


def error_rate_query(member: str, label: str = "member") -> str:
    """The PromQL of a member's launch error rate over 5 minutes.

    BinderHub's launch histogram has no member label of its own: the federation's Prometheus
    must attach one (an external label or a relabelling of each member's scrape), by default
    named `member` with the member's name as value.
    """
    return ERROR_RATE_QUERY.format(label=label, member=member)


def prometheus_query(prometheus_url: str, params: Mapping[str, str],
                     timeout: float) -> tuple[str, dict[str, Any]]:
    """One instant query of Prometheus' HTTP API: the URL asked and its `data` object.
    LiveError when Prometheus cannot be asked or answers something other than success."""
    url = prometheus_url.rstrip("/") + "/api/v1/query"
    try:
        response = http.get(url, timeout, params=params, headers=_NO_KEEPALIVE)
    except requests.RequestException as exc:
        raise _failed(url, f"{_reason(exc, timeout)}") from None
    try:
        data = json.loads(response.text)
    except ValueError:
        raise _failed(url, f"HTTP {response.status}, not JSON") from None
    if response.status != 200 or not isinstance(data, dict) \
            or data.get("status") != "success":
        error = data.get("error") if isinstance(data, dict) else None
        raise _failed(url, f"HTTP {response.status}: "
                      f"{answer_excerpt(str(error), url) if error else 'query failed'}")
    found = data.get("data")
    return shown_url(url), found if isinstance(found, dict) else {}


def query_error_rate(
    prometheus_url: str, member: str, label: str = "member", timeout: float = DEFAULT_TIMEOUT
) -> float | None:
    """The member's launch error rate (0..1) from Prometheus' HTTP API, or None without data
    (no launches in the window: an empty result or NaN)."""
    url, data = prometheus_query(prometheus_url, {"query": error_rate_query(member, label)},
                                 timeout)
    result = data.get("result")
    if not isinstance(result, list) or not result:
        return None
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        raise _failed(url, f"unexpected result: {kind_of_answer(result)}") from None
    return None if math.isnan(value) else value


def check_error_rate(
    prometheus_url: str, member: str, max_rate: float, label: str = "member",
    timeout: float = DEFAULT_TIMEOUT,
) -> CheckResult:
    try:
        rate = query_error_rate(prometheus_url, member, label, timeout)
    except LiveError as exc:
        return CheckResult(False, f"launch error rate unknown: {exc}")
    return judge_error_rate(rate, max_rate)


def judge_error_rate(rate: float | None, max_rate: float) -> CheckResult:
    """The fixed gate's verdict on a 5-minute error rate (None: no launches, which passes:
    the weakness issue 23 is about; the evidence gate never passes on no data)."""
    if rate is None:
        return CheckResult(True, "launch error rate: no launches in the last 5 minutes")
    if rate > max_rate:
        return CheckResult(False, f"launch error rate {rate:.1%} is above {max_rate:.1%}")
    return CheckResult(True, f"launch error rate {rate:.1%}")


# ------------------------------------------------------------------------------------------
# The redirector's state


@dataclass(frozen=True)
class LiveState:
    """What the redirector says right now."""

    active_hosts: Mapping[str, Mapping[str, Any]]
    samples: tuple[Sample, ...] = ()
    errors: tuple[str, ...] = ()
    # False when /active_hosts could not be read: nobody's rotation is known (not "out")
    hosts_known: bool = True


def redirector_url_problem(url: str) -> str | None:
    """Why url cannot be the redirector's base URL (a usage error), or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"expected an http(s) URL like https://mybinder.org, got {shown_url(url)!r}"
    return None


def check_redirector_url(url: str | None) -> None:
    """Refuse a --redirector-url that cannot be the redirector's base URL (exit 2), before
    anything is written or published; None (not given) passes."""
    if url and (problem := redirector_url_problem(url)):
        raise UsageError(f"--redirector-url: {problem}")


def read_live_state(redirector_url: str, timeout: float = DEFAULT_TIMEOUT) -> LiveState:
    """/active_hosts and /metrics; an endpoint that fails is reported in `errors`."""
    errors: list[str] = []
    hosts: dict[str, Any] = {}
    samples: list[Sample] = []
    known = True
    try:
        hosts = fetch_active_hosts(redirector_url, timeout)
    except LiveError as exc:
        errors.append(str(exc))
        known = False
    try:
        samples = fetch_metrics(redirector_url, timeout)
    except LiveError as exc:
        errors.append(str(exc))
    return LiveState(hosts, tuple(samples), tuple(errors), known)


# Metric names of the redirector's /metrics (federation_deploy/redirector/metrics.py; the
# first two are also mybinder's names): health with the failed check as `reason`, and the
# launches redirected to each member since the redirector started.
HEALTH_METRICS = ("federation_health",)
REDIRECT_METRICS = ("federation_redirect_count",)
MEMBER_LABELS = ("member",)


def _member_label(sample: Sample) -> str | None:
    for label in MEMBER_LABELS:
        if label in sample.labels:
            return sample.labels[label]
    return None


def metric_for(samples: tuple[Sample, ...], names: tuple[str, ...], member: str) -> float | None:
    for sample in samples:
        if sample.name in names and _member_label(sample) == member:
            return sample.value
    return None


def redirect_count(samples: tuple[Sample, ...], member: str) -> float:
    """Launches the redirector sent to member since it started."""
    return sum(s.value for s in samples
               if s.name in REDIRECT_METRICS and _member_label(s) == member)


def health_reason(samples: tuple[Sample, ...], member: str) -> str | None:
    for sample in samples:
        if sample.name in HEALTH_METRICS and _member_label(sample) == member:
            return sample.labels.get("reason") or None
    return None


# ------------------------------------------------------------------------------------------


def _get_json(url: str, timeout: float) -> Any:
    try:
        response = http.get(url, timeout, headers=_NO_KEEPALIVE)
    except requests.RequestException as exc:
        raise _failed(url, f"{_reason(exc, timeout)}") from None
    if response.status != 200:
        raise _failed(url, f"HTTP {response.status}")
    try:
        return json.loads(response.text)
    except ValueError:
        raise _failed(url, "not JSON") from None


def _reason(exc: requests.RequestException, timeout: float) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no complete answer within {timeout:g}s"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__
