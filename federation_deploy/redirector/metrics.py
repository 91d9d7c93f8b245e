"""Prometheus metrics of the redirector, written in the text exposition format by hand."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from federation_deploy.redirector.config import RedirectorConfig
from federation_deploy.redirector.health_checks import MemberStatus
from federation_deploy.redirector.reference import Reference
from federation_deploy.redirector.routing import RoutingTable
from federation_deploy.redirector.sticky import StickyRamp

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[Mapping[str, str], float]


@dataclass
class Metrics:
    """The redirector's counters; gauges are computed from the live state when scraped."""

    redirects: Counter[tuple[str, str]] = field(default_factory=Counter)
    reloads: Counter[str] = field(default_factory=Counter)
    last_reload_ok: bool = True

    def count_redirect(self, member: str, reason: str) -> None:
        self.redirects[(member, reason)] += 1

    def count_reload(self, ok: bool) -> None:
        self.reloads["success" if ok else "failure"] += 1
        self.last_reload_ok = ok


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> list[str]:
    """One metric family: HELP and TYPE lines, then one line per sample."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        if labels:
            rendered = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{rendered}}} {format_value(value)}")
        else:
            lines.append(f"{name} {format_value(value)}")
    return lines


def render_metrics(
    metrics: Metrics,
    config: RedirectorConfig,
    statuses: Mapping[str, MemberStatus],
    table: RoutingTable,
    check_counts: Mapping[tuple[str, bool], int],
    ramp: StickyRamp | None = None,
    reference: Reference | None = None,
) -> str:
    """The whole /metrics page.

    federation_health, federation_health_check and federation_redirect_count keep the names and
    labels of mybinder's redirector so that existing dashboards keep working.
    """
    names = [h.name for h in config.hosts]
    status = {n: statuses.get(n, MemberStatus()) for n in names}
    shares = table.shares()
    per_member: Counter[str] = Counter()
    for (member, _reason), count in metrics.redirects.items():
        per_member[member] += count

    lines: list[str] = []
    lines += family(
        "federation_health",
        "gauge",
        "Health of each member: 1 healthy, 0 not; 'reason' is the failed check, if any.",
        (({"member": n, "reason": status[n].reason}, float(status[n].healthy)) for n in names),
    )
    lines += family(
        "federation_health_check",
        "gauge",
        "Each health check of each member: 1 ok, 0 failed.",
        (
            ({"member": n, "check": check}, float(ok))
            for n in names
            for check, ok in sorted(status[n].checks.items())
        ),
    )
    lines += family(
        "federation_health_checks_total",
        "counter",
        "Health checks completed per member and result.",
        (
            ({"member": n, "result": "healthy" if healthy else "unhealthy"}, float(count))
            for (n, healthy), count in sorted(check_counts.items())
        ),
    )
    lines += family(
        "federation_redirects_total",
        "counter",
        "Launches redirected per member and reason (cookie, rendezvous, random, ramp, fallback).",
        (
            ({"member": member, "reason": reason}, float(count))
            for (member, reason), count in sorted(metrics.redirects.items())
        ),
    )
    lines += family(
        "federation_redirect_count",
        "gauge",
        "Launches redirected per member (mybinder's name; see federation_redirects_total).",
        (({"member": m}, float(c)) for m, c in sorted(per_member.items())),
    )
    lines += family(
        "federation_member_weight",
        "gauge",
        "Configured weight of each member.",
        (({"member": h.name}, h.weight) for h in config.hosts),
    )
    lines += family(
        "federation_member_ramp",
        "gauge",
        "1 when the member is ramping (gets a share of launches, see federation_ramp_*), else 0.",
        (({"member": h.name}, float(h.ramp)) for h in config.hosts),
    )
    lines += family(
        "federation_member_share",
        "gauge",
        "Expected share of cookie-less launches now (weights renormalised over healthy members).",
        (({"member": n}, shares.get(n, 0.0)) for n in names),
    )
    if ramp is not None:
        lines += ramp_families(config, table, ramp)
    lines += family(
        "federation_routing_fallback",
        "gauge",
        "1 when no member is healthy and the primes take every launch.",
        [({}, float(table.fallback))],
    )
    if reference is not None:
        lines += family(
            "federation_reference",
            "gauge",
            "The versions reference and last resort (1): the prime, or the member acting for a "
            "prime unhealthy longer than prime_fallback_after (prime=\"false\").",
            [({"member": reference.name, "prime": str(reference.prime).lower()}, 1.0)],
        )
        lines += family(
            "federation_prime_fallback",
            "gauge",
            "1 while another member acts as the reference for a prime long unhealthy.",
            [({}, float(not reference.prime))],
        )
    lines += family(
        "federation_config_reloads_total",
        "counter",
        "Config file reloads by result (failure: the file did not parse or validate).",
        (({"result": r}, float(metrics.reloads[r])) for r in ("success", "failure")),
    )
    lines += family(
        "federation_config_last_reload_ok",
        "gauge",
        "0 when the latest change of the config file was rejected (the previous one is in force).",
        [({}, float(metrics.last_reload_ok))],
    )
    return "\n".join(lines) + "\n"


def ramp_families(config: RedirectorConfig, table: RoutingTable, ramp: StickyRamp) -> list[str]:
    """The sticky ramp's own view: target and estimated share, threshold, replans, memory.

    Compare federation_ramp_estimated_share with the share measured from the counters,
    sum by (member) (rate(federation_redirects_total{reason=~"ramp|rendezvous"}[1h])).
    """
    estimates = ramp.estimates if table.sticky_ramp else {}
    lines = family(
        "federation_ramp_policy",
        "gauge",
        "1 for the ramp policy in force (sticky: repositories; per-launch: draws).",
        [({"policy": config.ramp_policy}, 1.0)],
    )
    lines += family(
        "federation_ramp_target_share",
        "gauge",
        "Share of cookie-less launches each ramping member should get (its weight share).",
        (({"member": m}, t) for m, t in sorted(table.ramp_targets().items())),
    )
    lines += family(
        "federation_ramp_estimated_share",
        "gauge",
        "Sticky policy: share of cookie-less launches the current plan gives the member, "
        "estimated from the launches seen.",
        (({"member": m}, e.estimate) for m, e in sorted(estimates.items())),
    )
    lines += family(
        "federation_ramp_rank_threshold",
        "gauge",
        "Sticky policy: the member takes repositories whose rendezvous rank is below this "
        "(the rarely launched ones), besides popular ones of its final-weight pool.",
        (({"member": m}, e.threshold) for m, e in sorted(estimates.items())),
    )
    lines += family(
        "federation_ramp_excluded_repositories",
        "gauge",
        "Sticky policy: popular repositories under the threshold left on their rendezvous "
        "member because they alone would overshoot the share.",
        (({"member": m}, float(e.excluded)) for m, e in sorted(estimates.items())),
    )
    lines += family(
        "federation_ramp_included_repositories",
        "gauge",
        "Sticky policy: popular repositories above the threshold the member takes for their "
        "launches (among those plain rendezvous gives it at its final weight).",
        (({"member": m}, float(e.included)) for m, e in sorted(estimates.items())),
    )
    lines += family(
        "federation_ramp_changed_repositories",
        "gauge",
        "Repositories whose popularity changed lately: their share is counted from the change.",
        [({}, float(ramp.popularity.changed))],
    )
    lines += family(
        "federation_ramp_replans_total",
        "counter",
        "Sticky policy: times the set of repositories was recomputed (table change or drift).",
        [({}, float(ramp.replans))],
    )
    lines += family(
        "federation_ramp_late_checks_total",
        "counter",
        "Sticky policy: checks a launch had to finish itself, the planning between requests "
        "being behind (a saturated redirector).",
        [({}, float(ramp.late))],
    )
    lines += family(
        "federation_ramp_observed_launches_total",
        "counter",
        "Cookie-less launches counted by the popularity estimate since the redirector started.",
        [({}, float(ramp.counted))],
    )
    lines += family(
        "federation_ramp_tracked_repositories",
        "gauge",
        "Repositories whose launches the popularity estimate counts one by one.",
        [({}, float(len(ramp.popularity)))],
    )
    return lines
