"""The ramp's verdict on evidence (pure): is the new member as good as the rest of the federation?

A step is judged from what happened in its window (since the step was served): the new
member's launches and failed launches, users' and probes' apart, and the launch times of its
successful launches (BinderHub's `binderhub_launch_time_seconds` histogram), against the other
members' over the same window. The verdict is one of

- healthy: enough evidence that the member fails no more and is no slower than the rest;
- inconclusive: not enough launches to tell either way (never healthy on no data);
- failing: its launches fail more than the rest's (by at least the stated margin);
- slow: its launches take clearly longer than the rest's.

The statistics: two sequential probability ratio tests (Wald's SPRT), run on the counts so far
each time the ramp checks, until they decide (an SPRT may be looked at as often as one
likes, its error bounds hold for any stopping time; once a step's tests say healthy the gate
stops testing that step, as Wald's test stops, and the step waits out its minimum hold):

1. Failures. H0: the member's failure rate p is the federation's p0 (estimated from the other
   members' launches over the last hour, or the step's window when longer: a short window at
   a low launch rate would make p0 noisy, and every false low p0 a false rollback; shrunk
   towards 2% over 50 launches so that a quiet federation does not give 0; plus one standard
   deviation of that estimate, so that an estimate on the low side does not make a member
   as good as the rest look worse: the test is conservative towards the member); H1: p = p1 =
   max(p0 + margin, ratio * p0) (default: 10 points more, or 3 times). The log-likelihood
   ratio of x failures in n launches (users and probes) is
   x ln(p1/p0) + (n - x) ln((1 - p1)/(1 - p0)).
2. Launch time. Each successful launch at the member is compared with the other members'
   p90 in the window (read from the histograms, interpolated within a bucket the same way for
   both sides). That p90 is an estimate from the others' m launches (at least 30, else the
   test is not run): the share of a member as good as the rest above it is 0.1 only on
   average, and with m = 30 it is above 0.2 one time in ten. So H0 is q = q0 = 0.1 + z *
   sqrt(0.1 * 0.9 / m), the share above an estimated p90 at the upper end of its uncertainty
   (z: the standard normal quantile that the true share exceeds with probability alpha_t / 2,
   3.0 at the default risks; q0 = 0.27 at m = 30, 0.14 at m = 500), and the SPRT itself runs
   at alpha_t / 2: the false-rollback risk of the time test, alpha_t = alpha, is then at most
   alpha_t / 2 (the reference's uncertainty) + alpha_t / 2 (the SPRT). H1: q = 0.5 (its p50
   near the others' p90: with log-normal launch times of spread 0.5, 1.9 times slower). The
   histogram gives fractional counts; the likelihood ratio takes them as they come. Launch
   times are the member's histogram, users' and probes' together (BinderHub counts both):
   probes of a small cached repository are quick, and many of them make a slow member look
   faster (they dilute the time test, never make a good member look slow).

Each test says "reject H0" (failing / slow) when its ratio reaches ln((1 - beta)/alpha) and
"accept H0" when it falls to ln(beta/(1 - alpha)). The stated risks, per test and step:
alpha = false_rollback / 2 (a member as good as the rest rolled back; two tests share the
step's budget), beta = false_promotion (a member at H1 or worse passes the step). Wald's
bounds are conservative: the measured rates (benchmarks/ramp_gates.py, README) are lower.
A step passes only when BOTH tests accept H0 and it saw at least min_launches launches; it
rolls back as soon as either rejects, at any step. Everything between is inconclusive, with
the launches still needed (from where the ratio stands, at its expected drift per launch to the
nearer bound: launches_to_bound).

Known limits, also in the README: p0 is an estimate (a federation whose failure rate moves a
lot within a window moves the test with it); failures are taken as independent launches (a
repository that fails everywhere counts against whoever launched it); a member between H0 and
H1 (e.g. 2% -> 6%) may pass, which is the price of deciding in tens of launches instead of
thousands; probes are a small known repository, so their launch times are usually shorter
than users' and dilute the slow test (users' launches catch it as the share grows); the
pre-flight's launches (probes.PreflightLaunches: the member's most launched pool repositories,
at 0%) are users' repositories, and judge the member as its users would find it.
Launches needed per step at a given share and federation launch rate: launches_needed (the
plan's figure, from the same p0 and q0 as the gate's) and hold_needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from statistics import NormalDist

HEALTHY = "healthy"
INCONCLUSIVE = "inconclusive"
FAILING = "failing"
SLOW = "slow"
VERDICTS = (HEALTHY, INCONCLUSIVE, FAILING, SLOW)

# BinderHub's launch-time buckets (binderhub/builder.py LAUNCH_TIME), seconds
LAUNCH_TIME_BUCKETS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200, math.inf)

# the federation's failure rate assumed before the window shows it: 2% over 50 launches
PRIOR_FAILURE_RATE = 0.02
PRIOR_LAUNCHES = 50.0
# the other members need this many successful launches in the window before their p90 is a
# yardstick (fewer, as in an idle federation: launch time is not compared, and says so)
MIN_REFERENCE_LAUNCHES = 30.0


@dataclass(frozen=True)
class Histogram:
    """A cumulative histogram: (upper bound, launches at or below it), bounds increasing, the
    last one +Inf (so its count is every launch). Counts may be fractional (increase() of
    counters over a window, interpolated by Prometheus)."""

    buckets: tuple[tuple[float, float], ...] = ()

    @classmethod
    def of(cls, seconds: Iterable[float],
           bounds: tuple[float, ...] = LAUNCH_TIME_BUCKETS) -> Histogram:
        """The histogram of these launch times (tests, benchmarks, probes)."""
        values = sorted(seconds)
        counts: list[tuple[float, float]] = []
        index = 0
        for bound in bounds:
            while index < len(values) and values[index] <= bound:
                index += 1
            counts.append((bound, float(index)))
        return cls(tuple(counts))

    @classmethod
    def from_mapping(cls, counts: Mapping[float, float]) -> Histogram:
        return cls(tuple(sorted((float(k), float(v)) for k, v in counts.items())))

    @property
    def total(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def __add__(self, other: Histogram) -> Histogram:
        return self._combine(other, 1.0)

    def __sub__(self, other: Histogram) -> Histogram:
        return self._combine(other, -1.0)

    def _combine(self, other: Histogram, sign: float) -> Histogram:
        if not other.buckets:
            return self
        if not self.buckets:
            return Histogram(tuple((b, max(0.0, sign * c)) for b, c in other.buckets))
        mine, theirs = dict(self.buckets), dict(other.buckets)
        bounds = sorted(set(mine) | set(theirs))
        out: list[tuple[float, float]] = []
        for bound in bounds:
            value = _cumulative_at(self.buckets, bound) + sign * _cumulative_at(
                other.buckets, bound)
            out.append((bound, max(0.0, value)))
        # cumulative counts never decrease (a subtraction of rounded counts might)
        fixed: list[tuple[float, float]] = []
        top = 0.0
        for bound, value in out:
            top = max(top, value)
            fixed.append((bound, top))
        return Histogram(tuple(fixed))

    def quantile(self, q: float) -> float | None:
        """The q-quantile, interpolated linearly within its bucket (as histogram_quantile
        does); None without launches. In the +Inf bucket: the last finite bound."""
        total = self.total
        if total <= 0:
            return None
        rank = q * total
        lower_bound, lower_count = 0.0, 0.0
        for bound, count in self.buckets:
            if count >= rank:
                if math.isinf(bound):
                    return lower_bound
                if count == lower_count:
                    return bound
                return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                    count - lower_count)
            lower_bound, lower_count = bound, count
        return lower_bound

    def above(self, threshold: float) -> float:
        """Launches slower than threshold, interpolated within its bucket like quantile."""
        return self.total - _cumulative_at(self.buckets, threshold)


def _cumulative_at(buckets: tuple[tuple[float, float], ...], value: float) -> float:
    """Launches at or below value, linear within a bucket (0 below the first lower bound 0)."""
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if value <= bound:
            if math.isinf(bound):
                return lower_count if value < bound else count
            width = bound - lower_bound
            share = 1.0 if width <= 0 else (value - lower_bound) / width
            return lower_count + (count - lower_count) * share
        lower_bound, lower_count = bound, count
    return lower_count


@dataclass(frozen=True)
class Launches:
    """Launches in a window: how many ended, how many failed, the successful ones' times."""

    launches: float = 0.0
    failures: float = 0.0
    times: Histogram = field(default_factory=Histogram)

    @property
    def failure_rate(self) -> float | None:
        return self.failures / self.launches if self.launches > 0 else None

    def __add__(self, other: Launches) -> Launches:
        return Launches(self.launches + other.launches, self.failures + other.failures,
                        self.times + other.times)

    def __sub__(self, other: Launches) -> Launches:
        return Launches(max(0.0, self.launches - other.launches),
                        max(0.0, self.failures - other.failures), self.times - other.times)


@dataclass(frozen=True)
class Window:
    """What one step saw: the new member's users' and probes' launches, and the others';
    baseline: the others' launches over a longer window (an hour), for their failure rate."""

    users: Launches
    probes: Launches
    rest: Launches
    seconds: float = 0.0
    baseline: Launches | None = None
    probe_kind: str = "probe"  # or "pre-flight": the pool's repositories launched at 0%

    @property
    def member(self) -> Launches:
        return self.users + self.probes


@dataclass(frozen=True)
class Risks:
    """What the gate promises, per step (see the module docstring)."""

    false_rollback: float = 0.005  # a member as good as the rest rolled back (both tests)
    false_promotion: float = 0.01  # a member at H1 or worse passes the step (each test)
    failure_margin: float = 0.10  # H1: p0 + this many points of failed launches ...
    failure_ratio: float = 3.0  # ... or this many times p0, whichever is more
    slow_quantile: float = 0.9  # the others' quantile a launch is compared with
    slow_share: float = 0.5  # H1: this share of the member's launches above it
    min_launches: int = 10  # a step never passes on fewer launches (users and probes)

    def __post_init__(self) -> None:
        for name in ("false_rollback", "false_promotion"):
            value = getattr(self, name)
            if not 0 < value < 0.5:
                raise ValueError(f"{name} must be in (0, 0.5), got {value!r}")
        if not 0 < 1 - self.slow_quantile < self.slow_share < 1:
            raise ValueError("slow_share must be above 1 - slow_quantile and below 1")

    @property
    def alpha(self) -> float:
        return self.false_rollback / 2

    @property
    def upper(self) -> float:
        """The log-likelihood ratio that rejects H0 (rolls back)."""
        return math.log((1 - self.false_promotion) / self.alpha)

    @property
    def lower(self) -> float:
        """The log-likelihood ratio that accepts H0 (passes)."""
        return math.log(self.false_promotion / (1 - self.alpha))


@dataclass(frozen=True)
class TestResult:
    """One SPRT: its log-likelihood ratio, where it stands, the launches it still needs."""

    decision: str  # "accept" (as good), "reject" (worse), "continue", "unavailable"
    llr: float
    needed: int  # more launches expected before it accepts, when the member is as good
    h0: float
    h1: float


@dataclass(frozen=True)
class Verdict:
    """The evidence of one step and what it says, with the numbers that explain it."""

    verdict: str  # HEALTHY | INCONCLUSIVE | FAILING | SLOW
    failures: TestResult
    times: TestResult
    window: Window
    risks: Risks
    baseline_failure_rate: float
    member_p50: float | None
    member_p90: float | None
    rest_p50: float | None
    rest_p90: float | None
    needed: int  # launches still needed (0 once decided)

    @property
    def decided(self) -> bool:
        return self.verdict != INCONCLUSIVE

    def confidence(self) -> str:
        """The risk that goes with the verdict."""
        if self.verdict == HEALTHY:
            return (f"false-promotion risk <= {self.risks.false_promotion:.0%} per test "
                    "(a member failing or slow by the margins passing this step)")
        if self.verdict in (FAILING, SLOW):
            return (f"false-rollback risk <= {percent(self.risks.alpha)} "
                    "(a member as good as the rest rolled back by this test)")
        tests = (("failure", self.failures), ("time", self.times))
        passed = [name for name, test in tests if test.decision == "accept"]
        if not passed:
            return "undecided: both risks above their bounds"
        going = [name for name, test in tests if test.decision == "continue"]
        rest = (f"the {going[0]} test has not decided yet" if going
                else f"a step needs at least {self.risks.min_launches} launches")
        return (f"undecided: the {' and '.join(passed)} test passed (false-promotion risk <= "
                f"{self.risks.false_promotion:.0%}); {rest}")

    def explain(self) -> str:
        """One line: launches seen, failure rate and launch time vs the federation, verdict."""
        w = self.window
        member_rate = w.member.failure_rate
        rest_rate = w.rest.failure_rate
        parts = [
            f"{_n(w.users.launches)} user + {_n(w.probes.launches)} {w.probe_kind} launches "
            f"({_n(w.member.failures)} failed: {_pct(member_rate)} vs {_pct(rest_rate)} at the "
            f"others, {_n(w.rest.launches)} launches)",
            f"launch time p50/p90 {_secs(self.member_p50)}/{_secs(self.member_p90)} vs "
            f"{_secs(self.rest_p50)}/{_secs(self.rest_p90)}"
            + (" (not compared: the others had too few launches)"
               if self.times.decision == "unavailable" else ""),
        ]
        head = self.verdict
        if self.verdict == INCONCLUSIVE:
            head += f" (needs about {self.needed} more launches)"
        return (f"{head}: " + "; ".join(parts)
                + f"; failure test {self.failures.llr:+.2f} (pass at {self.risks.lower:.2f}, roll "
                f"back at {self.risks.upper:+.2f}), time test {self.times.llr:+.2f} (pass at "
                f"{time_risks(self.risks).lower:.2f}, roll back at "
                f"{time_risks(self.risks).upper:+.2f}); " + self.confidence())

    def as_record(self) -> dict[str, object]:
        """The verdict for federation.yaml's `ramp:` block and the step summary (plain data)."""
        w = self.window
        stage = {"stage": "pre-flight"} if w.probe_kind == "pre-flight" else {}
        return {
            **stage,
            "verdict": self.verdict,
            "user_launches": round(w.users.launches, 1),
            "probe_launches": round(w.probes.launches, 1),
            "probe_failures": round(w.probes.failures, 1),
            "failed": round(w.member.failures, 1),
            "failure_rate": _round(w.member.failure_rate),
            "others_failure_rate": _round(w.rest.failure_rate),
            "p50_seconds": _round(self.member_p50),
            "p90_seconds": _round(self.member_p90),
            "others_p50_seconds": _round(self.rest_p50),
            "others_p90_seconds": _round(self.rest_p90),
            "needed": self.needed,
        }


def baseline_failure_rate(rest: Launches) -> float:
    """The federation's failure rate p0 from the others' launches: shrunk towards the prior,
    plus one standard deviation of the estimate (see the module docstring)."""
    launches = rest.launches + PRIOR_LAUNCHES
    rate = (rest.failures + PRIOR_FAILURE_RATE * PRIOR_LAUNCHES) / launches
    return rate + math.sqrt(rate * (1 - rate) / launches)


def failure_hypotheses(p0: float, risks: Risks) -> tuple[float, float]:
    p0 = min(max(p0, 1e-4), 0.5)
    p1 = min(max(p0 + risks.failure_margin, p0 * risks.failure_ratio), 0.99)
    return p0, p1


def sprt(successes_h1: float, trials: float, h0: float, h1: float, risks: Risks) -> TestResult:
    """Wald's SPRT of a Bernoulli rate h0 vs h1 (> h0) after successes_h1 events (failures,
    slow launches) in trials."""
    others = max(0.0, trials - successes_h1)
    up, down = math.log(h1 / h0), math.log((1 - h1) / (1 - h0))
    llr = successes_h1 * up + others * down
    if llr >= risks.upper:
        return TestResult("reject", llr, 0, h0, h1)
    if llr <= risks.lower:
        return TestResult("accept", llr, 0, h0, h1)
    return TestResult("continue", llr, launches_to_bound(llr, h0, h1, risks), h0, h1)


def launches_to_bound(llr: float, h0: float, h1: float, risks: Risks) -> int:
    """The launches still needed from where the test's score stands: to the nearer of its
    bounds, at the score's expected drift per launch towards it (under H0 towards the pass
    bound, under H1 towards the rollback bound). Launches already seen count: the score
    carries them."""
    up, down = math.log(h1 / h0), math.log((1 - h1) / (1 - h0))
    if risks.upper - llr < llr - risks.lower:
        drift = h1 * up + (1 - h1) * down  # per launch, when the member is worse (> 0)
        return max(1, math.ceil((risks.upper - llr) / drift))
    drift = h0 * up + (1 - h0) * down  # per launch, when the member is as good (< 0)
    return max(1, math.ceil((llr - risks.lower) / -drift))


def judge(window: Window, risks: Risks | None = None,
          accepted: frozenset[str] = frozenset()) -> Verdict:
    """The verdict of a step's window (see the module docstring). accepted: the tests
    ("failures", "times") that already accepted H0 at this step: a test that decided stops
    (its later ratio is shown, not acted on), as Wald's test does."""
    risks = risks or Risks()
    reference = window.baseline if window.baseline is not None else window.rest
    p0, p1 = failure_hypotheses(baseline_failure_rate(reference), risks)
    member = window.member
    failures = sprt(member.failures, member.launches, p0, p1, risks)

    reference_count = window.rest.times.total
    q0 = time_null(reference_count, risks)
    threshold = (window.rest.times.quantile(risks.slow_quantile)
                 if reference_count >= MIN_REFERENCE_LAUNCHES else None)
    if threshold is None:
        # no yardstick: the others hardly launched (an idle federation, a sandbox); the
        # member's launch time cannot be compared, and only the failure test decides
        times = TestResult("unavailable", 0.0, 0, q0, risks.slow_share)
    else:
        times = sprt(member.times.above(threshold), member.times.total, q0, risks.slow_share,
                     time_risks(risks))

    if "failures" in accepted:
        failures = TestResult("accept", failures.llr, 0, failures.h0, failures.h1)
    if "times" in accepted and times.decision != "unavailable":
        times = TestResult("accept", times.llr, 0, times.h0, times.h1)
    if failures.decision == "reject":
        verdict = FAILING
    elif times.decision == "reject":
        verdict = SLOW
    elif (failures.decision == "accept" and times.decision in ("accept", "unavailable")
          and member.launches >= risks.min_launches):
        verdict = HEALTHY
    else:
        verdict = INCONCLUSIVE
    needed = 0
    if verdict == INCONCLUSIVE:
        needed = max(failures.needed, times.needed,
                     math.ceil(risks.min_launches - member.launches), 1)
    return Verdict(
        verdict=verdict, failures=failures, times=times, window=window, risks=risks,
        baseline_failure_rate=p0,
        member_p50=member.times.quantile(0.5), member_p90=member.times.quantile(0.9),
        rest_p50=window.rest.times.quantile(0.5), rest_p90=window.rest.times.quantile(0.9),
        needed=needed,
    )


def time_null(reference_count: float, risks: Risks) -> float:
    """The time test's H0: the share of a member as good as the rest above the others' p90
    estimated from reference_count launches, at the upper end of that estimate's
    uncertainty (the module docstring, 2.)."""
    q = 1 - risks.slow_quantile
    z = NormalDist().inv_cdf(1 - risks.alpha / 2)
    spread = math.sqrt(q * (1 - q) / max(reference_count, MIN_REFERENCE_LAUNCHES))
    return min(q + z * spread, (q + risks.slow_share) / 2)


def time_risks(risks: Risks) -> Risks:
    """The time test's SPRT runs at half the test's alpha (the other half: the reference)."""
    return replace(risks, false_rollback=risks.false_rollback / 2)


def launches_needed(reference: Launches | None = None, risks: Risks | None = None,
                    reference_times: float = MIN_REFERENCE_LAUNCHES) -> int:
    """Launches a step of a member as good as the rest needs, on average, to pass, as the
    gate judges it: p0 from the others' launches (reference: their last hour; None: none
    known, the prior alone) the way judge() makes it, and the larger of the two tests'
    expected sample sizes under H0 (from 0 to the accept bound), and min_launches."""
    risks = risks or Risks()
    p0, p1 = failure_hypotheses(baseline_failure_rate(reference or Launches()), risks)
    q0 = time_null(reference_times, risks)
    return max(sprt(0.0, 0.0, p0, p1, risks).needed,
               sprt(0.0, 0.0, q0, risks.slow_share, time_risks(risks)).needed,
               risks.min_launches)


def hold_needed(needed: int, share_percent: float, launch_rate: float,
                probe_interval: float | None = None) -> float | None:
    """Seconds a step at share_percent of a federation launching launch_rate per second
    takes to see `needed` launches (probes every probe_interval seconds add theirs); None
    when nothing launches at all."""
    rate = launch_rate * share_percent / 100.0
    if probe_interval:
        rate += 1.0 / probe_interval
    if rate <= 0:
        return None
    return needed / rate


@dataclass(frozen=True)
class HoldDecision:
    """What the hold of a step does next: "hold" (check again), "pass" (next step),
    "rollback" (failing or slow) or "pause" (inconclusive for too long), and why."""

    action: str
    reason: str


def decide_hold(verdict: Verdict, held: float, min_hold: float, max_hold: float) -> HoldDecision:
    """The hold's decision after `held` seconds at a step: roll back as soon as the evidence
    says failing or slow; pass once healthy and min_hold has passed; pause when still
    inconclusive after max_hold (never pass on no evidence)."""
    if verdict.verdict in (FAILING, SLOW):
        return HoldDecision("rollback", verdict.explain())
    if verdict.verdict == HEALTHY:
        if held >= min_hold:
            return HoldDecision("pass", verdict.explain())
        return HoldDecision("hold", f"{verdict.explain()}; held {held:.0f}s of the minimum "
                                    f"{min_hold:.0f}s")
    if held >= max_hold:
        return HoldDecision("pause", f"still inconclusive after {held:.0f}s (the maximum hold "
                                     f"is {max_hold:.0f}s): {verdict.explain()}")
    return HoldDecision("hold", verdict.explain())


def percent(value: float) -> str:
    """A risk as a percentage, as precise as it is: 0.25%, 0.5%, 1%."""
    return f"{value * 100:.3g}%"


def _n(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}s"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
