"""Two redirector replicas ramping one member through 1%, 5% and 25%, in many hash universes.

Run: .venv/bin/python benchmarks/ramp_replicas.py [--seeds 8] [--warm-up 20000] [--launches 20000]
     .venv/bin/python benchmarks/ramp_replicas.py --quick      (2 seeds: about 15 seconds)
     .venv/bin/python benchmarks/ramp_replicas.py --quick --lag 250   (as `redirector serve`)

How robust is the sticky policy's agreement between replicas that do not talk to each other?
benchmarks/ramp_policy.py measures it in one federation, where every repository has one set of
ranks. Here the ramping member takes six names (each name gives every repository other ranks:
another "universe" of which popular repositories fall in its pool), with `--seeds` seeds each.
Each run: two StickyRamps (the redirector's own code), each launch sent to one of them at
random; a warm-up at the 1% step, then `--launches` launches at each step (the table changes
between steps, as a hot reload does). Zipf(1.1) over 2,000 repositories; the others weigh
gke 50, ovh 30, gesis 20; the ramping member's final weight is 50.

Per step it prints how many runs broke the issue's bounds: the member's share of the step's
launches off target by more than ±0.3 / ±0.5 / ±1.5 points, or more than 1% of the
repositories launched in the step sent to two members; and the worst share and split seen.
The bounds are the issue's for 20,000 launches: with fewer per step (--launches) the measured
share is noisier and a run may be off the bound by chance alone.

--lag N: each check's plan takes effect N + 1 launches after the launch it looked at, as in
`redirector serve` (lag 250, the checks run between requests); the default 0 is the
synchronous form the sticky tests use (the plan in force from the next launch).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from federation_deploy.redirector.routing import (  # noqa: E402
    Candidate,
    RoutingTable,
    cache_key,
    choose_member,
)
from federation_deploy.redirector.sticky import StickyRamp  # noqa: E402

OTHERS = {"gke": 50.0, "ovh": 30.0, "gesis": 20.0}
NAMES = ("curvenote", "hetzner", "aws2", "bare", "ovh3", "x1")
STEPS = ((0.01, 0.003), (0.05, 0.005), (0.25, 0.015))  # (share, bound) from the issue
FINAL_WEIGHT = 50.0
REPOSITORIES = 2000
ZIPF = 1.1


def launches(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    weights = [rank ** -ZIPF for rank in range(1, REPOSITORIES + 1)]
    picks = rng.choices(range(REPOSITORIES), weights=weights, k=count)
    return [f"/build/gh/org{k % 41}/repo-{k}/HEAD" for k in picks]


def table(name: str, share: float) -> RoutingTable:
    weight = share * sum(OTHERS.values()) / (1 - share)
    candidates = [Candidate(n, f"https://{n}.test", w) for n, w in OTHERS.items()]
    candidates.append(Candidate(name, f"https://{name}.test", weight, True, FINAL_WEIGHT))
    return RoutingTable.of(candidates, "rendezvous", ramp_policy="sticky")


def run(name: str, seed: int, warm_up: int, per_step: int,
        lag: int = 0) -> list[tuple[float, float]]:
    """[(share, split fraction)] of each step."""
    replicas = [StickyRamp(lag=lag), StickyRamp(lag=lag)]
    current = table(name, STEPS[0][0])
    for replica in replicas:
        replica.set_table(current)
    pick = random.Random(17 + 100 * seed)

    def send(paths: Sequence[str]) -> tuple[Counter[str], dict[str, set[str]]]:
        counts: Counter[str] = Counter()
        where: dict[str, set[str]] = defaultdict(set)
        for path in paths:
            replica = replicas[pick.random() < 0.5]
            member = choose_member(current, path, 0.0, replica.plan).name
            replica.observe(cache_key(path))
            counts[member] += 1
            where[cache_key(path)].add(member)
        return counts, where

    send(launches(warm_up, 21 + 100 * seed))
    figures = []
    for i, (share, _) in enumerate(STEPS):
        if i:
            current = table(name, share)
            for replica in replicas:
                replica.set_table(current)
        counts, where = send(launches(per_step, 30 + i + 100 * seed))
        split = sum(len(m) > 1 for m in where.values()) / len(where)
        figures.append((counts[name] / per_step, split))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=None, help="seeds per name (default 8)")
    parser.add_argument("--warm-up", type=int, default=None,
                        help="launches before the first step is measured (default 20000)")
    parser.add_argument("--launches", type=int, default=None,
                        help="launches measured per step (default 20000)")
    parser.add_argument("--quick", action="store_true", help="2 seeds per name")
    parser.add_argument("--lag", type=int, default=0,
                        help="launches from a check to its plan taking effect, minus one "
                             "(default 0: synchronous; `redirector serve` uses 250)")
    args = parser.parse_args(argv)
    seeds = args.seeds or (2 if args.quick else 8)
    warm_up = args.warm_up or 20000
    per_step = args.launches or 20000
    if min(seeds, warm_up, per_step) < 1:
        parser.error("--seeds, --warm-up and --launches must be at least 1")
    if args.lag < 0:
        parser.error("--lag must be at least 0")
    started = time.perf_counter()
    results = [run(name, seed, warm_up, per_step, args.lag) for name in NAMES
               for seed in range(seeds)]
    print(f"{len(NAMES)} member names x {seeds} seeds = {len(results)} runs; warm-up {warm_up:,}, "
          f"{per_step:,} launches per step, lag {args.lag}\n")
    print("| step | bound (points) | runs off the share bound | runs over 1% split "
          "| share, lowest-highest | worst split |")
    print("|---|---|---|---|---|---|")
    for i, (share, bound) in enumerate(STEPS):
        shares = [r[i][0] for r in results]
        splits = [r[i][1] for r in results]
        print(f"| {100 * share:g}% | ±{100 * bound:g} "
              f"| {sum(abs(s - share) > bound for s in shares)} "
              f"| {sum(s > 0.01 for s in splits)} "
              f"| {100 * min(shares):.2f}-{100 * max(shares):.2f}% | {100 * max(splits):.2f}% |")
    print(f"\n({time.perf_counter() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
