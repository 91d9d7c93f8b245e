"""The git adapter: the read-only questions ci-matrix asks of a repository, through the Runner."""

from __future__ import annotations

from pathlib import Path

from federation_deploy.errors import ToolError
from federation_deploy.runner import Runner


def toplevel(runner: Runner, directory: Path) -> Path | None:
    """The root of the git work tree holding directory; None when it is not in one."""
    proc = runner.run(["git", "rev-parse", "--show-toplevel"], cwd=directory, check=False)
    if proc.returncode != 0:
        return None
    return Path(proc.stdout.strip())


def resolve_commit(runner: Runner, root: Path, ref: str) -> str | None:
    """The commit a revision names; None when git does not know it."""
    if not ref or ref.startswith("-"):
        # never hand git something it would read as an option
        raise ValueError(f"not a git revision: {ref!r}")
    proc = runner.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                      cwd=root, check=False)
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and commit else None


def changed_files(runner: Runner, root: Path, commit: str) -> list[str]:
    """Paths (relative to the repository root) that differ between commit and HEAD."""
    proc = runner.run(["git", "diff", "--name-only", "--no-renames", "-z", commit, "HEAD"],
                      cwd=root)
    return sorted(p for p in proc.stdout.split("\0") if p)


def file_at(runner: Runner, root: Path, rev: str, path: str) -> str | None:
    """The text of path (relative to the root) at a revision; None when it is absent there."""
    proc = runner.run(["git", "show", f"{rev}:{path}"], cwd=root, check=False)
    return proc.stdout if proc.returncode == 0 else None


def user_name(runner: Runner, directory: Path) -> str | None:
    """`git config user.name` as seen from directory; None when unset (or no git)."""
    try:
        proc = runner.run(["git", "config", "user.name"], cwd=directory, check=False)
    except (OSError, ToolError):  # no git here
        return None
    name = proc.stdout.strip() if proc.returncode == 0 else ""
    return name or None
