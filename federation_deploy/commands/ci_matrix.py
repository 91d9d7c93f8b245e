"""The ci-matrix command: the JSON member matrix GitHub Actions jobs fan out over."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..cimatrix import Matrix, build_matrix, changed_since, describe_reasons, ramping_matrix
from ..config import Federation
from ..errors import UsageError
from ..runner import Runner


@dataclass(frozen=True)
class CiMatrixResult:
    matrix: Matrix
    notes: list[str] = field(default_factory=list)  # why these members, for stderr


def ci_matrix(
    fed: Federation,
    *,
    runner: Runner,
    changed_since_ref: str | None = None,
    ramping: bool = False,
    terraform_only: bool = False,
) -> CiMatrixResult:
    """Every deployable member (staging first); only the changed ones with a ref; only those
    with a terraform stack (and terraform changes) when asked; or the members with a ramp in
    progress."""
    if ramping and (changed_since_ref is not None or terraform_only):
        raise UsageError("--ramping cannot be combined with --changed-since or --terraform")
    if ramping:
        matrix = ramping_matrix(fed)
        names = ", ".join(e["member"] for e in matrix["include"]) or "none"
        return CiMatrixResult(matrix, [f"members with a ramp in progress: {names}"])
    if changed_since_ref is None:
        return CiMatrixResult(build_matrix(fed, terraform_only=terraform_only))
    changed = changed_since(fed, changed_since_ref, runner, terraform_only)
    notes = [f"{len(changed.files)} files changed since {changed_since_ref} "
             f"({changed.commit[:12]})"]
    return CiMatrixResult(changed.matrix, notes + describe_reasons(changed.reasons))
