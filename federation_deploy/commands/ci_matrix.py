"""The ci-matrix command: the JSON member matrix GitHub Actions jobs fan out over."""

from __future__ import annotations

import json

from federation_deploy.actions import git
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation
from federation_deploy.config.ci_matrix import (
    ChangedMatrix,
    Matrix,
    build_matrix,
    changed_matrix,
    describe_reasons,
    federation_data,
    ramping_matrix,
    redirector_matrix,
    repo_layout,
)
from federation_deploy.errors import UsageError
from federation_deploy.runner import Runner


def ci_matrix(
    fed: Federation,
    *,
    runner: Runner,
    changed_since_ref: str | None = None,
    ramping: bool = False,
    terraform_only: bool = False,
    redirector: bool = False,
) -> CommandResult:
    """Every deployable member (staging first); only the changed ones with a ref; only those
    with a terraform stack (and terraform changes) when asked; or the members with a ramp in
    progress. Stdout: the matrix on one line; messages: why these members."""
    if ramping and (changed_since_ref is not None or terraform_only):
        raise UsageError("--ramping cannot be combined with --changed-since or --terraform")
    if redirector and (ramping or changed_since_ref is not None or terraform_only):
        raise UsageError("--redirector cannot be combined with --ramping, --changed-since or "
                         "--terraform")
    if redirector:
        return _result(redirector_matrix(fed),
                       [f"the redirector runs on {fed.redirector.member}"])
    if ramping:
        matrix = ramping_matrix(fed)
        names = ", ".join(e["member"] for e in matrix["include"]) or "none"
        paused = [m.name for m in fed.members.values()
                  if m.ramp is not None and m.drained is not None]
        notes = [f"members with a ramp in progress: {names}"]
        if paused:
            notes.append(f"ramps paused by a drain (left out): {', '.join(paused)}")
        return _result(matrix, notes)
    if changed_since_ref is None:
        return _result(build_matrix(fed, terraform_only=terraform_only))
    changed = changed_since(fed, changed_since_ref, runner, terraform_only)
    notes = [f"{len(changed.files)} files changed since {changed_since_ref} "
             f"({changed.commit[:12]})"]
    return _result(changed.matrix, notes + describe_reasons(changed.reasons))


def changed_since(
    fed: Federation, ref: str, runner: Runner, terraform_only: bool = False
) -> ChangedMatrix:
    """Ask git what changed between ref and HEAD in the repository holding the config; the
    pure cimatrix module maps that to members."""
    root = git.toplevel(runner, fed.config_dir)
    if root is None:
        raise UsageError(
            f"--changed-since needs a git repository, and {fed.config_dir} is not in one"
        )
    layout = repo_layout(fed, root)
    if not ref or ref.startswith("-"):
        raise UsageError(f"--changed-since: {ref!r} is not a git revision")
    commit = git.resolve_commit(runner, root, ref)
    if commit is None:
        raise UsageError(
            f"--changed-since: unknown git revision {ref!r} (is it fetched? in GitHub Actions "
            "check out with fetch-depth: 0)"
        )
    files = git.changed_files(runner, root, commit)
    before = after = None
    if layout.federation_file in files:
        name = layout.federation_file
        before = federation_data(git.file_at(runner, root, commit, name), f"{name}@{commit}")
        after = federation_data(git.file_at(runner, root, "HEAD", name), f"{name}@HEAD")
    return changed_matrix(fed, layout, commit, files, before, after, terraform_only)


def _result(matrix: Matrix, notes: list[str] | None = None) -> CommandResult:
    # one line: GitHub Actions reads it into $GITHUB_OUTPUT
    return CommandResult(stdout=json.dumps(matrix, separators=(",", ":")) + "\n",
                         messages=tuple(notes or ()))
