"""`freeze` / `unfreeze` and the refusals (issue 26): the block written through the one writer,
each changing command refused while it is in force (injected clock), let through once it has
expired (and said so), and drains/restores going through it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.commands import freeze as freezing
from federation_deploy.commands.deploy import plan_deploy
from federation_deploy.commands.drain import drain_member, restore_member, set_member_weight
from federation_deploy.commands.ramp import advance_ramp, run_ramp
from federation_deploy.commands.unfreeze import unfreeze
from federation_deploy.config import load_federation
from federation_deploy.durations import Clock
from federation_deploy.errors import EXIT_USAGE, ConfigError, Frozen, UsageError
from federation_deploy.traffic.ramp.engine import RampSettings
from federation_deploy.traffic.weights import writer_lock
from tests.helpers.recording import RecordingRunner

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def clock_at(moment: datetime) -> Clock:
    return Clock(now=lambda: moment, sleep=lambda _s: None)


def frozen(config_dir: Path, until: str = "2d", who: str | None = "ada",
           reason: str = "conference demo") -> None:
    freezing.freeze(load_federation(config_dir), reason, until, who,
                    runner=RecordingRunner(), clock=clock_at(NOW))


def test_freeze_writes_the_block_through_the_one_writer(config_dir: Path) -> None:
    before = load_federation(config_dir)
    said: list[str] = []
    result = freezing.freeze(before, "conference demo", "2d", "ada", runner=RecordingRunner(),
                             clock=clock_at(NOW), progress=said.append)
    fed = load_federation(config_dir)
    # the weights' generation: a freeze changes no weight
    assert fed.generation == before.generation
    assert fed.freeze is not None
    assert (fed.freeze.reason, fed.freeze.who, fed.freeze.until, fed.freeze.since) == (
        "conference demo", "ada", NOW + timedelta(days=2), "2026-12-07T08:00:00Z")
    assert result.stdout == ("federation frozen until 2026-12-09T08:00:00Z by ada: "
                             "conference demo\n")
    text = (config_dir / "federation.yaml").read_text()
    # round-trip: the file's comments survive; the block sits before `members:`
    assert "# mybinder.org federation registry" in text
    assert text.index("freeze:") < text.index("\nmembers:")
    assert yaml.safe_load(text)["freeze"]["until"] == "2026-12-09T08:00:00Z"
    assert said == [f"{fed.path}: freeze written (generation {fed.generation} kept: no weight "
                    "changed)"]


def test_until_accepts_days_durations_and_iso_with_a_zone() -> None:
    assert freezing.parse_until_option("2d", NOW) == NOW + timedelta(days=2)
    assert freezing.parse_until_option("36h", NOW) == NOW + timedelta(hours=36)
    assert freezing.parse_until_option("1h30m", NOW) == NOW + timedelta(minutes=90)
    assert freezing.parse_until_option("2026-12-08T10:00:00+02:00", NOW) == datetime(
        2026, 12, 8, 8, 0, tzinfo=UTC)
    for bad in ("tomorrow", "2026-12-08T10:00:00", "2026-12-01T00:00:00Z", "0s"):
        with pytest.raises(UsageError):
            freezing.parse_until_option(bad, NOW)


def test_until_refuses_a_bare_number_and_more_than_90_days() -> None:
    with pytest.raises(UsageError, match="a bare number has no unit: use 2d, 36h, 90m"):
        freezing.parse_until_option("2", NOW)
    for far in ("99999d", "91d", "2027-12-01T00:00:00Z"):
        with pytest.raises(UsageError, match="a freeze is at most 90 days"):
            freezing.parse_until_option(far, NOW)
    assert freezing.parse_until_option("90d", NOW) == NOW + timedelta(days=90)


def test_a_freeze_by_someone_else_is_replaced_only_with_replace(config_dir: Path) -> None:
    frozen(config_dir, until="3d", who="bob", reason="upgrade week")
    with pytest.raises(UsageError) as refused:
        frozen(config_dir, until="1h", who="carol", reason="demo")
    message = str(refused.value)
    assert "already frozen until 2026-12-10T08:00:00Z by bob (reason: upgrade week;" in message
    assert "run again with --replace" in message
    assert load_federation(config_dir).freeze.who == "bob"  # type: ignore[union-attr]
    # bob extends his own freeze without --replace
    frozen(config_dir, until="4d", who="bob", reason="upgrade week, longer")
    assert load_federation(config_dir).freeze.until == (  # type: ignore[union-attr]
        NOW + timedelta(days=4))
    result = freezing.freeze(load_federation(config_dir), "demo", "1h", "carol",
                             runner=RecordingRunner(), clock=clock_at(NOW), replace=True)
    assert "(replaces the freeze until 2026-12-11T08:00:00Z)" in result.stdout
    assert load_federation(config_dir).freeze.who == "carol"  # type: ignore[union-attr]
    # the CLI (the real clock)
    code, _, err = _cli(config_dir, "freeze", "--reason", "talk", "--until", "1d", "--who", "eve",
                        "--replace")
    assert code == 0, err
    code, _, err = _cli(config_dir, "freeze", "--reason", "x", "--until", "1d", "--who", "dan")
    assert code == 2 and "by eve (reason: talk;" in err and "--replace" in err


def test_an_invalid_freeze_refuses_what_a_freeze_refuses_and_lets_incidents_through(
        config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace("generation: 0\n", (
        "generation: 0\nfreeze:\n  reason: demo\n  who: ada\n"
        "  until: 2026-12-09T08:00:00\n"), 1))  # hand-edited: no zone
    fed = load_federation(config_dir)  # loads: an incident never waits for a freeze
    for refused in (lambda: plan_deploy(fed, "gke", clock=clock_at(NOW)),
                    lambda: freezing.freeze_status(fed, clock_at(NOW)),
                    lambda: freezing.freeze(fed, "x", "1d", "bob", runner=RecordingRunner(),
                                            clock=clock_at(NOW))):
        with pytest.raises(ConfigError) as raised:
            refused()
        assert raised.value.exit_code == EXIT_USAGE
        assert "freeze.until: expected an ISO 8601 time with a zone" in str(raised.value)
        assert "`federation-deploy unfreeze` removes it" in str(raised.value)
    code, _, err = _cli(config_dir, "validate")
    assert code == 2 and "freeze.until" in err
    said: list[str] = []
    drained = drain_member(fed, "ovh2", "disk full", lambda f: None, clock=clock_at(NOW),
                           progress=said.append)
    assert drained.status == "drained"
    assert any("the `freeze:` block is invalid" in s and "goes ahead" in s for s in said)
    restore_member(load_federation(config_dir), "ovh2", lambda f: None, clock=clock_at(NOW))
    result = unfreeze(load_federation(config_dir), clock=clock_at(NOW))
    assert result.stdout.startswith("federation unfrozen (the invalid `freeze:` block removed")
    after = load_federation(config_dir)
    assert after.freeze is None and after.freeze_problems == ()
    assert "freeze:" not in path.read_text()


def test_traffic_and_members_say_a_freeze_is_on_in_one_line(config_dir: Path) -> None:
    from federation_deploy.commands.members import members
    from federation_deploy.commands.traffic import traffic

    fed = load_federation(config_dir)
    assert "frozen" not in members(fed, clock=clock_at(NOW)).stdout
    assert "frozen" not in traffic(fed, None, "table", clock_at(NOW)).stdout
    frozen(config_dir)
    fed = load_federation(config_dir)
    line = ("frozen until 2026-12-09T08:00:00Z by ada (conference demo): deploy, ramp, set "
            "and prime refuse; drain and restore run")
    for shown in (members(fed, clock=clock_at(NOW)), traffic(fed, None, "table",
                                                             clock_at(NOW))):
        assert shown.stdout.rstrip("\n").endswith("\n" + line)
        assert shown.stdout.count("frozen") == 1
    as_json = traffic(fed, None, "json", clock_at(NOW))
    assert "frozen" not in as_json.stdout and as_json.messages == (line,)
    assert members(fed, "json", clock_at(NOW)).messages == (line,)


def test_who_defaults_to_the_github_actor_then_git(config_dir: Path) -> None:
    runner = RecordingRunner()
    runner.answer(["git", "config", "user.name"], out="Grace Hopper\n")
    assert freezing.default_who(runner, config_dir, {"GITHUB_ACTOR": "octocat"}) == "octocat"
    assert freezing.default_who(runner, config_dir, {}) == "Grace Hopper"
    runner.answer(["git", "config", "user.name"], code=1)
    assert freezing.default_who(runner, config_dir, {"USER": "ops"}) == "ops"


def test_every_changing_command_is_refused_while_frozen(config_dir: Path) -> None:
    frozen(config_dir)
    fed = load_federation(config_dir)
    during = clock_at(NOW + timedelta(hours=1))
    refusals = []
    with pytest.raises(Frozen) as deploy:
        plan_deploy(fed, "gke", clock=during)
    refusals.append(deploy.value)
    with pytest.raises(Frozen) as ramp:
        run_ramp(fed, "curvenote", lambda f: None, settings=RampSettings(gate="time"),
                 clock=during)
    refusals.append(ramp.value)
    with pytest.raises(Frozen) as scheduled:
        advance_ramp(fed, "curvenote", lambda f: None, settings=RampSettings(gate="time"),
                     clock=during)
    refusals.append(scheduled.value)
    with pytest.raises(Frozen) as setting:
        set_member_weight(fed, "ovh2", 20, lambda f: None, clock=during)
    refusals.append(setting.value)
    for exc, action in zip(refusals, ("deploy gke", "ramp curvenote",
                                      "ramp curvenote --advance", "traffic set ovh2"),
                           strict=True):
        assert exc.exit_code == EXIT_USAGE
        assert str(exc).startswith(f"refused: {action}: the federation is frozen until "
                                   "2026-12-09T08:00:00Z by ada (reason: conference demo;")
        assert f"`{action}`" in exc.step_summary and "conference demo" in exc.step_summary
    assert load_federation(config_dir) == fed  # nothing written by any of them
    # a deploy that changes nothing on the cluster is not refused
    assert plan_deploy(fed, "gke", stages=["verify"], clock=during).stages == ("verify",)


def test_an_expired_freeze_is_ignored_and_said(config_dir: Path) -> None:
    frozen(config_dir, until="1h")
    fed = load_federation(config_dir)
    said: list[str] = []
    after = clock_at(NOW + timedelta(hours=2))
    outcome = set_member_weight(fed, "ovh2", 20, lambda f: None, clock=after,
                                progress=said.append)
    assert outcome.weight == 20
    assert load_federation(config_dir).members["ovh2"].weight == 20
    expired = [s for s in said if "expired" in s]
    assert expired == [
        f"warning: the freeze in {fed.freeze.location} expired at 2026-12-07T09:00:00Z (by "  # type: ignore[union-attr]
        "ada: conference demo): ignored; `federation-deploy unfreeze` removes it"]


def test_drain_and_restore_go_through_a_freeze_and_say_so(config_dir: Path) -> None:
    frozen(config_dir)
    during = clock_at(NOW + timedelta(hours=1))
    said: list[str] = []
    drained = drain_member(load_federation(config_dir), "ovh2", "disk full", lambda f: None,
                           clock=during, progress=said.append)
    assert drained.status == "drained"
    assert load_federation(config_dir).members["ovh2"].weight == 0
    restored = restore_member(load_federation(config_dir), "ovh2", lambda f: None,
                              clock=during, progress=said.append)
    assert restored.weight == 15
    notices = [s for s in said if s.startswith("note: the federation is frozen")]
    assert len(notices) == 2
    assert "the drain of ovh2 goes ahead: an incident never waits" in notices[0]
    assert "the restore of ovh2 goes ahead" in notices[1]
    assert load_federation(config_dir).freeze is not None  # the freeze stays


def test_unfreeze_removes_the_block(config_dir: Path) -> None:
    frozen(config_dir)
    fed = load_federation(config_dir)
    result = unfreeze(fed, clock=clock_at(NOW))
    after = load_federation(config_dir)
    assert after.freeze is None and after.generation == fed.generation
    assert "freeze:" not in (config_dir / "federation.yaml").read_text()
    assert result.stdout.startswith("federation unfrozen (the freeze in force until "
                                    "2026-12-09T08:00:00Z by ada")
    again = unfreeze(after, clock=clock_at(NOW))  # idempotent: exit 0, said
    assert (again.exit_code, again.stdout) == (
        0, f"already not frozen: {after.path} has no `freeze:` block\n")
    assert load_federation(config_dir) == after


def test_freeze_takes_the_writer_lock(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    with writer_lock(config_dir, "ramp curvenote", "curvenote"), \
            pytest.raises(Exception, match="another weight writer runs"):
        freezing.freeze(fed, "x", "1d", "ada", runner=RecordingRunner(), clock=clock_at(NOW))
    assert load_federation(config_dir).freeze is None


def test_free_text_cannot_inject_lines_or_workflow_commands(config_dir: Path) -> None:
    frozen(config_dir, reason="demo\n::error::pwned", who="eve\r\n::add-mask::x")
    fed = load_federation(config_dir)
    with pytest.raises(Frozen) as refused:
        plan_deploy(fed, "gke", clock=clock_at(NOW))
    for text in (str(refused.value), refused.value.step_summary):
        assert all(not line.startswith("::") for line in text.splitlines())
        assert "::" not in text.replace("`", "")
    assert "demo\\n: :error: :pwned" in str(refused.value)


def _cli(config_dir: Path, *args: str, env: dict[str, str] | None = None
         ) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), *args],
                                env={"CI": "true", **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def test_cli_freeze_refusal_exit_2_with_summary_then_unfreeze(
        config_dir: Path, tmp_path: Path) -> None:
    code, out, _ = _cli(config_dir, "freeze", "--reason", "upgrade week", "--until", "2d",
                        "--who", "ada")
    assert code == 0 and out.startswith("federation frozen until ")
    summary = tmp_path / "summary.md"
    summary.touch()
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    code, _, err = _cli(config_dir, "traffic", "set", "ovh2", "--weight", "20", "--publish",
                        f"file:{tmp_path / 'config.json'}", env=env)
    assert code == 2
    assert "error: refused: traffic set ovh2: the federation is frozen until" in err
    assert "by ada (reason: upgrade week;" in err
    assert "### refused: `traffic set ovh2`" in summary.read_text()
    # the scheduled job's command line (the evidence gate, Prometheus from config)
    code, _, err = _cli(config_dir, "ramp", "curvenote", "--advance", "--yes",
                        "--publish", f"file:{tmp_path / 'config.json'}", env=env)
    assert code == 2 and "refused: ramp curvenote --advance: the federation is frozen" in err
    assert "### refused: `ramp curvenote --advance`" in summary.read_text()
    code, out, _ = _cli(config_dir, "unfreeze")
    assert code == 0 and out.startswith("federation unfrozen")


def test_cli_freeze_rejects_a_bad_until(config_dir: Path) -> None:
    code, _, err = _cli(config_dir, "freeze", "--reason", "x", "--until", "soon")
    assert code == 2 and "--until 'soon': expected a duration from now like 2d" in err
    assert load_federation(config_dir).freeze is None
    assert os.path.exists(config_dir / "federation.yaml")


def test_check_says_whether_a_freeze_is_in_force(config_dir: Path) -> None:
    assert freezing.freeze_status(load_federation(config_dir)).exit_code == 1
    frozen(config_dir, until="1h")
    fed = load_federation(config_dir)
    during = freezing.freeze_status(fed, clock_at(NOW))
    assert (during.exit_code, during.stdout) == (
        0, "frozen until 2026-12-07T09:00:00Z by ada: conference demo\n")
    after = freezing.freeze_status(fed, clock_at(NOW + timedelta(hours=1)))
    assert after.exit_code == 1 and after.stdout.startswith("not frozen: the freeze in ")
    freezing.freeze(fed, "long ago", "1h", "ada", runner=RecordingRunner(),
                    clock=clock_at(datetime(2001, 1, 1, tzinfo=UTC)))
    code, out, _ = _cli(config_dir, "freeze", "--check")  # the real clock: long past
    assert code == 1 and "expired at 2001-01-01T01:00:00Z" in out
    code, out, _ = _cli(config_dir, "freeze", "--reason", "now", "--until", "1d")
    code, out, _ = _cli(config_dir, "freeze", "--check")
    assert code == 0 and out.startswith("frozen until ")
    code, _, err = _cli(config_dir, "freeze", "--reason", "x")
    assert code == 2 and "freeze needs --reason TEXT and --until" in err


def test_cli_deploy_refused_while_frozen_asks_nothing(config_dir: Path) -> None:
    assert _cli(config_dir, "freeze", "--reason", "demo", "--until", "1d", "--who", "ada")[0] == 0
    code, _, err = _cli(config_dir, "deploy", "gke", "--yes", "--recover", "--release",
                        "binderhub")
    assert code == 2 and "error: refused: deploy gke --recover: the federation is frozen" in err
    # what a person can do meanwhile: helm's own commands, for the release asked
    assert "To free a release stuck in pending-* during the freeze, by hand" in err
    assert "helm rollback binderhub N --namespace prod --wait" in err
    assert "cert-manager" not in err
