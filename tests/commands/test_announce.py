"""Every deploy and weight change announced (issue 26), through the CLI and the ramp command,
to Grafana and webhook stand-ins on 127.0.0.1: the payloads they get, no secret in any output,
and a failing or missing receiver a warning (stderr and step summary) with exit 0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.context import Context
from federation_deploy.cli.main import cli
from federation_deploy.commands.ramp import PublishRequest, RampRequest, ramp
from federation_deploy.config import load_federation
from federation_deploy.runner import Runner
from tests.helpers.announcements import StandIn, hanging_standin, http_standin
from tests.helpers.recording import RecordingRunner
from tests.helpers.standin_federation import StandinFederation

TOKEN = "glsa_T0KEN_never_shown"
HOOK_SECRET = "T00/B00/hook-s3cr3t"
NOTIFICATIONS = ("notifications:\n  webhook_env: FEDERATION_WEBHOOK_URL\n  format: slack\n"
                 "  tags: [mybinder]\n  timeout: 0.5\n")


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StandIn, StandIn]]:
    with http_standin() as grafana, http_standin() as hook:
        monkeypatch.setenv("GRAFANA_URL", grafana.url)
        monkeypatch.setenv("GRAFANA_API_KEY", TOKEN)
        monkeypatch.setenv("FEDERATION_WEBHOOK_URL", f"{hook.url}/{HOOK_SECRET}")
        yield grafana, hook


def configure(config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace("generation: 0\n",
                                             "generation: 0\n" + NOTIFICATIONS, 1))


def cli_run(config_dir: Path, *args: str, env: dict[str, str] | None = None
            ) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), *args],
                                env={"CI": "true", **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def no_secret(*texts: str) -> None:
    for text in texts:
        assert TOKEN not in text and HOOK_SECRET not in text


def test_traffic_set_is_announced_to_grafana_and_the_webhook(
        config_dir: Path, tmp_path: Path, receivers: tuple[StandIn, StandIn]) -> None:
    grafana, hook = receivers
    configure(config_dir)
    code, out, err = cli_run(config_dir, "traffic", "set", "ovh2", "--weight", "20",
                             "--reason", "more capacity", "--publish",
                             f"file:{tmp_path / 'config.json'}", "--yes")
    assert code == 0, err
    [annotation] = grafana.received
    assert annotation.body["tags"] == ["federation-deploy", "weights", "set", "ovh2", "mybinder"]
    assert annotation.body["text"] == ("federation-deploy set ovh2: ovh2 weight 15 -> 20 "
                                       "(more capacity)")
    assert annotation.headers["Authorization"] == f"Bearer {TOKEN}"
    # Slack's text: `>` escaped as its rules say (Slack shows it as `>`)
    assert hook.received[0].body == {"text": annotation.body["text"].replace(">", "&gt;")}
    no_secret(out, err, annotation.raw.decode(), hook.received[0].raw.decode())


def test_a_failing_and_a_hanging_receiver_are_warnings_and_exit_0(
        config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(config_dir)
    summary = tmp_path / "summary.md"
    summary.touch()
    with http_standin(500) as grafana, hanging_standin() as hook:
        monkeypatch.setenv("GRAFANA_URL", grafana.url)
        monkeypatch.setenv("GRAFANA_API_KEY", TOKEN)
        monkeypatch.setenv("FEDERATION_WEBHOOK_URL", f"{hook.url}/{HOOK_SECRET}")
        code, out, err = cli_run(config_dir, "freeze", "--reason", "demo", "--until", "1d",
                                 "--who", "ada", env={"GITHUB_ACTIONS": "true",
                                                      "GITHUB_STEP_SUMMARY": str(summary)})
    assert code == 0, err
    assert load_federation(config_dir).freeze is not None  # the freeze itself is done
    assert "warning: Grafana annotation ($GRAFANA_URL) not sent: HTTP 500" in err
    assert ("warning: slack webhook (URL in $FEDERATION_WEBHOOK_URL) not sent: no answer "
            "within 0.5s") in err
    text = summary.read_text()
    assert "**notifications not sent**" in text and "HTTP 500" in text
    no_secret(out, err, text)


@pytest.fixture
def wired(recorder: RecordingRunner, fake_tools: Path, private_tmp: Path,
          monkeypatch: pytest.MonkeyPatch) -> RecordingRunner:
    monkeypatch.setattr(Context, "runner", lambda self, **_: recorder)
    return recorder


def test_a_deploy_is_announced_success_or_failure(
        config_dir: Path, wired: RecordingRunner, receivers: tuple[StandIn, StandIn]) -> None:
    grafana, _ = receivers
    code, _, err = cli_run(config_dir, "deploy", "gke", "--stage", "releases", "--release",
                           "federation-redirect")
    assert code == 0, err
    ok = grafana.received[-1].body
    assert ok["tags"] == ["federation-deploy", "deploy", "gke"]
    assert ok["text"].startswith("federation-deploy deploy gke: rollout: 2 deployment(s)")
    assert ok["text"].endswith("deploy of gke done (stages: auth, releases, rollout)")
    wired.answer(["helm", "upgrade", "federation-redirect"], 1, "", "Error: timed out\n")
    code, _, err = cli_run(config_dir, "deploy", "gke", "--stage", "releases", "--release",
                           "federation-redirect")
    assert code == 1 and "timed out" in err
    failed = grafana.received[-1].body
    assert failed["tags"] == ["federation-deploy", "deploy", "gke", "failed"]
    assert failed["text"].startswith("federation-deploy deploy gke: FAILED: stage 'releases' "
                                     "failed: release 'federation-redirect'")
    no_secret(err)


def test_a_drain_through_a_freeze_is_announced(
        config_dir: Path, tmp_path: Path, receivers: tuple[StandIn, StandIn]) -> None:
    grafana, _ = receivers
    assert cli_run(config_dir, "freeze", "--reason", "demo", "--until", "1d")[0] == 0
    code, _, err = cli_run(config_dir, "traffic", "drain", "ovh2", "--reason", "disk full",
                           "--publish", f"file:{tmp_path / 'config.json'}", "--yes")
    assert code == 0, err
    assert "note: the federation is frozen until" in err
    assert [r.body["tags"] for r in grafana.received] == [
        ["federation-deploy", "freeze"], ["federation-deploy", "weights", "drain", "ovh2"]]


def test_each_ramp_step_is_announced(federation: StandinFederation, tmp_path: Path,
                                     receivers: tuple[StandIn, StandIn]) -> None:
    grafana, _ = receivers
    request = RampRequest(steps="1,5", hold="30m", gate="time", advance=True,
                          publish=PublishRequest(f"file:{tmp_path / 'config.json'}"))
    result = ramp(federation.load(), "gamma", request, runner=Runner(echo=False),
                  progress=lambda _m: None, confirm=lambda _q: None)
    assert result.error is None and result.warnings == ()
    [step] = grafana.received
    assert step.body["tags"] == ["federation-deploy", "weights", "ramp-step", "gamma"]
    assert step.body["text"].startswith("federation-deploy ramp-step gamma: ramp of gamma: 1%, "
                                        "weight ")


def test_a_rollback_is_announced_as_a_failure(federation: StandinFederation, tmp_path: Path,
                                              receivers: tuple[StandIn, StandIn]) -> None:
    grafana, _ = receivers
    request = RampRequest(steps="1,5", hold="30m", gate="time", advance=True,
                          publish=PublishRequest(f"file:{tmp_path / 'config.json'}"))
    federation.standins["gamma"].set_healthy(False)  # fails its first check at step 1
    result = ramp(federation.load(), "gamma", request, runner=Runner(echo=False),
                  progress=lambda _m: None, confirm=lambda _q: None)
    assert result.error is not None and "rolled back" in str(result.error)
    step, rollback = (r.body for r in grafana.received)
    assert step["tags"] == ["federation-deploy", "weights", "ramp-step", "gamma"]
    assert rollback["tags"] == ["federation-deploy", "weights", "rollback", "gamma", "failed"]
    assert rollback["text"].startswith("federation-deploy rollback gamma: FAILED: ramp of gamma "
                                       "rolled back to 0")
