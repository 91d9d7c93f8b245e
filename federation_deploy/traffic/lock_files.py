"""The weights' lock files (`.federation.yaml.lock`, `.weights-writer.lock` ...) ignored by
git wherever they are created: in a git repository, each name is added once to the
repository's own `info/exclude` (local, never committed), so a ramp, a traffic change or
`member new` in a repository whose .gitignore lacks them leaves no untracked file. The
lock files stay in place (removing a lock file someone may be waiting on would let two
writers in)."""

from __future__ import annotations

from pathlib import Path


def git_dir(start: Path) -> Path | None:
    """The common git directory of the repository holding start (a worktree's `.git` file
    points to its own directory, whose `commondir` names the shared one), or None."""
    for directory in (start, *start.parents):
        dot_git = directory / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
            if not text.startswith("gitdir:"):
                return None
            own = (directory / text.removeprefix("gitdir:").strip()).resolve()
            common = own / "commondir"
            if common.is_file():
                return (own / common.read_text(encoding="utf-8").strip()).resolve()
            return own
    return None


def ignore_in_git(lock_file: Path) -> None:
    """Add lock_file's name to its repository's info/exclude unless it is there already.
    Best effort: a lock file must never fail because of this (no repository, read-only)."""
    try:
        found = git_dir(lock_file.resolve().parent)
        if found is None:
            return
        exclude = found / "info" / "exclude"
        pattern = lock_file.name
        lines = exclude.read_text(encoding="utf-8").splitlines() if exclude.is_file() else []
        if pattern in (line.strip() for line in lines):
            return
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a", encoding="utf-8") as fh:
            if lines and not exclude.read_text(encoding="utf-8").endswith("\n"):
                fh.write("\n")
            fh.write(f"# federation-deploy's lock file (traffic/lock_files.py)\n{pattern}\n")
    except OSError:
        return
