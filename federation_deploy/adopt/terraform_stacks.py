"""The terraform stacks of a deploy repository, for adopt: which member each serves, and pins."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation_deploy.adopt.sources import Unmapped
from federation_deploy.config.terraform_files import (
    REQUIRED_VERSION,
    satisfies,
    stack_dirs,
    tf_files,
)

# the terraform adopt pins when the stacks' ranges allow it (config/federation.yaml's)
DEFAULT_TERRAFORM_VERSION = "1.11.4"
LOCK_FILE = ".terraform.lock.hcl"
_PROVIDERS = re.compile(r"^\s*required_providers\s*\{", re.MULTILINE)


@dataclass(frozen=True)
class Stack:
    path: str  # relative to terraform/, e.g. aws/curvenote
    locked: bool  # it has a committed .terraform.lock.hcl
    why_not: str = ""  # why a member cannot use it (validate would refuse it)

    @property
    def linkable(self) -> bool:
        return not self.why_not


def _why_not(directory: Path) -> str:
    """What validate's pin check would miss in a stack and the local modules it calls."""
    texts = "\n".join(tf.read_text("utf-8") for d in stack_dirs(directory) for tf in tf_files(d))
    missing = [what for what, pattern in (("required_version", REQUIRED_VERSION),
                                          ("required_providers", _PROVIDERS))
               if not pattern.search(texts)]
    return f"no {' and no '.join(missing)}" if missing else ""


def stacks(terraform: Path) -> list[Stack]:
    """Directories under terraform/ with a backend (a root stack, not a module)."""
    found: list[Stack] = []
    for tf in sorted(terraform.rglob("*.tf")):
        directory = tf.parent
        if ".terraform" in directory.parts or "modules" in directory.relative_to(terraform).parts:
            continue
        if re.search(r'^\s*backend\s+"', tf.read_text("utf-8"), re.MULTILINE):
            path = directory.relative_to(terraform).as_posix()
            if all(s.path != path for s in found):
                found.append(Stack(path, (directory / LOCK_FILE).is_file(),
                                   _why_not(directory)))
    return found


def stack_for(member: str, cloud: str | None, found: Sequence[Stack]) -> Stack | None:
    """The stack of a member: named after it (terraform/prod, terraform/gcp/prod,
    terraform/aws/curvenote), the cloud's folder first."""
    by_name = [s for s in found if s.path.rsplit("/", 1)[-1] == member]
    folder = {"gcp": "gcp", "aws": "aws"}.get(cloud or "")
    by_name.sort(key=lambda s: (not s.path.startswith(f"{folder}/"), s.path.count("/")))
    return by_name[0] if by_name else None


def stack_backend_region(directory: Path) -> str | None:
    """The region of a stack's `backend "s3"` block, when it is a literal string."""
    for tf in sorted(directory.glob("*.tf")):
        text = tf.read_text("utf-8")
        match = re.search(r'backend\s+"s3"\s*\{(.*?)\n\s*\}', text, re.DOTALL)
        if match:
            region = re.search(r'^\s*region\s*=\s*"([^"$]+)"', match[1], re.MULTILINE)
            return region[1] if region else None
    return None


def version_constraints(terraform: Path) -> list[tuple[str, str]]:
    """(file relative to terraform/, constraint) of every required_version."""
    found = []
    for tf in sorted(terraform.rglob("*.tf")):
        if ".terraform" in tf.parts:
            continue
        for match in REQUIRED_VERSION.finditer(tf.read_text("utf-8")):
            found.append((tf.relative_to(terraform).as_posix(), match[1].strip()))
    return found


def pick_version(constraints: Sequence[str]) -> str | None:
    """One exact version every constraint allows: the one they all pin exactly, else ours."""
    exact = {c.lstrip("= ") for c in constraints if re.fullmatch(r"=?\s*\d+\.\d+\.\d+", c)}
    candidates = [*sorted(exact), DEFAULT_TERRAFORM_VERSION]
    return next((v for v in candidates if all(satisfies(v, c) for c in constraints)), None)


def terraform_section(terraform: Path, found: Sequence[Stack], unmapped: list[Unmapped],
                      notes: list[str]) -> dict[str, Any]:
    """terraform: one exact version inside every stack's required_version range (validate
    checks it lies inside); what cannot be pinned or linked goes to unmapped and notes."""
    constraints = version_constraints(terraform)
    version = pick_version([c for _, c in constraints])
    if version is None:
        unmapped.append(Unmapped(
            "the terraform version", "terraform/",
            f"no one version satisfies the stacks' required_version "
            f"({'; '.join(f'{f}: {c}' for f, c in constraints)}): add terraform: "
            "{version: X.Y.Z, root: terraform} with a version they all allow, and link "
            "stacks with members.NAME.terraform.stack"))
        return {}
    for stack in found:
        if not stack.linkable:
            notes.append(f"terraform/{stack.path}: {stack.why_not}: not linked")
        elif not stack.locked:
            notes.append(f"terraform/{stack.path} has no .terraform.lock.hcl: "
                         "`federation-deploy terraform lock` writes one to commit")
    return {"version": version, "root": "terraform"}
