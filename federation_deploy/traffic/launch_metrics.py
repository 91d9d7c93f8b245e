"""Launch evidence from Prometheus: each member's launches, failures and launch times in a window.

BinderHub observes every launch in `binderhub_launch_time_seconds` (a histogram labelled
`status`: success or failure). The federation's Prometheus attaches the member's name (an
external label or a relabelling of each member's scrape, `member` by default), so one query,

    sum by (member, status, le) (increase(binderhub_launch_time_seconds_bucket[Ns]))

evaluated at the window's end, gives every member's window at once: the new member's and the
others' over the same N seconds, which is what the evidence gate compares.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from federation_deploy.traffic.live import (
    DEFAULT_TIMEOUT,
    LiveError,
    kind_of_answer,
    prometheus_query,
)
from federation_deploy.traffic.ramp.evidence import Histogram, Launches

LAUNCH_BUCKETS = "binderhub_launch_time_seconds_bucket"


def launches_query(seconds: float, label: str = "member") -> str:
    """The PromQL of every member's launches over the last `seconds` (whole, at least 1)."""
    window = max(1, math.ceil(seconds))
    return (f"sum by ({label}, status, le) "
            f"(increase({LAUNCH_BUCKETS}[{window}s]))")


@dataclass(frozen=True)
class FederationLaunches:
    """Every member's launches over one window (users and probes alike: BinderHub cannot
    tell them apart; the ramp subtracts the probes it sent)."""

    members: Mapping[str, Launches] = field(default_factory=dict)
    seconds: float = 0.0

    def of(self, member: str) -> Launches:
        return self.members.get(member, Launches())

    def others(self, member: str) -> Launches:
        total = Launches()
        for name, launches in self.members.items():
            if name != member:
                total = total + launches
        return total

    @property
    def launch_rate(self) -> float:
        """The federation's launches per second over the window."""
        if self.seconds <= 0:
            return 0.0
        return sum(m.launches for m in self.members.values()) / self.seconds


def parse_launch_vector(result: Any, label: str = "member",
                        seconds: float = 0.0) -> FederationLaunches:
    """A FederationLaunches from the query's instant vector ([{metric, value}, ...]); series
    without the member label are left out (they cannot be told apart)."""
    if not isinstance(result, list):
        raise ValueError(f"expected a vector, got {kind_of_answer(result)}")
    buckets: dict[tuple[str, str], dict[float, float]] = defaultdict(dict)
    for series in result:
        try:
            metric = series["metric"]
            value = float(series["value"][1])
            le = float(metric["le"].replace("+Inf", "inf"))
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise ValueError(f"unexpected series: {kind_of_answer(series)}") from None
        member = metric.get(label)
        if not member or math.isnan(value):
            continue
        status = metric.get("status", "success")
        kept = buckets[(member, status)]
        kept[le] = kept.get(le, 0.0) + value
    members: dict[str, Launches] = {}
    for member in sorted({m for m, _ in buckets}):
        success = Histogram.from_mapping(buckets.get((member, "success"), {}))
        failed = Histogram.from_mapping(buckets.get((member, "failure"), {})).total
        members[member] = Launches(success.total + failed, failed, success)
    return FederationLaunches(members, seconds)


def query_launches(prometheus_url: str, since: datetime, until: datetime,
                   label: str = "member", timeout: float = DEFAULT_TIMEOUT) -> FederationLaunches:
    """Every member's launches from since to until (Prometheus' HTTP API, one instant query
    at until, rounded down to whole seconds of window). The window starts at since exactly,
    whatever until: a growing window from a fixed start (a step's) never loses a scrape at
    its start that an earlier check counted. LiveError when Prometheus cannot be asked or
    answers something else."""
    seconds = max(1, math.floor(max(0.0, (until - since).total_seconds())))
    at = since.timestamp() + seconds  # at most until (a window under 1 s: 1 s from since)
    params = {"query": launches_query(seconds, label), "time": f"{at:.3f}"}
    url, data = prometheus_query(prometheus_url, params, timeout)
    try:
        return parse_launch_vector(data.get("result"), label, seconds)
    except ValueError as exc:
        raise LiveError(f"{url}: {exc}") from None
