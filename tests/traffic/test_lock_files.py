"""The weights' lock files are ignored by git where they are created (info/exclude), in a
repository whose .gitignore lacks them, in a linked worktree too, and nothing happens outside
a repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from federation_deploy.traffic.lock_files import git_dir
from federation_deploy.traffic.weights import locked, writer_lock

GIT_ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True,
                          check=True).stdout


def untracked(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")


def test_lock_files_are_excluded_in_the_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    git(repo, "init", "-q")
    with locked(repo / "config" / ".federation.yaml.lock"), \
            writer_lock(repo / "config", "a test"):
        pass
    with locked(repo / "config" / ".federation.yaml.lock"):  # once only in info/exclude
        pass
    assert untracked(repo) == ""
    exclude = (repo / ".git" / "info" / "exclude").read_text().splitlines()
    assert exclude.count(".federation.yaml.lock") == 1
    assert exclude.count(".weights-writer.lock") == 1


def test_a_linked_worktree_uses_the_common_exclude(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README").write_text("x\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "x")
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    assert git_dir(tmp_path / "wt") == (repo / ".git").resolve()
    with locked(tmp_path / "wt" / ".federation.yaml.lock"):
        pass
    assert untracked(tmp_path / "wt") == ""


def test_outside_a_repository_nothing_else_is_written(tmp_path: Path) -> None:
    with locked(tmp_path / ".federation.yaml.lock"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".federation.yaml.lock"]
