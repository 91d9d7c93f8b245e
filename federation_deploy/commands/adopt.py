"""The adopt command: write PATH/federation.yaml for an existing deploy repository."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from federation_deploy.adopt.federation import Adoption, adopt_repository
from federation_deploy.errors import UsageError
from federation_deploy.yamlio import atomic_write_text, dumps_commented

FEDERATION_FILE = "federation.yaml"

HEADER = """\
federation.yaml of this deploy repository, written by `federation-deploy adopt` from
deploy.py (read, never run), config/*.yaml, mybinder/ and .github/workflows/cd.yml.
Use it with `federation-deploy --config-dir . COMMAND`: every path here is relative to this
directory, and the repository stays as it is. Review it before the first deploy."""

SECTION_COMMENTS: dict[tuple[str, ...], str] = {
    ("terraform",): "the one pinned terraform version; the stacks live under `root`",
    ("secrets",): "git-crypt secrets: with --without-secrets the stand-in replaces every "
                  "secret layer\n(render, validate and deploy --dry-run of pull requests "
                  "from forks, without the key)",
    ("ci",): "the CD order read from cd.yml (ci-matrix lists members in this order) and its\n"
             "staging tier (the first deploy job, which the others wait for)",
    ("redirector",): "the federation redirector, read from the member whose values enable "
                     "federationRedirect;\nits hosts, weights and prime are generated from "
                     "the members below",
    ("charts",): "charts that several members' releases use at the same version, pinned "
                 "once;\nthose releases name them (`chart: NAME`)",
    ("members",): "members from deploy.py's tables (cloud, cluster), the redirector hosts "
                  "(url, weight, prime)\nand cd.yml (release names). Releases deploy in "
                  "deploy.py's order; `values` are passed whole,\nin get_config_files() "
                  "order (later files win); {member} is the member's name",
}


@dataclass(frozen=True)
class AdoptResult:
    path: Path
    adoption: Adoption
    kept: Path | None = None  # the previous federation.yaml, kept by --force


def render_federation_file(adoption: Adoption) -> str:
    """The text of federation.yaml: the document with its comments, and what was not mapped."""
    header = HEADER
    if adoption.unmapped:
        header += "\n\nNot mapped (see `federation-deploy adopt` output for how to express each):"
        header += "".join(f"\n  - {u.what} ({u.where})" for u in adoption.unmapped)
    return dumps_commented(adoption.document, SECTION_COMMENTS, header)


def adopt(repository: Path, *, force: bool = False) -> AdoptResult:
    """Write REPOSITORY/federation.yaml; an existing one only with force."""
    target = repository / FEDERATION_FILE
    if target.exists() and not force:
        raise UsageError(f"{target} exists: adopt never overwrites it without --force")
    adoption = adopt_repository(repository)
    kept = None
    if target.exists():
        # hand edits (ramps, weights, hooks) would be lost otherwise; same mode as the file
        kept = target.with_name(f"{FEDERATION_FILE}.orig")
        shutil.copy2(target, kept)
    atomic_write_text(target, render_federation_file(adoption))
    return AdoptResult(target, adoption, kept)
