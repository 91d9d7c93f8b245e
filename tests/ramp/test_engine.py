"""The ramp loop with a fake clock (holds of 30 minutes take no time) and no redirector."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from federation_deploy.actions.publish import PublishTarget, make_publisher
from federation_deploy.commands.ramp import advance_ramp, plan_table, run_ramp
from federation_deploy.errors import VerificationError
from federation_deploy.ramp.engine import Clock, RampSettings, weights_disagreement
from federation_deploy.ramp.plan import resolve_plan

from .conftest import StandinFederation


class FakeClock:
    def __init__(self) -> None:
        self.t = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += timedelta(seconds=seconds)

    def clock(self) -> Clock:
        return Clock(now=self.now, sleep=self.sleep)


def test_weights_disagreement() -> None:
    expected = {"alpha": 60.0, "beta": 40.0, "gamma": 1.0101}
    hosts = {"alpha": {"weight": 60}, "beta": {"weight": 40},
             "gamma": {"weight": 1.0101, "ramp": True}}
    assert weights_disagreement(hosts, expected, "gamma", True) is None
    flag = weights_disagreement(hosts, expected, "gamma", False)
    assert flag == "gamma has ramp True there (expected False)"
    assert "not in /active_hosts" in str(
        weights_disagreement({"alpha": {"weight": 60}}, expected, "gamma", True))
    assert weights_disagreement({"alpha": {"weight": 60}}, expected, "gamma", True,
                                may_be_absent=True) is None
    stale = {**hosts, "gamma": {"weight": 0.5, "ramp": True}}
    assert "gamma has weight 0.5 there" in str(weights_disagreement(stale, expected, "gamma", True))
    other = {**hosts, "alpha": {"weight": 61}}
    assert "alpha has weight 61" in str(weights_disagreement(other, expected, "gamma", True))
    # at weight 0 the member must be gone; others may be out of rotation
    assert weights_disagreement({"beta": {"weight": 40}}, {**expected, "gamma": 0.0}, "gamma",
                                False) is None
    assert "still in /active_hosts" in str(
        weights_disagreement(hosts, {**expected, "gamma": 0.0}, "gamma", False))


def test_whole_ramp_with_30_minute_holds_takes_no_time(
    federation: StandinFederation, tmp_path: Path
) -> None:
    fake = FakeClock()
    target = tmp_path / "config.json"
    gamma = federation.standins["gamma"]
    gamma.reset_counts()
    progress: list[str] = []
    settings = RampSettings(check_interval=300, record_interval=600)
    outcome = run_ramp(federation.load(), "gamma", make_publisher(PublishTarget("file", target)),
                       steps=(1, 5), hold="30m", settings=settings, clock=fake.clock(),
                       progress=progress.append)
    assert outcome.status == "complete" and outcome.weight == 100
    # three steps (1%, 5%, 100%), each held 30 minutes, checked every 5 minutes
    assert fake.t - datetime(2025, 3, 1, 10, tzinfo=UTC) == timedelta(minutes=90)
    assert fake.slept == [300.0] * 18
    assert gamma.count("health") == 3 * 7
    assert json.loads(target.read_text())["hosts"]["gamma"]["weight"] == 100
    assert sum("no --redirector-url" in p for p in progress) == 1


def test_hold_records_last_healthy_in_config(
    federation: StandinFederation, tmp_path: Path
) -> None:
    fake = FakeClock()
    seen: list[str | None] = []

    def publisher(fed: object) -> None:
        pass

    def sleep(seconds: float) -> None:
        fake.sleep(seconds)
        ramp = federation.load().members["gamma"].ramp
        seen.append(ramp.last_healthy if ramp else None)

    run_ramp(federation.load(), "gamma", publisher, steps=(1,), hold="30m",
             settings=RampSettings(check_interval=600, record_interval=1200),
             clock=Clock(now=fake.now, sleep=sleep))
    # written every 20 minutes of a hold (and carried into the next step's block)
    assert seen[:3] == [None, None, "2025-03-01T10:20:00Z"]


def test_advance_respects_the_hold(federation: StandinFederation, tmp_path: Path) -> None:
    fake = FakeClock()
    publish = make_publisher(PublishTarget("file", tmp_path / "config.json"))
    kw = {"settings": RampSettings(), "clock": fake.clock()}

    first = advance_ramp(federation.load(), "gamma", publish, steps=(1, 5), hold="30m",
                         **kw)  # type: ignore[arg-type]
    assert (first.status, first.step) == ("started", 0)
    ramp = federation.load().members["gamma"].ramp
    assert ramp is not None and ramp.started == "2025-03-01T10:00:00Z"
    assert ramp.last_healthy == "2025-03-01T10:00:00Z"

    fake.t += timedelta(minutes=29)
    second = advance_ramp(federation.load(), "gamma", publish, **kw)  # type: ignore[arg-type]
    assert second.status == "holding"
    assert second.message.endswith("holding until 2025-03-01T10:30:00Z")
    ramp = federation.load().members["gamma"].ramp
    assert ramp is not None and ramp.step == 0 and ramp.last_healthy == "2025-03-01T10:29:00Z"

    fake.t += timedelta(minutes=1)
    third = advance_ramp(federation.load(), "gamma", publish, **kw)  # type: ignore[arg-type]
    assert (third.status, third.step) == ("advanced", 1)

    fake.t += timedelta(minutes=31)
    last = advance_ramp(federation.load(), "gamma", publish, **kw)  # type: ignore[arg-type]
    assert (last.status, last.weight) == ("complete", 100)
    assert federation.load().members["gamma"].ramp is None


def test_advance_rolls_back_when_unhealthy_even_while_holding(
    federation: StandinFederation, tmp_path: Path
) -> None:
    fake = FakeClock()
    target = tmp_path / "config.json"
    publish = make_publisher(PublishTarget("file", target))
    kw = {"settings": RampSettings(), "clock": fake.clock()}
    advance_ramp(federation.load(), "gamma", publish, steps=(1, 5), hold="30m",
                 **kw)  # type: ignore[arg-type]
    federation.standins["gamma"].set_healthy(False)
    fake.t += timedelta(minutes=10)
    with pytest.raises(VerificationError, match="rolled back to 0") as failure:
        advance_ramp(federation.load(), "gamma", publish, **kw)  # type: ignore[arg-type]
    assert "gamma is unhealthy" in str(failure.value)
    ramp = federation.load().members["gamma"].ramp
    # the ramp stays, at 0, and waits a full hold before it tries the first step again
    assert ramp is not None and ramp.step == -1 and ramp.started == "2025-03-01T10:10:00Z"
    assert json.loads(target.read_text())["hosts"]["gamma"]["weight"] == 0

    federation.standins["gamma"].set_healthy(True)
    fake.t += timedelta(minutes=5)
    assert advance_ramp(federation.load(), "gamma", publish,
                        **kw).status == "holding"  # type: ignore[arg-type]
    fake.t += timedelta(minutes=26)
    again = advance_ramp(federation.load(), "gamma", publish, **kw)  # type: ignore[arg-type]
    assert (again.status, again.step) == ("advanced", 0)


def test_dry_run_table_marks_the_current_step(federation: StandinFederation) -> None:
    plan = resolve_plan(federation.load(), "gamma", (1, 5, 25))
    table = plan_table(plan, current_step=1)
    assert table.splitlines()[2].startswith("2/4 (now)")
