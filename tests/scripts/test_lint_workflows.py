"""scripts/lint_workflows.py: zizmor and shellcheck over the workflows, with the real tools."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "lint_workflows.py"
SHA = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w./-]+@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)$")


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lint_workflows", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


lint = load_script()


def run_lint(*args: str) -> subprocess.CompletedProcess[str]:
    # a dead proxy: zizmor must not need the network (it runs with --offline)
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead,
           "https_proxy": dead, "NO_PROXY": "", "no_proxy": "", "GH_TOKEN": "",
           "GITHUB_TOKEN": ""}  # set but empty: the script must not hand them to zizmor
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=300)


WORKFLOW = """\
name: probe
on: push
concurrency:
  group: probe
permissions:
  contents: read
defaults:
  run:
    shell: bash
jobs:
  build:
    name: build
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    steps:
      - uses: actions/checkout@v4
      - name: one line
        run: echo one
      - name: a block
        run: |
          unused=1
          echo ${{ github.ref }}
  other:
    name: other
    runs-on: ubuntu-24.04
    timeout-minutes: 5
    defaults:
      run:
        shell: sh
    steps:
      - run: |
          echo "$HOME"
      - shell: pwsh
        run: Write-Output $env:HOME
"""


def position(text: str) -> tuple[int, int]:
    """1-based line and column of text's first occurrence in WORKFLOW."""
    for number, line in enumerate(WORKFLOW.splitlines(), start=1):
        if text in line:
            return number, line.index(text) + 1
    raise AssertionError(text)


def test_run_scripts_are_found_with_their_line_column_and_shell(tmp_path: Path) -> None:
    path = tmp_path / "wf.yml"
    path.write_text(WORKFLOW)
    scripts = list(lint.run_scripts(path))
    assert [((s.line, s.column), s.shell) for s in scripts] == [
        (position("echo one"), "bash"), (position("unused=1"), "bash"),
        (position('echo "$HOME"'), "sh"), (position("Write-Output"), "pwsh")]
    assert scripts[1].text == "unused=1\necho ${GITHUB_EXPRESSION}\n"
    assert [s.where for s in scripts] == [
        "build / one line", "build / a block", "other / step 1", "other / step 2"]


def test_a_multi_line_expression_keeps_the_line_numbers() -> None:
    script = 'echo "${{ format(\n  \'{0}\', github.ref) }}"\nexit 1\n'
    replaced = lint.for_shellcheck(script)
    assert replaced == 'echo "${GITHUB_EXPRESSION}\n"\nexit 1\n'
    assert replaced.count("\n") == script.count("\n")


def test_findings_are_reported_at_the_workflow_line(tmp_path: Path) -> None:
    path = tmp_path / "wf.yml"
    path.write_text(WORKFLOW)
    proc = run_lint(str(path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    # zizmor: the tag-pinned checkout, which also keeps its credentials
    assert "unpinned-uses" in out and "artipacked" in out
    # shellcheck: the unused variable and the unquoted expression, where they are in the file
    line, column = position("unused=1")
    assert f"{path}:{line}:{column}: warning SC2034: unused appears unused" in out
    line, column = position("${{ github.ref }}")
    assert f"{path}:{line}:{column}: info SC2086:" in out
    assert "[build / a block]" in out
    assert "shellcheck: 2 finding(s) in 3 run: script(s) of 1 workflow(s)" in out


def test_a_clean_workflow_passes(tmp_path: Path) -> None:
    clean = WORKFLOW.replace(
        "      - uses: actions/checkout@v4\n",
        "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n"
        "        with:\n          persist-credentials: false\n",
    ).replace("unused=1\n          echo ${{ github.ref }}", 'echo "$GITHUB_REF"')
    path = tmp_path / "wf.yml"
    path.write_text(clean)
    proc = run_lint(str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "shellcheck: 0 finding(s) in 3 run: script(s) of 1 workflow(s)" in proc.stdout


@pytest.mark.slow  # zizmor and shellcheck on every workflow
def test_the_repository_workflows_are_clean() -> None:
    proc = run_lint()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = len(list((REPO / ".github" / "workflows").glob("*.yml")))
    assert re.search(rf"shellcheck: 0 finding\(s\) in \d+ run: script\(s\) of {count} "
                     r"workflow\(s\)", proc.stdout)


def test_every_action_is_pinned_by_sha_with_its_version() -> None:
    """zizmor accepts a bare SHA; the comment is what tells a reader (and dependabot) the
    release, and one action is pinned to one release everywhere."""
    pins: dict[str, set[tuple[str, str]]] = {}
    for path in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.match(r"^\s*(?:- )?uses:", line):
                match = SHA.match(line)
                assert match, f"{path.name}:{number}: {line.strip()}"
                action = line.split("uses:", 1)[1].strip().split("@")[0]
                pins.setdefault(action, set()).add((match.group(1), match.group(2)))
    assert pins
    assert {a: p for a, p in pins.items() if len(p) > 1} == {}


def test_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_lint(str(tmp_path / "nope.yml"))
    assert proc.returncode == 2
    assert f"error: {tmp_path / 'nope.yml'}: no such file or directory" in proc.stderr


def test_a_broken_workflow_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "wf.yml"
    path.write_text("on: push\njobs: [\n")
    proc = run_lint("--shellcheck-only", str(path))
    assert proc.returncode == 2
    assert f"error: {path}: cannot read the workflow" in proc.stderr
