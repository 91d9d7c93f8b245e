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
    fed: Federation, *, changed_since_ref: str | None, ramping: bool, runner: Runner
) -> CiMatrixResult:
    """Every deployable member (staging first); only the changed ones with a ref; or the
    members with a ramp in progress."""
    if ramping and changed_since_ref is not None:
        raise UsageError("--ramping and --changed-since cannot be combined")
    if ramping:
        matrix = ramping_matrix(fed)
        names = ", ".join(e["member"] for e in matrix["include"]) or "none"
        return CiMatrixResult(matrix, [f"members with a ramp in progress: {names}"])
    if changed_since_ref is None:
        return CiMatrixResult(build_matrix(fed))
    changed = changed_since(fed, changed_since_ref, runner)
    notes = [f"{len(changed.files)} files changed since {changed_since_ref} "
             f"({changed.commit[:12]})"]
    return CiMatrixResult(changed.matrix, notes + describe_reasons(changed.reasons))
