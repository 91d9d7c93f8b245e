#!/usr/bin/env python3
"""Lint the GitHub Actions workflows: zizmor (offline) for security, shellcheck for `run:` scripts.

zizmor reads the workflow files itself. shellcheck cannot: each `run:` block is pulled out of
its workflow, `${{ ... }}` expressions are replaced by a placeholder variable, and the script is
checked with the shell the step runs under (step `shell`, then the job's and the workflow's
`defaults.run.shell`, then bash). Findings are reported at the workflow's own file and line.

    python scripts/lint_workflows.py [--zizmor-only | --shellcheck-only] [PATH ...]

PATH is a workflow file or a directory of them (default: .github/workflows). Exit 0 when
clean, 1 on findings, 2 when a tool is missing or a workflow cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKFLOWS = REPO_ROOT / ".github" / "workflows"
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)
# A variable, not a literal: shellcheck then still sees an expansion where the expression stood
# (an unquoted one is as unsafe as an unquoted `${{ }}`).
PLACEHOLDER = "${GITHUB_EXPRESSION}"
# shells shellcheck understands; other step shells (pwsh, python, ...) are not shell scripts
SHELLCHECK_SHELLS = {"bash", "sh", "dash", "ksh"}
# The pedantic persona: the regular findings plus code smells (undocumented write permissions,
# computed indexes). Anything kept gets an inline `# zizmor: ignore[rule]` with its reason.
ZIZMOR_ARGS = ("--offline", "--persona", "pedantic", "--strict-collection", "--no-progress",
               "--color", "never")
ZIZMOR_FINDINGS = 10
ZIZMOR_TOKEN_VARIABLES = {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}


class LintSetupError(Exception):
    """A tool is missing or a workflow cannot be read; the message says which."""


@dataclass(frozen=True)
class RunScript:
    """One `run:` block: where it is, the shell it runs under, its text ready for shellcheck."""

    path: Path
    line: int  # 1-based line in the workflow of the script's first line
    column: int  # 1-based column of the script's text in the workflow
    where: str  # job and step, for the report
    shell: str
    text: str


def find_tool(name: str) -> str:
    """The tool next to this interpreter (the venv's test extras), else on PATH."""
    here = os.path.dirname(sys.executable)
    found = shutil.which(name, path=os.pathsep.join([here, os.environ.get("PATH", "")]))
    if found is None:
        raise LintSetupError(
            f"{name} not found: install the test extras (pip install -e '.[test]')")
    return found


def workflow_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yml"), *path.glob("*.yaml")]))
        elif path.is_file():
            files.append(path)
        else:
            raise LintSetupError(f"{path}: no such file or directory")
    return files


def _shell_of(*candidates: Any) -> str:
    for shell in candidates:
        if isinstance(shell, str) and shell.strip():
            # `bash -l {0}` and the like: the program is the first word
            return Path(shell.split()[0]).name
    return "bash"  # GitHub's default on Linux runners


def _default_shell(node: Any) -> Any:
    if not isinstance(node, dict):
        return None
    defaults = node.get("defaults")
    run = defaults.get("run") if isinstance(defaults, dict) else None
    return run.get("shell") if isinstance(run, dict) else None


def _script_position(step: Any, value: Any, lines: Sequence[str]) -> tuple[int, int]:
    """1-based line and column of the script's first character in the workflow file."""
    line, column = step.lc.value("run")  # 0-based; for a block scalar, the `|` or `>` itself
    if isinstance(value, LiteralScalarString | FoldedScalarString):
        # the block's text starts on the next line, at that line's indent
        first = lines[line + 1] if line + 1 < len(lines) else ""
        return line + 2, len(first) - len(first.lstrip()) + 1
    return line + 1, column + 1


def for_shellcheck(script: str) -> str:
    """The script with each expression replaced by the placeholder, keeping line numbers."""
    return EXPRESSION.sub(lambda m: PLACEHOLDER + "\n" * m.group(0).count("\n"), script)


def run_scripts(path: Path) -> Iterator[RunScript]:
    """Every `run:` block of one workflow, with its position and shell."""
    try:
        source = path.read_text(encoding="utf-8")
        workflow = YAML(typ="rt").load(source)
    except (OSError, YAMLError) as exc:
        raise LintSetupError(f"{path}: cannot read the workflow: {exc}") from exc
    if not isinstance(workflow, dict) or not isinstance(workflow.get("jobs"), dict):
        raise LintSetupError(f"{path}: not a workflow (no `jobs` mapping)")
    workflow_shell = _default_shell(workflow)
    for job_id, job in workflow["jobs"].items():
        if not isinstance(job, dict):
            continue
        job_shell = _default_shell(job)
        for index, step in enumerate(job.get("steps") or [], start=1):
            if not isinstance(step, dict) or "run" not in step:
                continue
            value = step["run"]
            line, column = _script_position(step, value, source.splitlines())
            name = step.get("name") or step.get("id") or f"step {index}"
            yield RunScript(path=path, line=line, column=column, where=f"{job_id} / {name}",
                            shell=_shell_of(step.get("shell"), job_shell, workflow_shell),
                            text=for_shellcheck(str(value)))


def shellcheck_findings(script: RunScript, shellcheck: str) -> list[str]:
    """shellcheck's findings on one shell script, each `file:line:col: level SCnnnn: message`."""
    proc = subprocess.run([shellcheck, "--format=json1", f"--shell={script.shell}", "-"],
                          input=script.text, capture_output=True, text=True, check=False)
    try:
        comments = json.loads(proc.stdout)["comments"]
    except (ValueError, KeyError) as exc:
        raise LintSetupError(f"shellcheck failed on {script.path}:{script.line}: "
                             f"{proc.stderr.strip() or proc.stdout.strip()}") from exc
    findings = []
    for comment in comments:
        line = script.line + comment["line"] - 1
        column = script.column + comment["column"] - 1
        findings.append(f"{script.path}:{line}:{column}: {comment['level']} SC{comment['code']}: "
                        f"{comment['message']} [{script.where}]")
    return findings


def run_shellcheck(files: Sequence[Path]) -> int:
    shellcheck = find_tool("shellcheck")
    findings: list[str] = []
    checked = 0
    for path in files:
        for script in run_scripts(path):
            if script.shell in SHELLCHECK_SHELLS:
                checked += 1
                findings.extend(shellcheck_findings(script, shellcheck))
    for finding in findings:
        print(finding)
    print(f"shellcheck: {len(findings)} finding(s) in {checked} run: script(s) "
          f"of {len(files)} workflow(s)")
    return 1 if findings else 0


def run_zizmor(files: Sequence[Path]) -> int:
    zizmor = find_tool("zizmor")
    # offline, zizmor needs no GitHub token: none is handed to it (an empty one is even an error)
    env = {k: v for k, v in os.environ.items() if k not in ZIZMOR_TOKEN_VARIABLES}
    proc = subprocess.run([zizmor, *ZIZMOR_ARGS, *map(str, files)], env=env, check=False)
    # zizmor exits 10 and up on findings (by severity), lower non-zero codes when it failed
    if proc.returncode == 0:
        return 0
    if proc.returncode >= ZIZMOR_FINDINGS:
        return 1
    raise LintSetupError(f"zizmor failed (exit {proc.returncode}): see its output above")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--zizmor-only", action="store_true")
    only.add_argument("--shellcheck-only", action="store_true")
    parser.add_argument("paths", nargs="*", type=Path, default=[DEFAULT_WORKFLOWS])
    args = parser.parse_args(argv)
    try:
        files = workflow_files(args.paths)
        if not files:
            raise LintSetupError("no workflow files to lint")
        status = 0
        if not args.shellcheck_only:
            status |= run_zizmor(files)
        if not args.zizmor_only:
            status |= run_shellcheck(files)
    except LintSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
