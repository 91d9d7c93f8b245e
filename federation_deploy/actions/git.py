"""The git adapter: the read-only questions ci-matrix and plan ask of a repository, through the
Runner (a revision's files are exported to a temporary directory, never checked out)."""

from __future__ import annotations

import tarfile
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


def merge_base(runner: Runner, root: Path, one: str, other: str) -> str | None:
    """The best common ancestor of two revisions; None when they share none (or one is
    unknown)."""
    proc = runner.run(["git", "merge-base", one, other], cwd=root, check=False)
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and commit else None


def export_tree(runner: Runner, root: Path, rev: str, dest: Path) -> None:
    """Write the files of revision rev into dest (an empty directory), as `git archive` gives
    them (a git-crypt filter applies when the repository is unlocked, else the ciphertext
    comes out): the work tree and the index are never touched."""
    archive = dest.parent / f".{dest.name}.tar"
    try:
        runner.run(["git", "archive", "--format=tar", f"--output={archive}", rev], cwd=root)
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter=_inside_only)
    finally:
        archive.unlink(missing_ok=True)


def _inside_only(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's `data` filter, leaving out (not failing on) what it refuses: a committed
    symbolic link pointing outside the tree (tests/fixtures' link to the repository root)."""
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


def tracked_files(runner: Runner, root: Path, rev: str) -> set[str]:
    """Every path (relative to the root) git tracks at revision rev."""
    proc = runner.run(["git", "ls-tree", "-r", "-z", "--name-only", rev], cwd=root)
    return {p for p in proc.stdout.split("\0") if p}


def blob_ids(runner: Runner, root: Path, rev: str, paths: list[str]) -> dict[str, str]:
    """The blob id of each path at rev (absent paths left out): comparing two revisions'
    ids says whether an encrypted file changed without reading it."""
    if not paths:
        return {}
    proc = runner.run(["git", "ls-tree", "-r", "-z", rev, "--", *paths], cwd=root)
    found: dict[str, str] = {}
    for entry in proc.stdout.split("\0"):
        if "\t" in entry:
            meta, path = entry.split("\t", 1)
            found[path] = meta.split()[2]
    return found


def ignored_files(runner: Runner, root: Path, directory: str) -> list[str]:
    """The git-ignored files under directory (relative to the root): never committed, so no
    merge changes them (a repository's plain-text secrets/ when it keeps them out of git)."""
    proc = runner.run(["git", "ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                       "--", directory or "."], cwd=root)
    return sorted(p for p in proc.stdout.split("\0") if p)
