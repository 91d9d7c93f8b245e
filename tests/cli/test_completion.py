"""Shell completion through the real installed CLI (Click's _FEDERATION_DEPLOY_COMPLETE
protocol), the completion scripts, and "did you mean" for commands and members."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the CLI in a subprocess, as a shell calls it

EXE = shutil.which("federation-deploy") or str(
    Path(__file__).resolve().parents[2] / ".venv" / "bin" / "federation-deploy")


def complete(words: str, shell: str = "bash", env: dict[str, str] | None = None,
             cwd: Path | None = None) -> list[str]:
    """What the shell would be offered for the line `words` (its last word being typed),
    asked as the scripts ask: bash and zsh pass the index of that word, fish the word."""
    split = words.split()
    if shell == "fish":
        cword = "" if words.endswith(" ") else split[-1]
    else:
        cword = str(len(split) if words.endswith(" ") else len(split) - 1)
    full_env = {k: v for k, v in os.environ.items() if k != "FEDERATION_DEPLOY_CONFIG_DIR"}
    full_env.update({"_FEDERATION_DEPLOY_COMPLETE": f"{shell}_complete",
                     "COMP_WORDS": words, "COMP_CWORD": str(cword), **(env or {})})
    result = subprocess.run([EXE], env=full_env, cwd=cwd, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # completion never prints progress or errors
    return result.stdout.splitlines()


def values(lines: list[str]) -> list[str]:
    """The values of bash_complete's `type,value` lines."""
    return [line.split(",", 1)[1] for line in lines]


def test_commands_complete() -> None:
    offered = values(complete("federation-deploy r"))
    assert set(offered) == {"render", "ramp", "redirector", "rollout"}
    assert "completion" in values(complete("federation-deploy co"))
    assert values(complete("federation-deploy terraform p")) == ["plan"]


def test_options_complete() -> None:
    offered = values(complete("federation-deploy ramp gke --he"))
    assert offered == ["--heartbeat", "--help"]
    assert "--timeout" in values(complete("federation-deploy deploy gke --t"))


def test_member_names_complete_from_the_config_dir_on_the_line(config_dir: Path) -> None:
    line = f"federation-deploy --config-dir {config_dir} render "
    assert values(complete(line)) == ["gke", "staging", "ovh2", "gesis", "curvenote"]
    assert values(complete(line + "g")) == ["gke", "gesis"]
    assert values(complete(f"federation-deploy --config-dir {config_dir} ramp cu")) == [
        "curvenote"]
    line = f"federation-deploy --config-dir {config_dir} terraform plan o"
    assert values(complete(line)) == ["ovh2"]


def test_member_names_from_the_environment_and_the_default(config_dir: Path) -> None:
    env = {"FEDERATION_DEPLOY_CONFIG_DIR": str(config_dir)}
    assert values(complete("federation-deploy verify ov", env=env)) == ["ovh2"]
    # no --config-dir and no env var: ./config, as the commands themselves
    assert values(complete("federation-deploy verify ov", cwd=config_dir.parent)) == [
        "ovh2"]


def test_a_member_added_to_the_config_completes(config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace(
        "members:\n", "members:\n  zeta:\n    url: https://zeta.example.org\n"
                      "    cloud: external\n    weight: 1\n", 1))
    assert values(complete(f"federation-deploy --config-dir {config_dir} verify z")) == [
        "zeta"]


def test_release_names_complete_for_the_member_on_the_line(config_dir: Path) -> None:
    base = f"federation-deploy --config-dir {config_dir}"
    assert values(complete(f"{base} render ovh2 --release ")) == ["ingress-nginx",
                                                                     "binderhub"]
    assert values(complete(f"{base} deploy gke -r f")) == ["federation-redirect"]
    assert values(complete(f"{base} diff gke --release cert")) == ["cert-manager"]


def test_completion_stays_quiet_on_a_missing_or_broken_config(tmp_path: Path) -> None:
    # bash's protocol answers "nothing" with one empty line
    assert complete(f"federation-deploy --config-dir {tmp_path / 'nope'} render ") == [""]
    (tmp_path / "federation.yaml").write_text("members: [unclosed\n")
    assert complete(f"federation-deploy --config-dir {tmp_path} render ") == [""]


def test_zsh_and_fish_protocols(config_dir: Path) -> None:
    zsh = complete(f"federation-deploy --config-dir {config_dir} render ov", shell="zsh")
    assert zsh[:2] == ["plain", "ovh2"]
    fish = complete(f"federation-deploy --config-dir {config_dir} render ov",
                    shell="fish")
    assert fish == ["plain,ovh2"]


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o nosort -F _federation_deploy_completion federation-deploy"),
    ("zsh", "#compdef federation-deploy"),
    ("fish", "complete --no-files --command federation-deploy"),
])
def test_completion_command_prints_the_script(shell: str, marker: str) -> None:
    result = subprocess.run([EXE, "completion", shell], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout
    assert "_FEDERATION_DEPLOY_COMPLETE" in result.stdout


def test_completion_of_an_unknown_shell_is_refused() -> None:
    result = subprocess.run([EXE, "completion", "tcsh"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "'bash', 'zsh', 'fish'" in result.stderr


def test_did_you_mean_a_command() -> None:
    result = subprocess.run([EXE, "rendr", "gke"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2
    assert "No such command 'rendr'. Did you mean 'render'?" in result.stderr
    result = subprocess.run([EXE, "terraform", "paln", "gke"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "Did you mean 'plan'?" in result.stderr
    result = subprocess.run([EXE, "xyzzy"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2 and "Did you mean" not in result.stderr


def test_did_you_mean_a_member(config_dir: Path) -> None:
    result = subprocess.run([EXE, "--config-dir", str(config_dir), "render", "curvnote"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "unknown member 'curvnote'" in result.stderr
    assert "did you mean 'curvenote'?" in result.stderr
    result = subprocess.run([EXE, "--config-dir", str(config_dir), "verify", "zzz"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "did you mean" not in result.stderr
