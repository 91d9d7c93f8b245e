"""The ramp loop with a fake clock (holds of 30 minutes take no time) and no redirector."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from federation_deploy.commands.ramp import advance_ramp, plan_table, run_ramp
from federation_deploy.config import Federation
from federation_deploy.errors import VerificationError, WeightsConflict
from federation_deploy.traffic import weights as weights_module
from federation_deploy.traffic.live import CheckResult
from federation_deploy.traffic.publish import PublishTarget, make_publisher
from federation_deploy.traffic.ramp import plan as plan_module
from federation_deploy.traffic.ramp.engine import (
    Clock,
    RampEngine,
    RampIO,
    RampSettings,
    weights_disagreement,
)
from federation_deploy.traffic.ramp.plan import RampStep, resolve_plan
from federation_deploy.values.redirector_config import redirector_config
from tests.helpers.standin_federation import StandinFederation


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
    settings = RampSettings(gate="time", check_interval=300, record_interval=600)
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
             settings=RampSettings(gate="time", check_interval=600, record_interval=1200),
             clock=Clock(now=fake.now, sleep=sleep))
    # written every 20 minutes of a hold (and carried into the next step's block)
    assert seen[:3] == [None, None, "2025-03-01T10:20:00Z"]


def test_advance_respects_the_hold(federation: StandinFederation, tmp_path: Path) -> None:
    fake = FakeClock()
    publish = make_publisher(PublishTarget("file", tmp_path / "config.json"))
    kw = {"settings": RampSettings(gate="time"), "clock": fake.clock()}

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
    # checks every 5 minutes: the restart at the end holds two 30-minute steps, and at the
    # default 5 s that is 720 health checks over HTTP that this test does not look at
    kw = {"settings": RampSettings(gate="time", check_interval=300, record_interval=600),
          "clock": fake.clock()}
    advance_ramp(federation.load(), "gamma", publish, steps=(1, 5), hold="30m",
                 **kw)  # type: ignore[arg-type]
    federation.standins["gamma"].set_healthy(False)
    fake.t += timedelta(minutes=10)
    with pytest.raises(VerificationError, match="rolled back to 0") as failure:
        advance_ramp(federation.load(), "gamma", publish, **kw)  # type: ignore[arg-type]
    assert "gamma is unhealthy" in str(failure.value)
    assert "The ramp is paused" in str(failure.value)
    assert "`federation-deploy ramp gamma` restarts it at that step" in str(failure.value)
    ramp = federation.load().members["gamma"].ramp
    # the ramp stays, at 0, PAUSED: the scheduled --advance never restarts it by itself
    assert ramp is not None and ramp.step == -1 and ramp.started == "2025-03-01T10:10:00Z"
    assert ramp.rolled_back is not None and ramp.rolled_back.startswith(
        "2025-03-01T10:10:00Z from step 1/3 (1%): gamma is unhealthy")
    assert json.loads(target.read_text())["hosts"]["gamma"]["weight"] == 0

    federation.standins["gamma"].set_healthy(True)
    before = federation.path.read_text()
    for minutes in (5, 60, 600):
        fake.t += timedelta(minutes=minutes)
        paused = advance_ramp(federation.load(), "gamma", publish, **kw)  # type: ignore[arg-type]
        assert (paused.status, paused.step) == ("paused", -1)
        assert "is not advanced: it is paused since a rollback" in paused.message
    assert federation.path.read_text() == before  # nothing written, nothing published

    # a person runs the ramp again: the marker goes, and it restarts from its step
    said: list[str] = []
    done = run_ramp(federation.load(), "gamma", publish, progress=said.append,
                    **kw)  # type: ignore[arg-type]
    assert done.status == "complete"
    assert any(line.startswith("restarting the ramp of gamma, paused since its rollback")
               for line in said)
    gamma = federation.load().members["gamma"]
    assert gamma.ramp is None and gamma.weight == 100


def test_dry_run_table_marks_the_current_step(federation: StandinFederation) -> None:
    plan = resolve_plan(federation.load(), "gamma", (1, 5, 25))
    table = plan_table(plan, current_step=1)
    assert table.splitlines()[2].startswith("2/4 (now)")


# --------------------------------------------------------------------------------------------
# The engine with every collaborator injected: a redirector that serves what was published,
# a member whose health the test sets, a fake clock. No HTTP, no sleeping.


class FakeRedirector:
    """Serves /active_hosts as the real one would from the last published config: hosts with
    weight > 0, minus the members the test takes out of rotation."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.generations: list[int] = []
        self.out_of_rotation: set[str] = set()

    def publish(self, fed: Federation) -> None:
        config = redirector_config(fed)
        self.published.append(config["hosts"])
        self.generations.append(config["generation"])

    def generation(self, url: str, timeout: float) -> int | None:
        return self.generations[-1] if self.generations else None

    def active_hosts(self, url: str, timeout: float) -> dict[str, Any]:
        hosts = self.published[-1] if self.published else {}
        return {name: host for name, host in hosts.items()
                if host["weight"] > 0 and name not in self.out_of_rotation}

    def weight(self, member: str) -> float:
        return float(self.published[-1][member]["weight"])


class CountingCalls:
    """Wraps a real function and counts its calls."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.function(*args, **kwargs)


def _engine(federation: StandinFederation, fake: FakeClock, redirector: FakeRedirector,
            on_step: Callable[[RampStep], None] | None = None) -> RampEngine:
    fed = federation.load()
    plan = resolve_plan(fed, "gamma", (1, 5), hold="30m")
    io = RampIO(publish=redirector.publish, clock=fake.clock(),
                active_hosts=redirector.active_hosts,
                member_health=lambda url, timeout: CheckResult(True, "stand-in"),
                progress=lambda _: None, on_step=on_step, live_generation=redirector.generation)
    settings = RampSettings(gate="time", redirector_url="http://redirector.test",
                            check_interval=300,
                            poll_interval=1, settle_timeout=60, record_interval=3600)
    return RampEngine(fed, plan, settings, io)


def test_injected_redirector_out_of_rotation_rolls_back_in_fake_time(
    federation: StandinFederation,
) -> None:
    fake = FakeClock()
    redirector = FakeRedirector()
    engine = _engine(federation, fake, redirector)
    original_sleep = fake.sleep

    def sleep(seconds: float) -> None:
        original_sleep(seconds)
        # ten minutes into the 5% step, the redirector's own checks take gamma out
        if redirector.published and redirector.weight("gamma") == 5.26316 \
                and fake.t >= datetime(2025, 3, 1, 10, 40, tzinfo=UTC):
            redirector.out_of_rotation.add("gamma")

    engine.clock.sleep = sleep
    with pytest.raises(VerificationError, match=r"rolled back to step 1/3 \(1%\)") as failure:
        engine.run()
    assert "gamma is out of rotation" in str(failure.value)
    assert redirector.weight("gamma") == 1.0101
    ramp = federation.load().members["gamma"].ramp
    assert ramp is not None and ramp.step == 0
    # the 5% step was served at 10:30:02 (three agreeing answers a second apart) and checked
    # every 5 minutes; the check of 10:40:02 failed, and the rollback was served 2 s later
    assert fake.t == datetime(2025, 3, 1, 10, 40, 4, tzinfo=UTC)


def test_config_loaded_and_planned_once_per_step(
    federation: StandinFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = CountingCalls(weights_module.load_federation)
    plans = CountingCalls(plan_module.plan_ramp)
    monkeypatch.setattr(weights_module, "load_federation", loads)
    monkeypatch.setattr(plan_module, "plan_ramp", plans)
    fake = FakeClock()
    redirector = FakeRedirector()
    outcome = _engine(federation, fake, redirector).run()
    assert outcome.status == "complete"
    # one load to check that the file still says what the command loaded, then three steps
    # (1%, 5%, 100%): each one write, whose validated result the step goes on with; the plan
    # of the command (made in _engine) is never made again
    assert (loads.calls, plans.calls) == (4, 1)
    assert [hosts["gamma"]["weight"] for hosts in redirector.published] == [1.0101, 5.26316, 100]
    assert redirector.generations == [1, 2, 3]


def test_a_hand_edit_during_a_hold_stops_the_ramp(federation: StandinFederation) -> None:
    """Someone gives alpha more weight during the 1% hold: the ramp stops at its next check,
    publishes nothing more, rolls nothing back, and the edit stays."""
    redirector = FakeRedirector()

    def on_step(step: RampStep) -> None:
        if step.index == 0:
            path = federation.path
            path.write_text(path.read_text().replace("    weight: 60 ", "    weight: 80 "))

    with pytest.raises(WeightsConflict,
                       match="federation.yaml changed under the ramp of gamma") as stopped:
        _engine(federation, FakeClock(), redirector, on_step).run()
    assert "alpha weight 60 -> 80" in str(stopped.value)
    assert "without rolling back or publishing" in str(stopped.value)
    assert [hosts["gamma"]["weight"] for hosts in redirector.published] == [1.0101]
    fed = federation.load()
    assert fed.members["alpha"].weight == 80 and fed.generation == 1
    assert fed.members["gamma"].ramp is not None and fed.members["gamma"].ramp.step == 0
