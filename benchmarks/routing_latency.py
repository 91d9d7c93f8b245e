"""The launch path's own latency, in-process: counting + choosing, with a sticky ramp in progress.

Run: .venv/bin/python benchmarks/routing_latency.py [--launches 100000] [--json]

What a cookie-less /build/ request costs the redirector besides HTTP: Redirector.route (the
routing decision from the table and the sticky plan in force, then StickyRamp.count), timed
per launch with perf_counter. The redirector's own objects: make_app with ten members (weights
10..19, as benchmarks/redirector.py), the last one ramping at 5% under the sticky policy to a
final weight of 19, every member healthy. Launches: Zipf(1.1) over 2,000 repositories plus 10%
launches of repositories never seen before, after a warm-up of 20,000 launches (the estimate
warm, as in a running redirector).

Between two launches the planning gets a slice of PLAN_SLICE seconds when it has work (what
the event loop's planning task does between requests; untimed here, as it is no launch's).
After the set-up the objects are moved out of the collector's sight (gc.freeze, as `redirector
serve` does): a full collection then walks only what the launches allocate.

Targets (the issue): p99.9 under 0.2 ms and max under 2 ms. The max is one sample: on a busy
machine the process can be descheduled mid-launch, so run it niced on an otherwise quiet core.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from federation_deploy.redirector.app import PLAN_SLICE, make_app  # noqa: E402
from federation_deploy.redirector.config import parse_config  # noqa: E402
from federation_deploy.redirector.routing import build_table  # noqa: E402

MEMBERS = 10
REPOSITORIES = 2000
ZIPF = 1.1
NEW_SHARE = 0.1
WARM_UP = 20000
TARGET_P999_MS = 0.2
TARGET_MAX_MS = 2.0


def config() -> dict[str, Any]:
    hosts: dict[str, dict[str, Any]] = {
        f"member{i}": {"url": f"https://member{i}.test", "weight": 10 + i, "prime": i == 0}
        for i in range(MEMBERS)
    }
    last = hosts[f"member{MEMBERS - 1}"]
    others = sum(h["weight"] for h in hosts.values()) - last["weight"]
    last.update(weight=round(0.05 * others / 0.95, 6), ramp=True, final_weight=last["weight"])
    return {"hosts": hosts, "load_balancer": "rendezvous", "ramp_policy": "sticky"}


def launch_paths(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    weights = [rank ** -ZIPF for rank in range(1, REPOSITORIES + 1)]
    picks = rng.choices(range(REPOSITORIES), weights=weights, k=count)
    return [f"/build/gh/org{k % 41}/repo-{k}/HEAD" if rng.random() >= NEW_SHARE
            else f"/build/gh/new{seed}/repo-{i}/HEAD" for i, k in enumerate(picks)]


def measure(launches: int, clock: Callable[[], float] = time.perf_counter) -> dict[str, Any]:
    app = make_app(parse_config(config()))
    redirector = app.redirector
    # every member healthy: the table the health checks would make
    settings = redirector.config
    table = build_table(settings.hosts, {h.name for h in settings.hosts},
                        settings.load_balancer, settings.ramp_policy)
    redirector.ramp.set_table(table)
    redirector.table = table
    ramp = redirector.ramp
    route = redirector.route
    for path in launch_paths(WARM_UP, 1):
        route(path, None)
        ramp.settle()
    paths = launch_paths(launches, 2)
    timings = [0.0] * launches
    replans, late = ramp.replans, ramp.late
    gc.collect()
    gc.freeze()
    for i, path in enumerate(paths):
        start = clock()
        route(path, None)
        timings[i] = clock() - start
        if ramp.pending:
            ramp.work(PLAN_SLICE)
    timings.sort()
    ms = [1000 * t for t in timings]
    return {
        "launches": launches,
        "p50_ms": ms[launches // 2],
        "p99_ms": ms[int(launches * 0.99)],
        "p999_ms": ms[int(launches * 0.999)],
        "max_ms": ms[-1],
        "replans": ramp.replans - replans,
        "late_checks": ramp.late - late,
        "load_average": os.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--launches", type=int, default=100000, help="timed launches")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with the thread's CPU clock instead of the wall clock: "
                             "leaves out the time the process was descheduled (a busy machine)")
    args = parser.parse_args()
    figures = measure(args.launches, time.thread_time if args.cpu_time else time.perf_counter)
    figures["clock"] = "thread CPU time" if args.cpu_time else "wall"
    ok = figures["p999_ms"] < TARGET_P999_MS and figures["max_ms"] < TARGET_MAX_MS
    figures["targets_met"] = ok
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"routing latency: {figures['launches']:,} launches, {MEMBERS} members, one ramping "
          f"at 5% (sticky): count + choose per launch ({figures['clock']} clock)")
    print(f"  p50 {figures['p50_ms']:.4f} ms, p99 {figures['p99_ms']:.4f} ms, "
          f"p99.9 {figures['p999_ms']:.4f} ms, max {figures['max_ms']:.3f} ms")
    print(f"  re-plans {figures['replans']}, checks a launch finished itself "
          f"{figures['late_checks']}; load average {figures['load_average']:.2f}")
    print(f"targets: p99.9 < {TARGET_P999_MS} ms, max < {TARGET_MAX_MS} ms: "
          f"{'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
