"""The adopt command: write PATH/federation.yaml for an existing deploy repository."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from federation_deploy import __version__
from federation_deploy.adopt.federation import Adoption, adopt_repository
from federation_deploy.adopt.workflow import WORKFLOW_FILE, cd_workflow
from federation_deploy.commands.result import CommandResult
from federation_deploy.errors import ConfigError, UsageError
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


# the workflow installs the version that wrote it, unless `adopt --package SPEC`
PACKAGE = f"federation-deploy=={__version__}"


@dataclass(frozen=True)
class AdoptResult:
    path: Path
    adoption: Adoption
    # the files --force replaced, each kept as a numbered copy: (file, its copy)
    kept: tuple[tuple[Path, Path], ...] = ()
    workflow: Path | None = None  # the CD workflow written (None: one was there already)
    # what `validate --without-secrets` refuses in the file written (adopt then exits 2)
    refused: tuple[str, ...] = ()
    workflow_notes: tuple[str, ...] = ()


def render_federation_file(adoption: Adoption) -> str:
    """The text of federation.yaml: the document with its comments, and what was not mapped."""
    header = HEADER
    if adoption.unmapped:
        header += "\n\nNot mapped (see `federation-deploy adopt` output for how to express each):"
        header += "".join(f"\n  - {u.what} ({u.where})" for u in adoption.unmapped)
    return dumps_commented(adoption.document, SECTION_COMMENTS, header)


def adopt(repository: Path, *, force: bool = False, package: str = PACKAGE,
          redirector_member: str | None = None) -> CommandResult:
    """The `adopt` command: write REPOSITORY/federation.yaml (an existing one only with
    force) and the CD workflow (which installs package); say what was written, what could
    not be mapped, and (exit 2) what needs a person before validate accepts the file.
    redirector_member: whose federationRedirect values are the federation's redirector."""
    result = write_adoption(repository, force=force, package=package,
                            redirector_member=redirector_member)
    adoption = result.adoption
    messages: list[str] = []
    for replaced, copy in result.kept:
        messages.append(f"kept the previous {replaced.name} as {copy}")
    messages.append(f"wrote {result.path}: {len(adoption.document['members'])} members")
    messages += [f"note: {note}" for note in adoption.notes]
    if result.workflow is not None:
        messages.append(f"wrote {result.workflow}: CD with federation-deploy (cd.yml untouched), "
                        f"installing {package}")
        messages += [f"note: {note}" for note in result.workflow_notes]
    if adoption.unmapped:
        count = len(adoption.unmapped)
        messages.append(f"{count} {'thing' if count == 1 else 'things'} adopt could not map:")
        messages += [item.render() for item in adoption.unmapped]
    if not (result.refused or adoption.blocking):
        return CommandResult(messages=tuple(messages))
    # an error (exit 2, said even with -q) after what was written: the file needs a person
    lines = [f"{result.path.name} needs a person before validate accepts it:"]
    lines += [f"- {item.what} ({item.where}): {item.how}" for item in adoption.blocking]
    lines += [f"- validate --without-secrets: {problem}" for problem in result.refused]
    return CommandResult(messages=tuple(messages), error=UsageError("\n".join(lines)))


def keep_copy(path: Path) -> Path:
    """Copy path to the first free PATH.orig, PATH.orig.1, PATH.orig.2, ... (same mode): a
    copy is never overwritten, so hand edits survive any number of --force runs."""
    copy = path.with_name(f"{path.name}.orig")
    number = 0
    while copy.exists():
        number += 1
        copy = path.with_name(f"{path.name}.orig.{number}")
    shutil.copy2(path, copy)
    return copy


def write_adoption(repository: Path, *, force: bool = False, package: str = PACKAGE,
                   redirector_member: str | None = None) -> AdoptResult:
    """Write REPOSITORY/federation.yaml and the CD workflow; existing ones only with force,
    each kept first as a numbered .orig copy (hand edits: ramps, weights, hooks, steps)."""
    target = repository / FEDERATION_FILE
    if target.exists() and not force:
        raise UsageError(f"{target} exists: adopt never overwrites it without --force")
    adoption = adopt_repository(repository, redirector_member)
    kept: list[tuple[Path, Path]] = []
    if target.exists():
        kept.append((target, keep_copy(target)))
    atomic_write_text(target, render_federation_file(adoption))
    workflow: Path | None = repository / WORKFLOW_FILE
    assert workflow is not None
    notes: list[str] = []
    if workflow.exists() and not force:
        workflow = None
    else:
        if workflow.exists():
            kept.append((workflow, keep_copy(workflow)))
        workflow.parent.mkdir(parents=True, exist_ok=True)
        chartpress = any(u.what.startswith("image builds") for u in adoption.unmapped)
        written = cd_workflow(repository, adoption.document, adoption.cd,
                              adoption.aws_roles, chartpress, package)
        atomic_write_text(workflow, written.text)
        notes = written.notes
    return AdoptResult(target, adoption, tuple(kept), workflow, _refused(repository),
                       tuple(notes))


def _refused(repository: Path) -> tuple[str, ...]:
    """What validate --without-secrets says of the file just written: adopt never leaves a
    file its own validate refuses without saying so."""
    from federation_deploy.commands.validate import validate

    try:
        validate(repository, without_secrets=True)
    except ConfigError as exc:
        return tuple(str(p) for p in exc.problems)
    return ()
