"""Under GitHub Actions: config errors as ::error annotations on file and line, and step
summaries appended (not written over) to $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from federation_deploy.cli.github import (
    annotation,
    annotation_lines,
    append_step_summary,
    in_github_actions,
)
from federation_deploy.errors import Problem

EXE = shutil.which("federation-deploy") or str(
    Path(__file__).resolve().parents[2] / ".venv" / "bin" / "federation-deploy")


def run(config_dir: Path, *args: str, github: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_ACTIONS"}
    if github:
        env["GITHUB_ACTIONS"] = "true"
    # relative paths in messages, as in a checkout: run from the copy's root
    return subprocess.run([EXE, "--config-dir", "config", *args], cwd=config_dir.parent,
                          env=env, capture_output=True, text=True, timeout=60, check=False)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.slow  # the CLI in a subprocess
def test_config_errors_become_annotations(config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text()
                    .replace("    weight: 15\n", "    weight: -1\n")
                    .replace("    cloud: external\n", "    cloud: extrnal\n"))
    result = run(config_dir, "validate", github=True)
    assert result.returncode == 2
    assert "invalid config: 2 problems" in result.stderr  # the log line stays
    weight = line_of(path, "weight: -1")
    cloud = line_of(path, "cloud: extrnal")
    assert result.stdout.splitlines() == [
        f"::error file=config/federation.yaml,line={weight},title=invalid config%3A "
        "members.ovh2.weight::expected a number from 0 to 1,000,000 (if not 0, at least 0.0001), "
        "got int -1",
        f"::error file=config/federation.yaml,line={cloud},title=invalid config%3A "
        "members.gesis.cloud::expected one of gcp, aws, kubeconfig, external, got str "
        "'extrnal'",
    ]


@pytest.mark.slow  # the CLI in a subprocess
def test_no_annotations_outside_github_actions(config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text().replace("    weight: 15\n", "    weight: -1\n"))
    result = run(config_dir, "validate", github=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "members.ovh2.weight" in result.stderr


@pytest.mark.slow  # the CLI in a subprocess
def test_other_errors_are_not_annotated(config_dir: Path) -> None:
    result = run(config_dir, "render", "nope", github=True)
    assert result.returncode == 2 and "unknown member 'nope'" in result.stderr
    assert "::error" not in result.stdout


def test_annotation_escapes_what_would_break_the_command() -> None:
    problem = Problem("dir,with:odd/federation.yaml", 7, "members.a",
                      "100% wrong\nsecond line\r")
    assert annotation(problem) == (
        "::error file=dir%2Cwith%3Aodd/federation.yaml,line=7,title=invalid config%3A "
        "members.a::100%25 wrong%0Asecond line%0D")
    # no line, no key: the file alone
    assert annotation_lines([Problem("values/x.yaml", None, "", "no member named 'x'")]) == [
        "::error file=values/x.yaml,title=invalid config::no member named 'x'"]


def test_step_summary_only_under_github_actions(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    assert in_github_actions(env) and not in_github_actions({"GITHUB_ACTIONS": "false"})
    assert append_step_summary("### one", env)
    assert append_step_summary("### two\n", env)
    assert summary.read_text() == "### one\n### two\n"
    assert not append_step_summary("### three", {"GITHUB_STEP_SUMMARY": str(summary)})
    assert not append_step_summary("### three", {"GITHUB_ACTIONS": "true"})
    assert summary.read_text() == "### one\n### two\n"


def test_step_summary_never_holds_url_credentials(tmp_path: Path) -> None:
    # issue 29 re-trial, item 3: a --redirector-url with a password in what drift reports
    summary = tmp_path / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    assert append_step_summary("| beta | not checked: http://u:S3CRET@127.0.0.1:9/metrics |", env)
    assert "S3CRET" not in summary.read_text() and "http://***@127.0.0.1:9" in summary.read_text()
