"""The README's examples run as written: every command of its ```console blocks that needs no
cloud account and no network runs in a copy of the repository and exits 0 (issue 14)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, copy_federation

# Commands that cannot run here, by the start of their line, each with the reason. A new
# example that needs a cloud must be listed here, or this test runs it (and fails).
SKIPPED = {
    "make demo": "the whole sandbox (tests/sandbox/test_federation.py runs `sandbox demo` itself)",
    "make test": "the whole suite, this test included",
    "federation-deploy deploy curvenote --dry-run":
        "its charts come from remote chart repositories (not reachable offline)",
    "federation-deploy terraform plan curvenote":
        "needs AWS (tests/commands/terraform runs the stack against moto_server)",
    "federation-deploy traffic --redirector-url https://mybinder.org":
        "needs mybinder.org (tests/commands/test_traffic.py reads a local redirector)",
    # adopting mybinder.org-deploy (issue 12): they run inside a clone of that repository
    "cd mybinder.org-deploy": "needs a clone of jupyterhub/mybinder.org-deploy (network)",
    "federation-deploy adopt .": "runs inside the mybinder.org-deploy clone",
    "federation-deploy --config-dir . ": "runs inside the mybinder.org-deploy clone",
    "git-crypt unlock": "needs mybinder.org-deploy's git-crypt key",
    # transcripts of two processes racing: the other process is not in the example
    "federation-deploy ramp curvenote --abort": "publishes to the redirector's helm release "
                                                "on a cluster, racing another ramp",
    "federation-deploy ramp ovh2 ...": "an elided command line, racing another ramp",
    "federation-deploy ramp curvenote ...": "an elided command line, racing another ramp",
    "federation-deploy ramp curvenote --advance": "publishes to the redirector's helm release "
                                                  "from a stale checkout (tests/traffic/ramp/"
                                                  "test_resume_and_refusals.py runs it with file:)",
    "federation-deploy deploy gke --yes": "deploys to a cluster",
    # incidents: they publish to the redirector's helm release on a cluster (tests/commands/
    # test_drain.py runs them against a local redirector with --publish file:)
    "federation-deploy traffic drain ": "publishes to the redirector's release on a cluster",
    "federation-deploy traffic restore ": "publishes to the redirector's release on a cluster",
    "federation-deploy traffic set ": "publishes to the redirector's release on a cluster",
}
SKIPPED.update({
    # the README's shell set-up and the sandbox how-to (tests/sandbox/test_no_production.py
    # runs every traffic command and deploy against what `sandbox up` starts)
    "source .venv/bin/activate": "changes the reader's shell, not a command to check",
    "export ": "changes the reader's shell, not a command to check",
    "federation-deploy sandbox up": "leaves a sandbox running (tests/sandbox/ run it)",
    "federation-deploy sandbox down": "stops the sandbox of `sandbox up`",
    "federation-deploy ramp curvenote --to-weight 40": "ramps the sandbox of `sandbox up`",
    "federation-deploy deploy gke --yes": "deploys to a cluster (the sandbox's: no cluster)",
})
# Examples that run only with helm on PATH (bin/helm from scripts/fetch_helm.py).
NEEDS_HELM = ("federation-deploy deploy ",)


def console_commands(text: str) -> list[str]:
    """The command lines of every ```console block (indented blocks in lists too). A block
    with `$ ` prompts is a transcript: its prompted lines are the commands, the rest output."""
    commands: list[str] = []
    for block in re.findall(r"(?ms)^[ \t]*```console\n(.*?)^[ \t]*```", text):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if any(line.startswith("$ ") for line in lines):
            commands += [line[2:].strip() for line in lines if line.startswith("$ ")]
        else:
            commands += [line for line in lines if not line.startswith("#")]
    return commands


COMMANDS = console_commands((REPO / "README.md").read_text(encoding="utf-8"))


def skip_reason(command: str) -> str | None:
    for prefix, reason in SKIPPED.items():
        if command.startswith(prefix):
            return reason
    return None


def test_the_readme_has_examples_and_most_of_them_run() -> None:
    assert len(COMMANDS) >= 8
    run = [c for c in COMMANDS if skip_reason(c) is None]
    # the skip list must not swallow the examples a reader tries first (validate, members,
    # render, redirector config, ramp --dry-run, ci-matrix, ...)
    assert len(run) >= 8, run


def test_transcripts_yield_their_prompted_commands_only() -> None:
    text = "```console\n$ federation-deploy x --y\nerror: out\n```\n"
    assert console_commands(text) == ["federation-deploy x --y"]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of config/ and terraform/, the working directory the README assumes."""
    root = tmp_path_factory.mktemp("readme")
    copy_federation(root)
    return root


@pytest.mark.slow  # each example in bash, the CLI in a subprocess
@pytest.mark.parametrize("command", [
    pytest.param(c, marks=pytest.mark.skip(reason=r)) if (r := skip_reason(c)) else c
    for c in COMMANDS
])
def test_readme_example_runs_as_written(command: str, checkout: Path) -> None:
    scripts = Path(sys.executable).parent  # federation-deploy of this environment
    path = os.pathsep.join([str(REPO / "bin"), str(scripts), os.environ.get("PATH", "")])
    if command.startswith(NEEDS_HELM) and not any(
            (Path(d) / "helm").exists() for d in path.split(os.pathsep) if d):
        pytest.skip("helm is not on PATH (scripts/fetch_helm.py puts it in bin/)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDERATION_DEPLOY_")}
    proc = subprocess.run(["bash", "-c", f"set -eo pipefail\n{command}"], cwd=checkout,
                          env={**env, "PATH": path}, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
