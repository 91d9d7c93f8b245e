"""Ramp policies side by side: launch share, stickiness and cold launches under Zipf popularity.

Run: .venv/bin/python benchmarks/ramp_policy.py [--seeds 5] [--launches 20000] [--json]
     .venv/bin/python benchmarks/ramp_policy.py --quick     (1 seed, 2,000 launches: seconds)

Everything goes through the redirector's own routing code (routing.choose_member, and for the
sticky policy the StickyRamp the app keeps), with the repository's federation (gke 60, gesis 25,
ovh2 15) and curvenote ramping to 1%, 5% and 25% of launches. Launches: Zipf(1.1) over 2,000
repositories, 20,000 per run, 5 seeds. "cold" = the first launch of a repository on a member in
the measured launches (it needs a build or a pull there); every policy starts with empty caches.

Policies:
  rendezvous   plain rendezvous with curvenote at the weight of the target share (no ramp):
               under Zipf popularity its share of launches is not the target
  rendezvous, same share
               plain rendezvous with curvenote at the weight (found by bisection) that gives it
               the target share of launches under the known Zipf probabilities: the baseline
               for "cold launches at the new member no more than rendezvous at the same share"
  per-launch   the first wave's ramp: each launch a uniform draw
  sticky       this redirector's default: a set of repositories, chosen by rendezvous rank and
               estimated popularity, popular ones among those curvenote keeps at its final
               weight (FINAL_WEIGHT, 50: a third of the weight) (the estimate is first warmed
               up by 20,000 launches of another sample, as a running redirector's would be)

"repos leaving at 100%": repositories the new member served that plain rendezvous at its final
weight gives another member, so that completing the ramp moves them away.

Then four scenarios for the sticky policy, each at every target, figures over the seeds:
  restart      a redirector with no estimate takes the launches: how many until the plan's true
               share (under the known Zipf probabilities) is within the issue's bound for good
  trending     mid-step, one repository the ramp member holds jumps to 3% of all launches: how
               many launches until the plan is back within the bound for good
  stops        mid-step, the most popular repository the ramp member holds is launched no
               more: how many launches until the plan is back within the bound for good
  replicas     two redirectors that do not talk to each other, each gets a random half of the
               launches (each warmed on its own half): combined share, repositories sent to
               both members

Reading the first table: "new member's share" is the lowest and highest over the seeds; the
other columns are means over the seeds. "repos on two members" is a percentage of the
repositories launched in the measured launches. "rendezvous, same share" cannot always hit
the target: its share moves in steps, one repository at a time (at 25% here the step from
19% lands on 27%, a repository of 8%), and the bisection keeps the nearer side.

Reading the second table: a count of launches is the maximum over the seeds; "not within
bound" means that in at least one seed the plan's share was still outside the bound after the
last launch (so no count exists; more --launches may give one). "trending repo" says where the
repository that started trending ended up, over the seeds: "curvenote->curvenote" stayed on the
ramping member, "curvenote->gke" was moved off it (the plan kept a repository that alone would
overshoot the share off the member).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from federation_deploy.redirector.app import LaunchDraws  # noqa: E402
from federation_deploy.redirector.routing import (  # noqa: E402
    REASON_RAMP,
    Candidate,
    RoutingTable,
    cache_key,
    choose_member,
)
from federation_deploy.redirector.sticky import StickyRamp  # noqa: E402

OTHERS = {"gke": 60.0, "gesis": 25.0, "ovh2": 15.0}
NEW = "curvenote"
TARGETS = (0.01, 0.05, 0.25)
BOUND = {0.01: 0.003, 0.05: 0.005, 0.25: 0.015}  # the bounds on the share
REPOSITORIES = 2000
ZIPF = 1.1
TRENDING_SHARE = 0.03
# curvenote's weight when its ramp completes (a 33.3% weight share, above every target): the
# sticky policy picks its repositories among those plain rendezvous gives it at this weight
FINAL_WEIGHT = 50.0


def repo_path(rank: int) -> str:
    return f"/build/gh/org{rank % 41}/repo-{rank}/HEAD"


PATHS = [repo_path(r) for r in range(1, REPOSITORIES + 1)]
KEYS = [cache_key(p) for p in PATHS]
PROBABILITIES = [r ** -ZIPF for r in range(1, REPOSITORIES + 1)]
_total = sum(PROBABILITIES)
PROBABILITIES = [p / _total for p in PROBABILITIES]


def zipf_sample(rng: random.Random, n: int, probabilities: Sequence[float] = PROBABILITIES
                ) -> list[int]:
    """n repository indexes (0-based) drawn from `probabilities`."""
    cumulative = list(itertools.accumulate(probabilities))
    top = cumulative[-1]
    return [min(bisect.bisect(cumulative, rng.random() * top), len(cumulative) - 1)
            for _ in range(n)]


def weight_for(target: float) -> float:
    """The weight whose share of the total weight is `target`."""
    return target * sum(OTHERS.values()) / (1 - target)


def table_for(target: float, policy: str, weight: float | None = None) -> RoutingTable:
    weight = weight_for(target) if weight is None else weight
    ramp = not policy.startswith("rendezvous")
    candidates = [Candidate(n, f"https://{n}.test", w) for n, w in OTHERS.items()]
    candidates.append(Candidate(NEW, f"https://{NEW}.test", weight, ramp,
                                FINAL_WEIGHT if ramp else None))
    return RoutingTable.of(candidates, "rendezvous",
                           ramp_policy="sticky" if policy == "sticky" else "per-launch")


class Router:
    """One redirector's routing: the table, its launch draws and (sticky) its StickyRamp."""

    def __init__(self, table: RoutingTable, seed: int) -> None:
        self.table = table
        self.draw = LaunchDraws(random.Random(seed).random())
        self.sticky = StickyRamp()
        self.sticky.set_table(table)

    def route(self, index: int) -> str:
        path = PATHS[index]
        choice = choose_member(self.table, path, self.draw(), self.sticky.plan)
        self.sticky.observe(KEYS[index])
        return choice.name

    def member_of(self, index: int) -> str:
        """Where the current plan sends repository `index` (without counting a launch)."""
        return choose_member(self.table, PATHS[index], 0.0, self.sticky.plan).name

    def true_share(self, probabilities: Sequence[float]) -> float:
        """The share of launches the current plan gives the new member under `probabilities`."""
        plan = self.sticky.plan
        return sum(p for i, p in enumerate(probabilities)
                   if choose_member(self.table, PATHS[i], 0.0, plan).reason == REASON_RAMP)


def rendezvous_launch_share(weight: float) -> float:
    """The new member's share of launches under plain rendezvous at `weight` (Zipf
    probabilities, no sampling): the sum of the probabilities of the repositories it wins."""
    table = table_for(0.0, "rendezvous", weight)
    return sum(p for path, p in zip(PATHS, PROBABILITIES, strict=True)
               if choose_member(table, path, 0.0).name == NEW)


def same_share_weight(target: float, iterations: int = 40) -> tuple[float, float]:
    """(weight, launch share): the rendezvous weight whose launch share is closest to target.

    The share only grows with the weight (a higher weight only raises the new member's
    scores), a step function of it: bisection between 0 and a weight that overshoots."""
    low, high = 0.0, weight_for(target)
    while rendezvous_launch_share(high) < target:
        high *= 2
    for _ in range(iterations):
        middle = (low + high) / 2
        if rendezvous_launch_share(middle) < target:
            low = middle
        else:
            high = middle
    # the steps either side of the target: the nearer one
    return min(((w, rendezvous_launch_share(w)) for w in (low, high)),
               key=lambda ws: abs(ws[1] - target))


def final_repositories() -> frozenset[int]:
    """The repositories plain rendezvous gives the new member at FINAL_WEIGHT: after the ramp
    it keeps these, any other it had moves away."""
    table = table_for(0.0, "rendezvous", FINAL_WEIGHT)
    return frozenset(i for i, path in enumerate(PATHS)
                     if choose_member(table, path, 0.0).name == NEW)


FINAL = final_repositories()


@dataclass
class Run:
    share: float
    repos_at_new: int
    cold_new: float  # share of the new member's launches that were cold
    cold_all: float
    split: int  # repositories sent to more than one member
    distinct: int
    leaving: int = 0  # repositories at the new member that move away when the ramp completes


def measure(members: Sequence[str], launches: Sequence[int]) -> Run:
    seen: set[tuple[str, int]] = set()
    cold: Counter[str] = Counter()
    count: Counter[str] = Counter()
    where: dict[int, set[str]] = defaultdict(set)
    for member, index in zip(members, launches, strict=True):
        count[member] += 1
        where[index].add(member)
        if (member, index) not in seen:
            seen.add((member, index))
            cold[member] += 1
    n = len(launches)
    return Run(
        share=count[NEW] / n,
        repos_at_new=sum(1 for m, _ in seen if m == NEW),
        cold_new=cold[NEW] / count[NEW] if count[NEW] else 0.0,
        cold_all=sum(cold.values()) / n,
        split=sum(1 for members in where.values() if len(members) > 1),
        distinct=len(where),
        leaving=sum(1 for m, i in seen if m == NEW and i not in FINAL),
    )


def run_policy(policy: str, target: float, seed: int, n: int,
               weight: float | None = None) -> Run:
    rng = random.Random(seed)
    router = Router(table_for(target, policy, weight), seed)
    if policy == "sticky":
        for index in zipf_sample(random.Random(seed + 1000), n):  # warm-up: another sample
            router.route(index)
    launches = zipf_sample(rng, n)
    return measure([router.route(i) for i in launches], launches)


def launches_until_on_target(router: Router, launches: Sequence[int], target: float,
                             probabilities: Sequence[float], every: int = 100) -> int | None:
    """Launches routed until the plan's true share is within the bound and stays there."""
    last_off: int | None = 0
    for i, index in enumerate(launches, 1):
        router.route(index)
        if i % every == 0 and abs(router.true_share(probabilities) - target) > BOUND[target]:
            last_off = i
    if abs(router.true_share(probabilities) - target) > BOUND[target]:
        return None
    return last_off


def restart(target: float, seed: int, n: int) -> int | None:
    router = Router(table_for(target, "sticky"), seed)
    return launches_until_on_target(router, zipf_sample(random.Random(seed), n), target,
                                    PROBABILITIES)


def trending(target: float, seed: int, n: int) -> tuple[int | None, float, str]:
    """(launches until back on target, share of the trending repo's launches on the new
    member after recovery, where the trending repository ended up)."""
    router = Router(table_for(target, "sticky"), seed)
    for index in zipf_sample(random.Random(seed + 1000), n):
        router.route(index)
    # a repository the new member holds, outside the 50 most popular: it starts trending
    trend = next(i for i in range(50, REPOSITORIES) if router.member_of(i) == NEW)
    probabilities = [p * (1 - TRENDING_SHARE) for p in PROBABILITIES]
    probabilities[trend] += TRENDING_SHARE
    launches = zipf_sample(random.Random(seed), n, probabilities)
    recovered = launches_until_on_target(router, launches, target, probabilities)
    return recovered, router.true_share(probabilities), f"{NEW}->{router.member_of(trend)}"


def stopping(target: float, seed: int, n: int) -> int | None:
    """Launches until back on target after the most popular repository the new member holds
    is not launched any more (mid-step)."""
    router = Router(table_for(target, "sticky"), seed)
    for index in zipf_sample(random.Random(seed + 1000), n):
        router.route(index)
    gone = next(i for i in range(REPOSITORIES) if router.member_of(i) == NEW)
    probabilities = list(PROBABILITIES)
    probabilities[gone] = 0.0
    total = sum(probabilities)
    probabilities = [p / total for p in probabilities]
    launches = zipf_sample(random.Random(seed), n, probabilities)
    return launches_until_on_target(router, launches, target, probabilities)


def replicas(target: float, seed: int, n: int) -> Run:
    table = table_for(target, "sticky")
    a, b = Router(table, seed), Router(table, seed + 1)
    pick = random.Random(seed + 2)
    for index in zipf_sample(random.Random(seed + 1000), n):
        (a if pick.random() < 0.5 else b).route(index)
    launches = zipf_sample(random.Random(seed), n)
    members = [(a if pick.random() < 0.5 else b).route(i) for i in launches]
    return measure(members, launches)


# --- output -----------------------------------------------------------------------------------


def span(values: Sequence[float]) -> str:
    return f"{100 * min(values):.2f}-{100 * max(values):.2f}%"


def mean_percent(values: Sequence[float]) -> str:
    return f"{100 * statistics.fmean(values):.1f}%"


def table_rows(runs: dict[tuple[float, str], list[Run]]) -> list[list[str]]:
    rows = []
    for (target, policy), rs in runs.items():
        rows.append([
            f"{100 * target:g}%", policy, span([r.share for r in rs]),
            f"{statistics.fmean(r.repos_at_new for r in rs):.0f}",
            mean_percent([r.cold_new for r in rs]), mean_percent([r.cold_all for r in rs]),
            f"{statistics.fmean(100 * r.split / r.distinct for r in rs):.2f}%",
            f"{statistics.fmean(r.leaving for r in rs):.0f}",
        ])
    return rows


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


SAME_SHARE = "rendezvous, same share"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=positive, default=None, metavar="N",
                        help="random seeds per figure, 1..N (default: 5; 1 with --quick)")
    parser.add_argument("--launches", type=positive, default=None, metavar="N",
                        help="launches per run, and per warm-up (default: 20000; 2000 with "
                             "--quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a run of seconds: 1 seed, 2,000 launches (figures are noisier; "
                             "--seeds and --launches still override)")
    parser.add_argument("--json", action="store_true",
                        help="also print every run's figures as JSON after the tables "
                             "(default: tables only)")
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 5
    if args.launches is None:
        args.launches = 2000 if args.quick else 20000
    return args


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = range(1, args.seeds + 1)
    n = args.launches
    started = time.perf_counter()

    runs: dict[tuple[float, str], list[Run]] = {}
    same_share: dict[float, tuple[float, float]] = {}
    for target in TARGETS:
        same_share[target] = weight, _ = same_share_weight(target)
        for policy in ("rendezvous", SAME_SHARE, "per-launch", "sticky"):
            runs[(target, policy)] = [
                run_policy(policy, target, s, n, weight if policy == SAME_SHARE else None)
                for s in seeds]
    header = ["target", "policy", "new member's share", "repos at new member",
              "cold launches at new member", "cold launches, federation",
              "repos on two members", "repos leaving at 100%"]
    print(f"Zipf {ZIPF} over {REPOSITORIES} repositories, {n} launches, seeds "
          f"{seeds.start}-{seeds.stop - 1}\n")
    print(markdown(header, table_rows(runs)))
    found = ", ".join(f"{100 * t:g}%: weight {w:.2f} (a {100 * w / (w + sum(OTHERS.values())):.2f}%"
                      f" weight share; launch share {100 * s:.2f}%)"
                      for t, (w, s) in same_share.items())
    plain = ", ".join(f"{100 * rendezvous_launch_share(weight_for(t)):.2f}%" for t in TARGETS)
    print(f"\n{SAME_SHARE!r}, curvenote's weight found by bisection: {found}. At the target's "
          f"own weight, plain rendezvous gives it a launch share of {plain}.")
    # per launch of the federation too: a share a step above the target lowers the cold
    # fraction of the new member's own launches (more launches over similar repositories)
    print("Cold launches at the new member, sticky vs rendezvous at the same share, as a "
          "share of its launches (and per 1,000 launches of the federation): "
          + "; ".join(f"{100 * t:g}% {_cold(runs[(t, 'sticky')])} vs "
                      f"{_cold(runs[(t, SAME_SHARE)])}" for t in TARGETS))

    scenarios: dict[str, Any] = {}
    rows = []
    for target in TARGETS:
        restarts = [restart(target, s, n) for s in seeds]
        trends = [trending(target, s, n) for s in seeds]
        stops = [stopping(target, s, n) for s in seeds]
        two = [replicas(target, s, n) for s in seeds]
        scenarios[f"{target:g}"] = {
            "restart": restarts, "trending": [t[0] for t in trends],
            "trending_moves": [t[2] for t in trends], "stopping": stops,
            "replicas_share": [r.share for r in two], "replicas_split": [r.split for r in two],
        }
        rows.append([
            f"{100 * target:g}%", f"±{100 * BOUND[target]:g}",
            _launches(restarts), _launches([t[0] for t in trends]),
            ", ".join(sorted(set(t[2] for t in trends))), _launches(stops),
            span([r.share for r in two]),
            f"{max(100 * r.split / r.distinct for r in two):.2f}%",
        ])
    print("\nSticky policy scenarios (launches until the plan's true share is within the "
          "bound for good; max over seeds; \"not within bound\": some seed was still outside "
          "it after the last launch; \"trending repo\": where the trending repository ended "
          "up, from->to)\n")
    print(markdown(["target", "bound (points)", "restart: launches", "trending 3%: launches",
                    "trending repo", "held repo stops: launches", "two replicas: share",
                    "two replicas: repos split"],
                   rows))
    print(f"\n({time.perf_counter() - started:.0f}s)")
    if args.json:
        print(json.dumps({
            "table": [{"target": t, "policy": p, "runs": [r.__dict__ for r in rs]}
                      for (t, p), rs in runs.items()],
            "same_share_weight": {f"{t:g}": {"weight": w, "launch_share": s}
                                  for t, (w, s) in same_share.items()},
            "scenarios": scenarios,
        }, indent=2))
    return 0


def _cold(runs: Sequence[Run]) -> str:
    per_thousand = statistics.fmean(1000 * r.cold_new * r.share for r in runs)
    return f"{mean_percent([r.cold_new for r in runs])} ({per_thousand:.1f})"


def _launches(values: Sequence[int | None]) -> str:
    if any(v is None for v in values):
        return "not within bound"
    return f"{max(v for v in values if v is not None):,}"


if __name__ == "__main__":
    sys.exit(main())
