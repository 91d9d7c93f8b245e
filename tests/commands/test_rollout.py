"""Rollouts in rings against stand-in members behind a real redirector, with the recorded helm
and kubectl fake of the deploy tests standing in for the clusters (an upgrade or rollback of a
member's binderhub release makes its stand-in report that version), on an injected clock."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from federation_deploy.actions.kube_auth import ClusterTools
from federation_deploy.cli.main import cli
from federation_deploy.commands import deploy as pipeline
from federation_deploy.commands.rollout import (
    RolloutIO,
    abort_rollout,
    check_version,
    helm_rollback,
    run_rollout,
)
from federation_deploy.commands.step_summary import rollout_markdown
from federation_deploy.config import Federation, Member, load_federation
from federation_deploy.durations import Clock
from federation_deploy.errors import Frozen, UsageError, VerificationError, WeightsConflict
from federation_deploy.health.probe import verify_member
from federation_deploy.sandbox.member import StandinHandle, start_standin
from federation_deploy.traffic.publish import make_publisher, parse_publish_target, publish_file
from federation_deploy.traffic.ramp.engine import RampSettings
from federation_deploy.traffic.ramp.plan import RampStep
from federation_deploy.traffic.weights import writer_lock
from tests.helpers.recording import Call, RecordingRunner
from tests.helpers.standin_federation import RedirectorThread, send_launches, zipf_launch_paths

OLD, NEW = "1.0.0", "1.1.0"
KUBE_TOOLS = ClusterTools(kubectl="kubectl")
MEMBERS = ("staging", "alpha", "beta", "gamma")

FEDERATION_YAML = """\
# A federation of stand-ins for the rollout tests.
charts:
  binderhub:
    repo: https://jupyterhub.github.io/helm-chart/
    version: "{old}"   # quoted on purpose: the bump keeps the quoting
  federation-redirect:
    chart: package:federation-redirect
    version: 0.1.0

redirector:
  host: redirector.test
  member: alpha
  release: federation-redirect
  check: {{period: 0.2, jitter: 0, retries: 1, timeout: 1, failed_period: 0.3}}

rings:
  staging: [staging]
  canary: smallest             # beta: the smallest routed member
  shares: [5, 10]
  hold: 1s

members:
  staging:
    url: {staging}
    cloud: kubeconfig
    routed: false
    cluster: {{kubeconfig: staging.yml}}
    releases:
      - {{name: binderhub, chart: binderhub, namespace: staging}}
  alpha:
    url: {alpha}
    cloud: kubeconfig
    prime: true
    weight: 60
    cluster: {{kubeconfig: alpha.yml}}
    releases:
      - {{name: binderhub, chart: binderhub, namespace: alpha}}
      - {{name: federation-redirect, chart: federation-redirect, namespace: redirect}}
  beta:
    url: {beta}
    cloud: kubeconfig
    weight: 15
    cluster: {{kubeconfig: beta.yml}}
    releases:
      - {{name: binderhub, chart: binderhub, namespace: beta}}
  gamma:
    url: {gamma}
    cloud: kubeconfig
    weight: 25
    cluster: {{kubeconfig: gamma.yml}}
    releases:
      - {{name: binderhub, chart: binderhub, namespace: gamma}}
"""


class StepClock:
    """The injected clock: a sleep moves `now` by what was asked and waits at most 20 ms of
    real time (the redirector and stand-ins are real and need a moment; holds do not)."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        time.sleep(min(seconds, 0.02))
        self.moment += timedelta(seconds=seconds)


@dataclass
class Rig:
    config_dir: Path
    standins: dict[str, StandinHandle]
    published: Path
    redirector: RedirectorThread
    recorder: RecordingRunner

    def load(self) -> Federation:
        return load_federation(self.config_dir)

    def versions(self) -> dict[str, str]:
        return {n: s.state.versions["binderhub"] for n, s in self.standins.items()}

    def published_config(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.published.read_text())
        return data

    def helm(self, verb: str) -> list[str]:
        """The namespaces of the recorded `helm VERB binderhub` calls, in order."""
        return [c.words[c.words.index("--namespace") + 1] for c in self.recorder.calls
                if c.words[:3] == ["helm", verb, "binderhub"]]

    def io(self, on_step: Callable[[RampStep], None] | None = None,
           clock: StepClock | None = None) -> RolloutIO:
        def deploy(fed: Federation, member: Member, releases: tuple[str, ...]) -> None:
            pipeline.deploy_member(fed, member, self.recorder, releases=releases,
                                   stages=("auth", "releases", "rollout"),
                                   helm_executable="helm", tools=KUBE_TOOLS)

        def rollback(fed: Federation, member: Member, releases: tuple[str, ...]) -> None:
            helm_rollback(fed, member, releases, self.recorder, "10m",
                          helm_executable="helm", tools=KUBE_TOOLS)

        def verify(fed: Federation, member: Member, key: str, version: str) -> None:
            result = verify_member(member, sleep=lambda _s: None)
            check_version(member, result.versions, key, version)

        clock = clock or StepClock()
        return RolloutIO(publish=make_publisher(parse_publish_target(f"file:{self.published}")),
                         deploy=deploy, rollback=rollback, verify=verify,
                         clock=Clock(now=clock.now, sleep=clock.sleep), on_step=on_step)

    def settings(self) -> RampSettings:
        return RampSettings(gate="time", redirector_url=self.redirector.url,
                            check_interval=0.3, poll_interval=0.05, settle_timeout=20.0,
                            request_timeout=2.0, heartbeat_interval=60.0)


def cluster(standins: dict[str, StandinHandle]) -> Callable[[Call], None]:
    """The clusters behind the recorded helm: `helm upgrade binderhub --version V` in a
    member's namespace makes its stand-in report V; `helm rollback` the version before."""
    history: dict[str, list[str]] = {n: [OLD] for n in MEMBERS}

    def rule(call: Call) -> None:
        w = call.words
        if w[:3] == ["helm", "upgrade", "binderhub"]:
            name = w[w.index("--namespace") + 1]
            history[name].append(w[w.index("--version") + 1])
            standins[name].set_versions({"binderhub": history[name][-1]})
        elif w[:3] == ["helm", "rollback", "binderhub"]:
            name = w[w.index("--namespace") + 1]
            history[name].pop()
            standins[name].set_versions({"binderhub": history[name][-1]})
        return None

    return rule


GESIS_YAML = """\
  gesis:                       # run by partners: routed, never deployed by this tool
    url: {gesis}
    cloud: external
    weight: 20
"""


def make_rig(tmp_path: Path, external: bool = False) -> Iterator[Rig]:
    names = (*MEMBERS, "gesis") if external else MEMBERS
    standins = {n: start_standin(n, versions={"binderhub": OLD}) for n in names}
    redirector = None
    try:
        config_dir = tmp_path / "config"
        (config_dir / "secrets").mkdir(parents=True)
        for name in MEMBERS:
            (config_dir / "secrets" / f"{name}.yml").write_text("apiVersion: v1\nkind: Config\n")
        text = FEDERATION_YAML + (GESIS_YAML if external else "")
        (config_dir / "federation.yaml").write_text(text.format(
            old=OLD, **{n: s.url for n, s in standins.items()}))
        published = tmp_path / "redirector" / "config.json"
        published.parent.mkdir()
        publish_file(load_federation(config_dir), published)
        redirector = RedirectorThread(published).start()
        redirector.wait_active(["alpha", "beta", "gamma", *(["gesis"] if external else [])])
        recorder = RecordingRunner()
        recorder.rules.append(cluster(standins))  # type: ignore[arg-type]
        yield Rig(config_dir, standins, published, redirector, recorder)
    finally:
        if redirector is not None:
            redirector.stop()
        for standin in standins.values():
            standin.stop()


@pytest.fixture
def rollout_rig(tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(tmp_path)


@pytest.fixture
def external_rig(tmp_path: Path) -> Iterator[Rig]:
    yield from make_rig(tmp_path, external=True)


def test_ring_one_keeps_its_share_and_the_rollout_ends_on_one_version(rollout_rig: Rig) -> None:
    rig = rollout_rig
    measured: dict[float, float] = {}
    served: list[object] = []
    paths = zipf_launch_paths(3000)
    url_to_member = {s.url: n for n, s in rig.standins.items()}

    def on_step(step: RampStep) -> None:
        # beta runs the new version, alpha and gamma the old: the set keeps beta in rotation
        assert rig.versions()["beta"] == NEW and rig.versions()["gamma"] == OLD
        served.append(rig.redirector.active_hosts()["beta"]["weight"])
        counts = send_launches(rig.redirector.url, paths, url_to_member)
        measured[step.percent] = 100.0 * counts["beta"] / len(paths)

    outcome = run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io(on_step))
    assert outcome.status == "complete"
    # staging first, then beta (ring 1), then the rest in config order
    assert rig.helm("upgrade") == ["staging", "beta", "alpha", "gamma"]
    assert rig.helm("rollback") == []
    assert rig.versions() == dict.fromkeys(MEMBERS, NEW)
    # measured shares per step: 5%, 10%, then its full weight (15%)
    print(f"measured share of beta per step: {measured}")
    assert abs(measured[5.0] - 5.0) <= 2.0 and abs(measured[10.0] - 10.0) <= 3.0
    assert abs(measured[100.0] - 15.0) <= 4.0
    # the end: one version everywhere in config, no rollout block, no accepted set
    fed = rig.load()
    assert fed.rollout is None and fed.chart("binderhub").version == NEW
    assert {r.version for _, r in fed.releases_of_chart("binderhub")} == {NEW}
    assert fed.members["beta"].weight == 15 and fed.members["beta"].ramp is None
    assert "accepted_versions" not in rig.published_config()
    text = (rig.config_dir / "federation.yaml").read_text()
    assert f'version: "{NEW}"   # quoted on purpose' in text
    rig.redirector.wait_active(["alpha", "beta", "gamma"])


def test_a_failing_ring_one_is_rolled_back(rollout_rig: Rig) -> None:
    rig = rollout_rig
    def on_step(step: RampStep) -> None:
        if step.index == 1:
            # beta starts answering a third version: out of rotation, its check fails
            rig.standins["beta"].set_versions({"binderhub": "0.9.0"})

    with pytest.raises(VerificationError, match="ring 1 failed at beta") as failed:
        run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io(on_step))
    assert "back on 1.0.0 at weight 15" in str(failed.value)
    # what to run next: the rollout's commands, never `ramp beta` (the rollout owns it)
    assert "`federation-deploy ramp" not in str(failed.value)
    assert f"rollout binderhub {NEW} --resume" in str(failed.value)
    assert rig.helm("upgrade") == ["staging", "beta"]
    assert rig.helm("rollback") == ["beta"]
    fed = rig.load()
    # beta: its old share and its old version, in config and on the stand-in
    assert fed.members["beta"].weight == 15 and fed.members["beta"].ramp is None
    assert fed.members["beta"].release("binderhub").version == OLD
    assert rig.versions()["beta"] == OLD
    rollout = fed.rollout
    assert rollout is not None and rollout.ring == 0 and rollout.rolled_back is not None
    assert rollout.upgraded == ("staging",)
    config = rig.published_config()
    assert "accepted_versions" not in config
    assert config["hosts"]["beta"]["weight"] == 15  # type: ignore[index]
    rig.redirector.wait_active(["alpha", "beta", "gamma"])
    # paused: a plain run is refused until --resume (or --abort)
    with pytest.raises(VerificationError, match="paused since its rollback"):
        run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io())
    # `traffic` and `rollout --dry-run` show the rings: who runs what, the pause
    for args in (["traffic"], ["rollout", "--dry-run"]):
        result = CliRunner().invoke(cli, ["--config-dir", str(rig.config_dir), *args])
        assert result.exit_code == 0, result.output
        assert f"rollout of binderhub {OLD} -> {NEW}: ring 0; paused: " in result.stdout
        rows = [line.split() for line in result.stdout.splitlines()]
        assert ["staging", "0", NEW, "0", "upgraded"] in rows
        assert ["beta", "1", OLD, "15", "waiting"] in rows
    summary = rollout_markdown(rig.load(), "binderhub", NEW, None, str(failed.value))
    assert "| beta | 1 | 1.0.0 | 15 | 15.00% | - |" in summary
    assert "**stopped**: the rollout of binderhub 1.1.0 is paused" in summary


def test_an_abort_mid_ring_wins(rollout_rig: Rig) -> None:
    rig = rollout_rig
    aborted: list[str] = []

    def on_step(step: RampStep) -> None:
        if step.index == 0:
            outcome = abort_rollout(rig.load(), rig.settings(), rig.io())
            aborted.append(outcome.message)

    with pytest.raises(WeightsConflict, match="aborted"):
        run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io(on_step))
    assert aborted == [f"rollout of binderhub {NEW} aborted: every member back on {OLD}"]
    # staging and beta rolled back (newest first); alpha and gamma never touched
    assert rig.helm("rollback") == ["beta", "staging"]
    assert rig.versions() == dict.fromkeys(MEMBERS, OLD)
    fed = rig.load()
    assert fed.rollout is None and fed.chart("binderhub").version == OLD
    assert fed.members["beta"].weight == 15 and fed.members["beta"].ramp is None
    config = rig.published_config()
    assert "accepted_versions" not in config and config["generation"] == fed.generation
    rig.redirector.wait_active(["alpha", "beta", "gamma"])


def test_two_rollouts_at_once_one_is_refused(rollout_rig: Rig) -> None:
    rig = rollout_rig
    fed = rig.load()
    # on one machine: the writer lock names the rollout that runs
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with writer_lock(rig.config_dir, "rollout binderhub 1.1.0"):
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        held.wait(5)
        # flock is per open file: a second open in this process is refused as another's
        with pytest.raises(WeightsConflict, match=r"rollout binderhub 1\.1\.0"):
            run_rollout(fed, "binderhub", "1.2.0", rig.settings(), rig.io())
    finally:
        release.set()
        holder.join()
    # across machines: the rollout in federation.yaml names itself
    def stop_after_ring_zero(step: RampStep) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_rollout(fed, "binderhub", NEW, rig.settings(), rig.io(stop_after_ring_zero))
    with pytest.raises(UsageError, match=f"a rollout of binderhub {NEW} is in progress"):
        run_rollout(rig.load(), "binderhub", "1.2.0", rig.settings(), rig.io())


def test_a_bump_records_the_rollout_and_resume_runs_it(rollout_rig: Rig) -> None:
    rig = rollout_rig
    from federation_deploy.commands.charts import bump

    result = bump(rig.load(), "binderhub", NEW, rig.recorder, check=False)
    assert any("a rollout: block records the move" in m for m in result.messages)
    fed = rig.load()
    # the pin moved, nobody's release did: CD after the merge deploys nothing new
    assert fed.chart("binderhub").version == NEW
    assert {r.version for _, r in fed.releases_of_chart("binderhub")} == {OLD}
    assert fed.rollout is not None and fed.rollout.ring == -1
    with pytest.raises(UsageError, match="one rollout at a time"):
        bump(fed, "binderhub", "1.2.0", rig.recorder, check=False)
    outcome = run_rollout(fed, "binderhub", NEW, rig.settings(), rig.io(), resume=True)
    assert outcome.status == "complete" and rig.versions() == dict.fromkeys(MEMBERS, NEW)


def test_advance_takes_ring_one_a_step_per_run(rollout_rig: Rig) -> None:
    """The scheduled job's mode: each run does what needs no hold and one step of ring 1."""
    rig = rollout_rig
    clock = StepClock()
    said: list[str] = []
    fed = rig.load()
    first = run_rollout(fed, "binderhub", NEW, rig.settings(), rig.io(clock=clock),
                        advance=True)
    assert first.status == "holding" and "beta at step 1/3 (5%)" in first.message
    assert rig.load().members["beta"].ramp is not None
    # the hold is not over: the next run checks and holds on
    again = run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io(clock=clock),
                        advance=True)
    assert again.status == "holding" and rig.load().members["beta"].ramp.step == 0  # type: ignore[union-attr]
    statuses = []
    for _ in range(5):
        clock.moment += timedelta(seconds=2)
        outcome = run_rollout(rig.load(), "binderhub", NEW, rig.settings(),
                              rig.io(clock=clock), advance=True)
        statuses.append(outcome.status)
        said.append(outcome.message)
        if outcome.status == "complete":
            break
        if "its last step" in outcome.message:
            # the last share (its own weight) is published, not judged yet: ring 1 not over
            fed = rig.load()
            ramp, rollout = fed.members["beta"].ramp, fed.rollout
            assert ramp is not None and ramp.owner == "rollout" and ramp.step == 2
            assert fed.members["beta"].weight == 15
            assert rollout is not None and rollout.ring == 1 and rollout.ring1_passed_at is None
            assert rig.helm("upgrade") == ["staging", "beta"]
    # 10%, then the last share published, then its hold judged: only then ring 2
    assert statuses == ["holding", "holding", "complete"], said
    assert rig.versions() == dict.fromkeys(MEMBERS, NEW) and rig.load().rollout is None


def test_an_interrupted_ring_one_still_judges_its_last_share(rollout_rig: Rig) -> None:
    """The last step published, then the job stops: a resume holds and judges it (ring 1 is
    over only at `ring1_passed_at`), not `weight == canary_weight` taken as done."""
    rig = rollout_rig
    clock = StepClock()
    while True:
        outcome = run_rollout(rig.load(), "binderhub", NEW, rig.settings(),
                              rig.io(clock=clock), advance=True)
        assert outcome.status == "holding", outcome.message
        if "its last step" in outcome.message:
            break
        clock.moment += timedelta(seconds=2)
    published_at = clock.now()
    failures: list[str] = []

    def beta_fails(step: RampStep) -> None:
        failures.append("called")

    # beta now fails its checks during the last share's hold: ring 1 must be rolled back
    rig.standins["beta"].set_versions({"binderhub": "0.9.0"})
    with pytest.raises(VerificationError, match="ring 1 failed at beta"):
        run_rollout(rig.load(), "binderhub", NEW, rig.settings(),
                    rig.io(beta_fails, clock=clock), resume=True)
    assert rig.helm("rollback") == ["beta"] and rig.helm("upgrade") == ["staging", "beta"]
    fed = rig.load()
    assert fed.rollout is not None and fed.rollout.rolled_back is not None
    assert fed.rollout.ring1_passed_at is None and fed.members["beta"].ramp is None
    assert clock.now() >= published_at


def test_a_freeze_refuses_a_rollout(rollout_rig: Rig) -> None:
    rig = rollout_rig
    path = rig.config_dir / "federation.yaml"
    frozen = ('freeze:\n  reason: conference demo\n  who: maintainer\n'
              '  until: "2030-01-01T00:00:00Z"\n')
    path.write_text(path.read_text().replace("members:\n", frozen + "members:\n", 1))
    with pytest.raises(Frozen, match="conference demo"):
        run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io())
    assert rig.load().rollout is None and rig.helm("upgrade") == []


def cli_run(rig: Rig, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config-dir", str(rig.config_dir), *args])


def test_a_member_we_do_not_deploy_is_not_starved(external_rig: Rig) -> None:
    """gesis (cloud: external) reports binderhub too: named in the plan, and the end of the
    rollout keeps accepting its version until it reports the new one."""
    rig = external_rig
    planned = cli_run(rig, "rollout", "binderhub", NEW, "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert ["-", "gesis", "not", "ours:", "keeps", "version", f"{OLD};"] in [
        line.split()[:7] for line in planned.stdout.splitlines()]
    outcome = run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io())
    assert outcome.status == "waiting"
    assert "not ours: gesis keeps version 1.0.0" in outcome.message
    assert rig.helm("upgrade") == ["staging", "beta", "alpha", "gamma"]
    fed = rig.load()
    assert fed.rollout is not None and fed.rollout.external == {"gesis": OLD}
    config = rig.published_config()
    assert config["accepted_versions"] == {"binderhub": [OLD, NEW]}
    # the prime runs NEW, gesis OLD: still in rotation
    rig.redirector.wait_active(["alpha", "beta", "gamma", "gesis"])
    shown = cli_run(rig, "traffic")
    assert shown.exit_code == 0, shown.output
    assert "waiting for gesis (not ours)" in shown.stdout
    assert ["gesis", "-", OLD, "20", "not", "ours:", "keeps", "version", OLD] in [
        line.split() for line in shown.stdout.splitlines()]
    summary = rollout_markdown(fed, "binderhub", NEW, outcome.message)
    assert "| gesis | not ours | 1.0.0 |" in summary
    # a scheduled run while gesis has not moved: still waiting, nothing deployed again
    again = run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io(), resume=True,
                        advance=True)
    assert again.status == "waiting" and len(rig.helm("upgrade")) == 4
    # gesis upgrades itself: the next run ends the rollout
    rig.standins["gesis"].set_versions({"binderhub": NEW})
    done = run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io(), resume=True)
    assert done.status == "complete" and rig.load().rollout is None
    assert "accepted_versions" not in rig.published_config()
    rig.redirector.wait_active(["alpha", "beta", "gamma", "gesis"])


def test_ring_one_is_the_rollouts_ramp(rollout_rig: Rig) -> None:
    """`ramp` (also --advance and ci-matrix --ramping) leaves ring 1 alone; a rollout that
    finds its ring 1 paused rolls it back with helm and stops red."""
    rig = rollout_rig
    clock = StepClock()
    first = run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io(clock=clock),
                        advance=True)
    assert first.status == "holding"
    path = rig.config_dir / "federation.yaml"
    before = path.read_text()
    assert "owner: rollout" in before
    refused = cli_run(rig, "ramp", "beta", "--yes")
    assert refused.exit_code == 2 and "rollout --resume" in refused.output
    skipped = cli_run(rig, "ramp", "beta", "--advance", "--yes")
    assert skipped.exit_code == 0 and "skipped" in skipped.output, skipped.output
    matrix = cli_run(rig, "ci-matrix", "--ramping")
    assert matrix.exit_code == 0 and json.loads(matrix.stdout)["include"] == []
    assert path.read_text() == before
    # someone paused it anyway (a hand edit, an older tool): the rollout rolls ring 1 back
    path.write_text(before.replace("owner: rollout", "owner: rollout\n      rolled_back: "
                                   "'2026-01-01T00:00:00Z from step 1/3 (5%): by hand'", 1))
    with pytest.raises(VerificationError, match="its ramp was found paused"):
        run_rollout(rig.load(), "binderhub", NEW, rig.settings(), rig.io(clock=clock),
                    resume=True, advance=True)
    assert rig.helm("rollback") == ["beta"] and rig.versions()["beta"] == OLD
    fed = rig.load()
    assert fed.members["beta"].weight == 15 and fed.members["beta"].ramp is None
    assert fed.rollout is not None and fed.rollout.rolled_back is not None


def test_an_abort_rolls_back_a_member_upgraded_but_not_recorded(rollout_rig: Rig) -> None:
    rig = rollout_rig
    io = rig.io()
    verify = io.verify

    def crash_after_gamma(fed: Federation, member: Member, key: str, version: str) -> None:
        if member.name == "gamma":
            raise KeyboardInterrupt  # the deploy went through; `upgraded:` never written
        verify(fed, member, key, version)

    io.verify = crash_after_gamma
    with pytest.raises(KeyboardInterrupt):
        run_rollout(rig.load(), "binderhub", NEW, rig.settings(), io)
    state = rig.load().rollout
    assert state is not None and state.upgrading == "gamma" and "gamma" not in state.upgraded
    assert rig.versions()["gamma"] == NEW
    abort_rollout(rig.load(), rig.settings(), rig.io())
    assert rig.versions() == dict.fromkeys(MEMBERS, OLD)
    assert sorted(rig.helm("rollback")) == ["alpha", "beta", "gamma", "staging"]


def test_a_refused_rollout_writes_nothing(rollout_rig: Rig) -> None:
    rig = rollout_rig
    path = rig.config_dir / "federation.yaml"
    before = path.read_text()
    io = rig.io()
    io.healthy = lambda: frozenset()  # the redirector reports nobody healthy: no ring 1
    with pytest.raises(UsageError, match="no member can be ring 1"):
        run_rollout(rig.load(), "binderhub", NEW, rig.settings(), io)
    assert path.read_text() == before and rig.helm("upgrade") == []


def test_versions_are_checked(rollout_rig: Rig) -> None:
    rig = rollout_rig
    bad = cli_run(rig, "rollout", "binderhub", "notaversion", "--dry-run")
    assert bad.exit_code == 2 and "not a valid chart version" in bad.output
    down = cli_run(rig, "rollout", "binderhub", "0.9.0", "--dry-run")
    assert down.exit_code == 2 and "1.0.0 is newer" in down.output
    assert "--allow-downgrade" in down.output
    allowed = cli_run(rig, "rollout", "binderhub", "0.9.0", "--dry-run", "--allow-downgrade")
    assert allowed.exit_code == 0, allowed.output
    with pytest.raises(UsageError, match="downgrade"):
        run_rollout(rig.load(), "binderhub", "0.9.0", rig.settings(), rig.io())
    assert rig.load().rollout is None


def test_the_dry_run_shows_what_the_run_does(rollout_rig: Rig) -> None:
    rig = rollout_rig
    path = rig.config_dir / "federation.yaml"
    # beta's own share is 15%: a 25% step is dropped by the real run, so by the dry run too
    path.write_text(path.read_text().replace("shares: [5, 10]", "shares: [5, 25]"))
    planned = cli_run(rig, "rollout", "binderhub", NEW, "--dry-run")
    assert planned.exit_code == 0, planned.output
    assert "then 5% of launches, then its weight 15" in planned.stdout
    assert "25%" not in planned.stdout
    # a freeze: the dry run says the run would be refused
    frozen = ('freeze:\n  reason: conference demo\n  who: maintainer\n'
              '  until: "2030-01-01T00:00:00Z"\n')
    path.write_text(path.read_text().replace("members:\n", frozen + "members:\n", 1))
    planned = cli_run(rig, "rollout", "binderhub", NEW, "--dry-run")
    assert planned.exit_code == 0 and "the real run would be refused" in planned.output


def test_after_a_bump_the_dry_run_names_ring_one(rollout_rig: Rig) -> None:
    rig = rollout_rig
    from federation_deploy.commands.charts import bump

    bump(rig.load(), "binderhub", NEW, rig.recorder, check=False)
    shown = cli_run(rig, "rollout", "--dry-run")
    assert shown.exit_code == 0, shown.output
    rows = [line.split() for line in shown.stdout.splitlines()]
    assert ["beta", "1", OLD, "15", "waiting"] in rows
    assert ["gamma", "2", OLD, "25", "waiting"] in rows


def test_ring_one_holds_each_share_at_least_the_rings_hold() -> None:
    from federation_deploy.commands.rollout import ring_one_settings

    settings = RampSettings(gate="evidence", prometheus_url="http://127.0.0.1:9")
    assert ring_one_settings(settings, 600.0).min_hold == 600.0  # not 200 (a third)
    chosen = RampSettings(gate="evidence", min_hold=60.0)
    assert ring_one_settings(chosen, 600.0).min_hold == 60.0


def test_an_interrupted_rollout_says_how_to_go_on(rollout_rig: Rig,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from federation_deploy.commands import rollout as command

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "run_rollout", interrupted)
    result = cli_run(rollout_rig, "rollout", "binderhub", NEW, "--yes", "--publish",
                     f"file:{rollout_rig.published}")
    assert result.exit_code != 0
    assert f"`federation-deploy rollout binderhub {NEW} --resume` goes on" in result.output
    assert "`federation-deploy rollout --abort` ends it" in result.output
