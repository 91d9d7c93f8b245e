"""The git adapter against a real repository made by the test."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from federation_deploy.actions import git
from federation_deploy.runner import Runner

ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_GLOBAL": os.devnull,
       "GIT_CONFIG_NOSYSTEM": "1"}


def sh(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env={**os.environ, **ENV}, text=True,
                          capture_output=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "config").mkdir(parents=True)
    sh(root, "init", "-q", "-b", "main")
    (root / "config" / "a.yaml").write_text("a: 1\n")
    sh(root, "add", "-A")
    sh(root, "commit", "-q", "-m", "one")
    return root


def test_toplevel(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = Runner(echo=False)
    assert git.toplevel(runner, repo / "config") == repo.resolve()
    outside = tmp_path / "outside"
    outside.mkdir()
    # git must not find a repository above the test's directory (the developer's own)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert git.toplevel(runner, outside) is None


def test_changes_since_a_commit(repo: Path) -> None:
    runner = Runner(echo=False)
    first = git.resolve_commit(runner, repo, "HEAD")
    assert first == sh(repo, "rev-parse", "HEAD")
    (repo / "config" / "a.yaml").write_text("a: 2\n")
    (repo / "config" / "b c.yaml").write_text("b: 1\n")
    sh(repo, "add", "-A")
    sh(repo, "commit", "-q", "-m", "two")
    assert first is not None
    assert git.changed_files(runner, repo, first) == ["config/a.yaml", "config/b c.yaml"]
    assert git.file_at(runner, repo, first, "config/a.yaml") == "a: 1\n"
    assert git.file_at(runner, repo, "HEAD", "config/a.yaml") == "a: 2\n"
    assert git.file_at(runner, repo, first, "config/b c.yaml") is None


def test_unknown_and_option_like_revisions(repo: Path) -> None:
    runner = Runner(echo=False)
    assert git.resolve_commit(runner, repo, "no-such-branch") is None
    with pytest.raises(ValueError, match="not a git revision"):
        git.resolve_commit(runner, repo, "--output=/tmp/x")
