"""No secret value reaches stdout or stderr of any command that handles values, in any shape
helm or a validator gives it (issue 14). Every secret below carries the marker MRK (except a
3-character one, checked as a whole token)."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.actions import helm
from federation_deploy.cli.main import cli
from federation_deploy.commands.terraform import format_outputs
from federation_deploy.config import load_federation
from federation_deploy.runner import Runner
from federation_deploy.values.manifests import manifest_diff, parse_manifests
from federation_deploy.values.render import render_member

MULTI = "-----BEGIN MRK KEY-----\nMRKline1abcdefgh\nMRKline2ijklmnop\n-----END MRK KEY-----\n"
FOLDED = " ".join(f"MRKword{i}" for i in range(16))  # go-yaml folds it across lines
QUOTED = 'MRK "quoted" it\'s'
SHORT = "Zq9"
REPLICAS = "MRK-replicas-value"  # a type error: the validator's message would quote it
SECRETS = [MULTI, FOLDED, QUOTED, SHORT, REPLICAS]

SECRET_VALUES = f"""\
federation-redirect:
  podAnnotations:
    multi: |
{"".join("      " + line + chr(10) for line in MULTI.splitlines())}\
    folded: "{FOLDED}"
    quote: '{QUOTED.replace("'", "''")}'
  podLabels:
    short: {SHORT}
  replicas: {REPLICAS}
binderhub:
  config:
    GitHubRepoProvider:
      access_token: MRK-ghp-token
"""


def assert_no_secret(text: str) -> None:
    assert "MRK" not in text, text
    assert not re.search(rf"(?<![A-Za-z0-9_]){SHORT}(?![A-Za-z0-9_])", text), text
    for secret in SECRETS:
        encoded = base64.b64encode(secret.encode()).decode()
        assert encoded not in text and encoded.rstrip("=") not in text


@pytest.fixture
def secret_config(config_dir: Path) -> Path:
    (config_dir / "secrets" / "values" / "gke.yaml").write_text(SECRET_VALUES)
    return config_dir


def run(config: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config), *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def test_the_secrets_are_really_in_the_values(secret_config: Path) -> None:
    # guards the test itself: --show-secrets prints them, so absence elsewhere means something
    code, out, _ = run(secret_config, "render", "gke", "--show-secrets")
    assert code == 0 and "MRKline1abcdefgh" in out and SHORT in out and "MRKword15" in out


@pytest.mark.parametrize("args", [
    ("validate",),
    ("members",),
    ("members", "-o", "json"),
    ("render", "gke"),
    ("render", "gke", "--release", "federation-redirect"),
    ("render", "gke", "--explain", "federation-redirect.podAnnotations"),
    ("render", "gke", "--explain", "federation-redirect.replicas"),
    ("render", "gke", "--explain", "binderhub.config.GitHubRepoProvider.access_token"),
    ("redirector", "config"),
    ("traffic",),
    ("ramp", "curvenote", "--dry-run"),
    ("ci-matrix",),
])
def test_commands_without_tools(secret_config: Path, args: tuple[str, ...]) -> None:
    code, out, err = run(secret_config, *args)
    assert code == 0, err
    assert_no_secret(out + err)


def test_render_output_dir(secret_config: Path, tmp_path: Path) -> None:
    code, out, err = run(secret_config, "render", "gke", "--output-dir", str(tmp_path / "o"))
    assert code == 0
    assert_no_secret(out + err)
    for path in (tmp_path / "o").iterdir():
        assert_no_secret(path.read_text())  # redacted unless --show-secrets


@pytest.mark.helm
def test_deploy_dry_run_with_real_helm(secret_config: Path, helm_binary: str) -> None:
    code, out, err = run(secret_config, "deploy", "gke", "--dry-run", "--release",
                         "federation-redirect", env={"FEDERATION_DEPLOY_HELM": helm_binary})
    # replicas is not an integer: the validator complains without quoting it
    assert code == 1
    assert "spec.replicas: a secret value is not of type 'integer'" in err
    assert "<redacted>" in out and "kind: Deployment" in out
    assert_no_secret(out + err)


@pytest.mark.helm
def test_manifest_diff_of_real_helm_output(secret_config: Path, helm_binary: str) -> None:
    fed = load_federation(secret_config)
    (rendered,) = render_member(fed, "gke", ["federation-redirect"])
    secrets = helm.secret_strings([rendered])
    adapter = helm.Helm(Runner(echo=False), executable=helm_binary, secrets=secrets)
    new = adapter.template(rendered, kube_version="1.27")
    assert "MRKline1abcdefgh" in new  # helm's own output carries them, re-indented
    old = new.replace("MRKline2ijklmnop", "MRKline2CHANGED1").replace(FOLDED, "x")
    text = manifest_diff(old, new, "federation-redirect", secrets | {"MRKline2CHANGED1"})
    assert "annotations" in text and "<redacted> (changed)" in text  # a change is said
    assert "sha256" not in text
    assert_no_secret(text)
    assert len(parse_manifests(new)) == 5


def test_terraform_output_redacts_sensitive_outputs() -> None:
    outputs = {"token": {"value": "MRK-out", "sensitive": True, "type": "string"},
               "url": {"value": "https://x", "sensitive": False, "type": "string"}}
    for fmt in ("text", "json"):
        text = format_outputs(outputs, fmt)
        assert "https://x" in text
        assert_no_secret(text)


@pytest.mark.slow  # a real tool that fails
def test_a_tool_error_censors_every_form(tmp_path: Path) -> None:
    script = tmp_path / "leaky"
    script.write_text("#!/bin/sh\nprintf '%s\\n' \"$1\" >&2\nprintf 'pass: Zq9\\n' >&2\n"
                      "exit 3\n")
    script.chmod(0o755)
    runner = Runner(echo=False)
    runner.add_secrets(SECRETS)
    from federation_deploy.errors import ToolError

    with pytest.raises(ToolError) as caught:
        runner.run([str(script), MULTI.replace("\n", "\n    ")])
    assert_no_secret(caught.value.render())


def test_a_secret_used_as_a_mapping_key_is_not_printed(secret_config: Path) -> None:
    """Issue 29 (minor): a plain layer keyed by a secret (a users map keyed by a token)."""
    values = secret_config / "values" / "common.yaml"
    text = values.read_text()
    assert "\nfederation-redirect:\n" in text
    values.write_text(text.replace("\nfederation-redirect:\n", "\nfederation-redirect:\n"
                                   "  users:\n    MRK-replicas-value: admin\n    alice: user\n"))
    code, out, err = run(secret_config, "render", "gke", "--release", "federation-redirect")
    assert code == 0, err
    assert "<redacted> key 1: admin" in out and "alice: user" in out
    assert_no_secret(out + err)
    code, out, _ = run(secret_config, "render", "gke", "--release", "federation-redirect",
                       "--show-secrets")
    assert "MRK-replicas-value: admin" in out
