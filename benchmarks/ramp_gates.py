"""The ramp's gates through thousands of simulated ramps: the evidence gate vs today's and Argo's.

Run: .venv/bin/python benchmarks/ramp_gates.py            (100 ramps per cell: 4,000 ramps)
     .venv/bin/python benchmarks/ramp_gates.py --quick    (25 ramps per cell: 1,000 ramps)
How long depends on the gate and the machine: the `new` gate at 2/s took about 0.9 s a ramp
(75 ramps in 67 s, nice 10, on a 2-core machine shared with other work), so count an hour or
more for a full run and 15 minutes or more for --quick; the probe gates write federation.yaml
at every probe, as a real ramp does, which is most of their time. Each cell's figures are
printed to stderr as it ends.
     .venv/bin/python benchmarks/ramp_gates.py --json     (the figures, keyed by gate and rate)

Each ramp is the REAL ramp engine (traffic/ramp/engine.py: its steps, holds, gates, rollbacks,
writes of federation.yaml in a temporary directory) with its seams simulated: the clock (a
3-hour ramp takes no time), the publisher and the redirector (/active_hosts answers what was
published), the member's health (always ok, so only the gates decide), Prometheus (each
member's launches, failures and launch-time histogram over any window, and the 5-minute error
rate today's gate asks) and the probes (launched in the background as the real ones are, run
inline: a probe takes its own launch time on the simulated clock, is collected at the first
check after it ended, and is counted in the member's metrics when it ends, launch time
included, as BinderHub counts it). The federation launches at RATE per second (Poisson); the
ramping member gets its published share of them. The others fail 2% of launches, with
log-normal launch times (median 30 s, spread 0.6). A probe launches a small cached
repository: on a member as good as the rest it fails 1% of the time and takes 10 s (median,
spread 0.4); a bad member's fault mostly hits users' repositories (builds, registry pushes,
big images), so its probes fail 6%, not its users' 20% (a member broken outright would fail
them all: not simulated, its probes would stop it at 0%). The pre-flight's launches are of
the repositories users launch (the most launched of the member's pool, from the simulated
redirector's /ramp_pool), so they are modelled as users' launches at that member: they fail
as users' do there (2%, or 20% on a bad member; on a flaky member 2% at 0%, since its fault
shows only above 10% share: the pre-flight cannot catch it), take users' launch times (3 x on
the slow member), run 4 at a time and are counted in its metrics when they end. The ramping
member is one of:

  good   the same as the others
  bad    20% of its launches fail (its probes: 6%; its pre-flight launches: 20%)
  slow   its launch times are 3 times the others' (its probes' and pre-flight's too)
  flaky  20% of its launches fail (probes: 6%), but only while its share is above 10%

The gates (all check every 30 s, the plan's hold is 30m, steps 1,5,10,25,50,100 to 80%):
  new    the evidence gate: the two sequential tests of evidence.py, a pre-flight at 0%
         first (the 20 most launched pool repositories, 4 launches at a time), probes every
         30 s on the member, at least 10 min per step, at most 2 h
  new_no_probes   the same without probes (the pre-flight, then users' launches only)
  new_no_preflight   the evidence gate before the pre-flight: probes every 30 s, and a
         qualifying hold at 0% on probes alone
  fixed  today's: roll back when the 5-minute error rate is above 5% (no launches pass);
         each step held 30 min
  argo   an Argo Rollouts analysis: 6 measurements 5 min apart of the 5-minute error rate
         (at most 5%, no launches pass); more than 1 failed measurement rolls back

Per gate and rate it prints: hours to full weight of the good member (median, and the
slowest), false rollbacks of the good member per 100 ramps (rolled back; the good member's
ramps paused as inconclusive are counted apart, "paused"), bad /
slow / flaky members promoted to full weight per 100, and failed user launches at the member
before its rollback (mean over the bad member's ramps, and over the flaky one's).
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from federation_deploy.config import Federation, load_federation  # noqa: E402
from federation_deploy.errors import VerificationError  # noqa: E402
from federation_deploy.health.probe import CheckResult  # noqa: E402
from federation_deploy.traffic.launch_metrics import FederationLaunches  # noqa: E402
from federation_deploy.traffic.live import judge_error_rate  # noqa: E402
from federation_deploy.traffic.ramp.engine import (  # noqa: E402
    Clock,
    RampEngine,
    RampIO,
    RampSettings,
)
from federation_deploy.traffic.ramp.evidence import (  # noqa: E402
    LAUNCH_TIME_BUCKETS,
    Histogram,
    Launches,
)
from federation_deploy.traffic.ramp.plan import resolve_plan  # noqa: E402
from federation_deploy.traffic.ramp.probes import LaunchResult  # noqa: E402
from federation_deploy.traffic.weights import weights_of  # noqa: E402
from federation_deploy.values.redirector_config import redirector_config  # noqa: E402

MEMBER = "gamma"
KINDS = ("good", "bad", "slow", "flaky")
RATES = (0.2, 2.0)
GATES = ("new", "new_no_probes", "new_no_preflight", "fixed", "argo")
BASE_FAILURE = 0.02


@dataclass
class Model:
    """What --federation-failure and --slow-factor change (one run's model)."""

    base_failure: float = BASE_FAILURE  # the others' (and a good member's) failure rate
    slow_factor: float = 3.0  # the slow member's launch times, times the others'


MODEL = Model()
MEDIAN_SECONDS = 30.0
SPREAD = 0.6
# a probe: a small cached repository (see the docstring)
PROBE_FAILURE = 0.01
PROBE_FAILURE_BAD = 0.06
PROBE_MEDIAN_SECONDS = 10.0
PROBE_SPREAD = 0.4
PROBE_REPO = "gh/binder-examples/requirements/HEAD"
START = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
WARM_UP = 3600.0

FEDERATION_YAML = """\
redirector:
  host: redirector.test
  member: alpha
  release: federation-redirect
  load_balancer: rendezvous
members:
  alpha:
    url: http://127.0.0.1:9/alpha
    cloud: kubeconfig
    prime: true
    weight: 60
    cluster:
      kubeconfig: alpha-kubeconfig.yml
    releases:
      - name: federation-redirect
        chart: package:federation-redirect
        version: "0.1.0"
        namespace: federation-redirect
  beta:
    url: http://127.0.0.1:9/beta
    cloud: external
    weight: 40
  gamma:
    url: http://127.0.0.1:9/gamma
    cloud: kubeconfig
    weight: 0
    target_weight: 400
    cluster:
      kubeconfig: gamma-kubeconfig.yml
"""


def bucket_index(seconds: float) -> int:
    return bisect.bisect_left(LAUNCH_TIME_BUCKETS, seconds)


@dataclass
class Counts:
    """Cumulative launches, failures and successful launches per time bucket."""

    launches: int = 0
    failures: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * len(LAUNCH_TIME_BUCKETS))

    def add(self, ok: bool, seconds: float) -> None:
        self.launches += 1
        if ok:
            self.buckets[bucket_index(seconds)] += 1
        else:
            self.failures += 1

    def copy(self) -> Counts:
        return Counts(self.launches, self.failures, list(self.buckets))

    def minus(self, other: Counts) -> Launches:
        cumulative: list[tuple[float, float]] = []
        total = 0
        for bound, mine, theirs in zip(LAUNCH_TIME_BUCKETS, self.buckets, other.buckets,
                                       strict=True):
            total += mine - theirs
            cumulative.append((bound, float(total)))
        return Launches(float(self.launches - other.launches),
                        float(self.failures - other.failures), Histogram(tuple(cumulative)))


class SimFederation:
    """Launches over time; the ramping member's share is what was last published."""

    def __init__(self, rate: float, kind: str, rng: random.Random) -> None:
        self.rate = rate
        self.kind = kind
        self.rng = rng
        self.t = 0.0
        self.share = 0.0
        self.next_arrival = rng.expovariate(rate)
        self.member = Counts()
        self.rest = Counts()
        self.user_failures = 0
        self.times: list[float] = [0.0]
        self.snapshots: list[tuple[Counts, Counts]] = [(Counts(), Counts())]
        self.published: Federation | None = None
        self.ending: list[tuple[float, bool, float]] = []  # probes in flight: (end, ok, s)

    # the member's behaviour -------------------------------------------------------------------

    def member_launch(self) -> tuple[bool, float]:
        failure = 0.20 if self.faulty() else MODEL.base_failure
        ok = self.rng.random() >= failure
        seconds = MEDIAN_SECONDS * math.exp(self.rng.gauss(0, SPREAD))
        return ok, seconds * (MODEL.slow_factor if self.kind == "slow" else 1.0)

    def faulty(self) -> bool:
        return self.kind == "bad" or self.kind == "flaky" and self.share > 0.10 + 1e-9

    def probe_launch(self) -> tuple[bool, float]:
        failure = PROBE_FAILURE_BAD if self.faulty() else PROBE_FAILURE
        ok = self.rng.random() >= failure
        seconds = PROBE_MEDIAN_SECONDS * math.exp(self.rng.gauss(0, PROBE_SPREAD))
        return ok, seconds * (MODEL.slow_factor if self.kind == "slow" else 1.0)

    def pool_launch(self) -> tuple[bool, float]:
        """A launch of a repository users launch (the pre-flight's): as a user's."""
        return self.member_launch()

    def rest_launch(self) -> tuple[bool, float]:
        return (self.rng.random() >= MODEL.base_failure,
                MEDIAN_SECONDS * math.exp(self.rng.gauss(0, SPREAD)))

    # time -----------------------------------------------------------------------------------

    def advance_to(self, t: float) -> None:
        for end, ok, seconds in [e for e in self.ending if e[0] <= t]:
            self.member.add(ok, seconds)  # BinderHub counts a probe when it ends
            self.ending.remove((end, ok, seconds))
        while self.next_arrival <= t:
            if self.rng.random() < self.share:
                ok, seconds = self.member_launch()
                self.member.add(ok, seconds)
                self.user_failures += not ok
            else:
                self.rest.add(*self.rest_launch())
            self.next_arrival += self.rng.expovariate(self.rate)
        self.t = t
        self._snapshot()

    def _snapshot(self) -> None:
        if self.times[-1] == self.t:
            self.snapshots[-1] = (self.member.copy(), self.rest.copy())
        else:
            self.times.append(self.t)
            self.snapshots.append((self.member.copy(), self.rest.copy()))

    def at(self, t: float) -> tuple[Counts, Counts]:
        return self.snapshots[max(0, bisect.bisect_right(self.times, t) - 1)]

    # the seams --------------------------------------------------------------------------------

    def seconds(self, moment: datetime) -> float:
        return (moment - START).total_seconds()

    def publish(self, fed: Federation) -> None:
        self.published = fed
        weights = {m.name: m.weight for m in fed.members.values() if m.routed and m.weight > 0}
        total = sum(weights.values())
        self.share = weights.get(MEMBER, 0.0) / total if total else 0.0

    def active_hosts(self, _url: str, _timeout: float) -> dict[str, Any]:
        assert self.published is not None
        hosts = redirector_config(self.published)["hosts"]
        return {n: h for n, h in hosts.items() if h["weight"] > 0}

    def generation(self, _url: str, _timeout: float) -> int | None:
        return None if self.published is None else self.published.generation

    def launches(self, _url: str, since: datetime, until: datetime, _label: str,
                 _timeout: float) -> FederationLaunches:
        m1, r1 = self.at(self.seconds(until))
        m0, r0 = self.at(self.seconds(since))
        return FederationLaunches({MEMBER: m1.minus(m0), "rest": r1.minus(r0)},
                                  (until - since).total_seconds())

    def error_rate(self, _url: str, _member: str, max_rate: float, _label: str,
                   _timeout: float) -> CheckResult:
        now = self.t
        m1, _ = self.at(now)
        m0, _ = self.at(now - 300)
        launches = m1.launches - m0.launches
        rate = (m1.failures - m0.failures) / launches if launches else None
        return judge_error_rate(rate, max_rate)

    def pool(self, _url: str, _member: str, _final: float, count: int,
             _timeout: float) -> list[str]:
        """The redirector's /ramp_pool: the member's most launched pool repositories."""
        return [f"gh/pool/repo-{i}/HEAD" for i in range(count)]

    def probe(self, url: str, _timeout: float) -> LaunchResult:
        """A probe (or pre-flight launch) launched now: it ends after its launch time on the
        simulated clock (the engine collects it at the first check after that; the metrics
        count it then)."""
        ok, seconds = (self.probe_launch() if url.endswith(PROBE_REPO)
                       else self.pool_launch())
        self.ending.append((self.t + seconds, ok, seconds))
        return LaunchResult(ok, seconds, "ready" if ok else "failed")


class SimClock:
    def __init__(self, sim: SimFederation) -> None:
        self.sim = sim

    def now(self) -> datetime:
        return START + timedelta(seconds=self.sim.t)

    def sleep(self, seconds: float) -> None:
        self.sim.advance_to(self.sim.t + seconds)


def settings_for(gate: str) -> RampSettings:
    common: dict[str, Any] = dict(
        redirector_url="http://redirector.sim", prometheus_url="http://prometheus.sim",
        check_interval=30.0, poll_interval=1.0, agreeing_answers=1, settle_timeout=60.0,
        record_interval=3600.0, heartbeat_interval=1e9, max_error_rate=0.05,
    )
    if gate in ("new", "new_no_preflight"):
        # the simulated redirector names the pool: the pre-flight is on unless turned off
        return RampSettings(gate="evidence", probe_repo=PROBE_REPO, probe_interval=30.0,
                            min_hold=600.0, max_hold=7200.0,
                            preflight=0 if gate == "new_no_preflight" else None, **common)
    if gate == "new_no_probes":
        return RampSettings(gate="evidence", min_hold=600.0, max_hold=7200.0, **common)
    if gate == "fixed":
        return RampSettings(gate="fixed", **common)
    return RampSettings(gate="argo", argo_interval=300.0, argo_count=6, argo_failure_limit=1,
                        **common)


@dataclass(frozen=True)
class RampResult:
    outcome: str  # complete | rolled_back | paused
    hours: float
    failed_user_launches: int
    minutes_before_step_1: float  # the pre-flight (or qualifying hold), or the whole ramp
    stopped_at_zero: bool  # never reached step 1: nobody routed to it


def one_ramp(gate: str, rate: float, kind: str, seed: int, workdir: Path) -> RampResult:
    config_dir = workdir / f"{gate}-{rate}-{kind}-{seed}"
    config_dir.mkdir()
    (config_dir / "federation.yaml").write_text(FEDERATION_YAML)
    sim = SimFederation(rate, kind, random.Random(f"{gate}/{rate}/{kind}/{seed}"))
    fed = load_federation(config_dir)
    sim.publish(fed)
    sim.advance_to(WARM_UP)  # an hour of the federation's launches before the ramp
    clock = SimClock(sim)
    steps_at: list[float] = []  # when each step was served (the first: after the pre-flight)
    io = RampIO(on_step=lambda _step: steps_at.append(sim.t), publish=sim.publish,
                clock=Clock(now=clock.now, sleep=clock.sleep),
                active_hosts=sim.active_hosts,
                member_health=lambda _url, _timeout: CheckResult(True, "ok"),
                error_rate=sim.error_rate, launches=sim.launches, launcher=sim.probe,
                spawn_probe=lambda work: work(),  # inline: the launch time is simulated
                pool=sim.pool,
                live_generation=sim.generation, published=weights_of_published(sim))
    plan = resolve_plan(fed, MEMBER, None, None, "30m")
    try:
        RampEngine(fed, plan, settings_for(gate), io).run()
        outcome = "complete"
    except VerificationError as exc:
        outcome = "paused" if "inconclusive" in str(exc) else "rolled_back"
    before_step_1 = ((steps_at[0] if steps_at else sim.t) - WARM_UP) / 60.0
    return RampResult(outcome, (sim.t - WARM_UP) / 3600.0, sim.user_failures,
                      before_step_1, not steps_at)


def weights_of_published(sim: SimFederation) -> Any:
    def published(_fed: Federation) -> Any:
        return None if sim.published is None else weights_of(sim.published)
    return published


def summarise(results: dict[str, list[RampResult]]) -> dict[str, Any]:
    good = results["good"]
    full = [r.hours for r in good if r.outcome == "complete"]

    def per_100(items: Sequence[RampResult], outcomes: tuple[str, ...]) -> float | None:
        if not items:
            return None
        return round(100.0 * sum(r.outcome in outcomes for r in items) / len(items), 1)

    caught = [r.failed_user_launches for r in results["bad"] if r.outcome != "complete"]
    flaky = [r.failed_user_launches for r in results["flaky"] if r.outcome != "complete"]
    return {
        "ramps": sum(len(v) for v in results.values()),
        "hours_to_full": round(statistics.median(full), 2) if full else None,
        "hours_to_full_slowest": round(max(full), 2) if full else None,
        "false_rollbacks_per_100": per_100(good, ("rolled_back",)),
        "good_paused_inconclusive_per_100": per_100(good, ("paused",)),
        "promoted_bad_per_100": per_100(results["bad"], ("complete",)),
        "promoted_slow_per_100": per_100(results["slow"], ("complete",)),
        "promoted_flaky_per_100": per_100(results["flaky"], ("complete",)),
        "failed_user_launches_before_rollback": (round(statistics.mean(caught), 2)
                                                 if caught else None),
        "failed_user_launches_before_rollback_flaky": (round(statistics.mean(flaky), 2)
                                                       if flaky else None),
        # the good member's wait at 0% (pre-flight or qualifying hold), median minutes
        "minutes_before_step_1_good": round(statistics.median(
            r.minutes_before_step_1 for r in good), 1) if good else None,
        "bad_stopped_at_zero_per_100": per_100_if(results["bad"]),
        "slow_stopped_at_zero_per_100": per_100_if(results["slow"]),
    }


def per_100_if(items: Sequence[RampResult]) -> float | None:
    """Ramps stopped before step 1 (nobody routed to the member), per 100."""
    if not items:
        return None
    return round(100.0 * sum(r.stopped_at_zero for r in items) / len(items), 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ramps", type=int, default=100, help="ramps per gate, rate, member")
    parser.add_argument("--quick", action="store_true", help="25 ramps per cell")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--gates", default=",".join(GATES),
                        help=f"comma-separated gates, of: {', '.join(GATES)} (default: all)")
    parser.add_argument("--rates", default=",".join(f"{r:g}" for r in RATES),
                        help="comma-separated federation launch rates, launches per second "
                             f"(default: {','.join(f'{r:g}' for r in RATES)})")
    parser.add_argument("--kinds", default=",".join(KINDS),
                        help=f"comma-separated members, of: {', '.join(KINDS)} (default: all; "
                             "the figures of a missing one: None)")
    parser.add_argument("--federation-failure", type=float, default=BASE_FAILURE,
                        help="the others' (and a good member's) launch failure rate "
                             f"(default: {BASE_FAILURE:g}, the gate's prior)")
    parser.add_argument("--slow-factor", type=float, default=3.0,
                        help="the slow member's launch times, times the others' (default: 3)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + ramps - 1 (more ramps of a cell "
                             "in another run, without repeating the first ones)")
    args = parser.parse_args(argv)
    ramps = 25 if args.quick else args.ramps
    gates = _names(parser, "--gates", args.gates, GATES)
    kinds = _names(parser, "--kinds", args.kinds, KINDS)
    try:
        rates = [float(r) for r in args.rates.split(",") if r]
    except ValueError:
        parser.error(f"--rates {args.rates!r}: comma-separated numbers (launches per second)")
    if not 0 <= args.federation_failure < 0.2 or args.slow_factor <= 0:
        parser.error("--federation-failure must be in [0, 0.2) (the bad member fails 20%) and "
                     "--slow-factor above 0")
    MODEL.base_failure, MODEL.slow_factor = args.federation_failure, args.slow_factor
    figures: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ramp-gates-") as tmp:
        for gate in gates:
            figures[gate] = {}
            for rate in rates:
                seeds = range(args.first_seed, args.first_seed + ramps)
                results = {kind: [one_ramp(gate, rate, kind, seed, Path(tmp))
                                  for seed in seeds] if kind in kinds else []
                           for kind in KINDS}
                figures[gate][f"{rate:g}/s"] = summarise(results)
                # each cell's figures as it ends: a long run interrupted keeps what it measured
                print(f"{gate} at {rate:g}/s done ({time.monotonic() - started:.0f}s): "
                      f"{json.dumps(figures[gate][f'{rate:g}/s'])}", file=sys.stderr)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    columns = ["hours_to_full", "false_rollbacks_per_100", "good_paused_inconclusive_per_100",
               "promoted_bad_per_100", "promoted_slow_per_100", "promoted_flaky_per_100",
               "failed_user_launches_before_rollback",
               "failed_user_launches_before_rollback_flaky", "minutes_before_step_1_good",
               "bad_stopped_at_zero_per_100", "slow_stopped_at_zero_per_100"]
    short = ["h to full", "false rb", "paused", "bad prom", "slow prom", "flaky prom",
             "failed (bad)", "failed (flaky)", "min at 0%", "bad at 0%", "slow at 0%"]
    print(f"{ramps} ramps per gate, rate and member ({time.monotonic() - started:.0f}s)")
    print(f"{'gate':<18}{'rate':>6}" + "".join(f"{s:>15}" for s in short))
    for gate, by_rate in figures.items():
        for rate_name, row in by_rate.items():
            print(f"{gate:<18}{rate_name:>6}"
                  + "".join(f"{'-' if row[c] is None else row[c]!s:>15}" for c in columns))
    return 0


def _names(parser: argparse.ArgumentParser, option: str, given: str,
           valid: Sequence[str]) -> list[str]:
    """The comma-separated names of option; an unknown one is an error listing the valid."""
    names = [n.strip() for n in given.split(",") if n.strip()]
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        parser.error(f"{option}: unknown {', '.join(unknown) or '(none given)'}; valid: "
                     f"{', '.join(valid)}")
    return names


if __name__ == "__main__":
    sys.exit(main())
