"""Command `plan`: what merging HEAD would change per member compared with REF, for reviewers.

Both revisions are exported with `git archive` into a private temporary directory (the work
tree is never touched), loaded and rendered with the same code `render` uses, and compared by
the pure review/ package. Git-ignored files under the config directory (a repository's
plain-text secrets/) are no part of any commit: both sides read the work tree's copy. A member
whose secret files are git-crypt locked on either side is rendered with the stand-in on both
sides, and its locked files are compared by their git blob ids only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from federation_deploy.actions import git
from federation_deploy.actions.terraform_diagnosis import error_text
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import (
    FEDERATION_FILE,
    Federation,
    Member,
    load_federation,
    values_layers,
)
from federation_deploy.config.ci_matrix import (
    RepoLayout,
    changed_matrix,
    deploy_order,
    federation_data,
)
from federation_deploy.errors import (
    EXIT_CHANGES,
    EXIT_OK,
    ConfigError,
    FederationDeployError,
    UsageError,
)
from federation_deploy.review.changes import (
    MemberChange,
    Plan,
    Rendered,
    federation_key_changes,
    member_change,
    terraform_files,
)
from federation_deploy.review.report import as_json, markdown, table
from federation_deploy.runner import Runner
from federation_deploy.values.render import render_releases

FORMATS = {"markdown": markdown, "json": as_json, "table": table}
# the branches whose merge base with HEAD is the default REF, first found wins
DEFAULT_BASES = ("origin/main", "main")
# environment variables that say a cloud's credentials are at hand (terraform can plan)
CREDENTIAL_VARIABLES = {
    "aws": ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE"),
    "gcp": ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GHA_CREDS_PATH",
            "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE"),
}
NO_CREDENTIALS = "not computed: no credentials"
NOT_ASKED = "not run (pass --terraform-plan to plan the stack with terraform)"


def plan(config_dir: Path, *, runner: Runner, ref: str | None = None,
         output: str = "table", exit_code: bool = False, terraform_plan: bool = False,
         environ: Mapping[str, str] | None = None) -> CommandResult:
    """The plan of HEAD against REF (default: its merge base with origin/main or main), as a
    table, markdown (the pull-request comment) or JSON. Exit 0; with exit_code, 3 when
    anything changes. terraform_plan: run `terraform plan` of HEAD's touched stacks (it
    reaches the cloud: opt-in, never implied by credentials being at hand)."""
    if output not in FORMATS:
        raise UsageError(f"--output {output!r}: choose one of {', '.join(FORMATS)}")
    root = git.toplevel(runner, config_dir)
    if root is None:
        raise UsageError(f"plan compares git revisions, and {config_dir} is not in a git "
                         "repository")
    head = git.resolve_commit(runner, root, "HEAD")
    if head is None:
        raise UsageError(f"{root} has no commit yet: nothing to compare")
    ref, commit = _base(runner, root, head, ref)
    config_rel = _relative(config_dir, root)
    work = Path(tempfile.mkdtemp(prefix="federation-deploy-plan-"))  # 0700
    try:
        result = _plan(runner, root, config_rel, ref, commit, head, work,
                       os.environ if environ is None else environ, terraform_plan)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # no censoring of the report by string matching: secret keys are reduced to
    # changed/unchanged by key path (review.changes.values_changes), which is the one
    # mechanism; every value printed is a plain layer's (public) value
    text = result
    stdout = FORMATS[output](text)
    code = EXIT_CHANGES if exit_code and text.changed else EXIT_OK
    return CommandResult(stdout=stdout, exit_code=code, messages=(f"plan: {text.summary()}",))


def _base(runner: Runner, root: Path, head: str, ref: str | None) -> tuple[str, str]:
    """(REF as people read it, its commit): the given revision, or the merge base of HEAD
    with the first of DEFAULT_BASES git knows."""
    if ref is not None:
        if not ref or ref.startswith("-"):
            raise UsageError(f"--changed-since: {ref!r} is not a git revision")
        commit = git.resolve_commit(runner, root, ref)
        if commit is None:
            raise UsageError(f"--changed-since: unknown git revision {ref!r} (is it fetched? "
                             "in GitHub Actions check out with fetch-depth: 0)")
        return ref, commit
    for branch in DEFAULT_BASES:
        tip = git.resolve_commit(runner, root, branch)
        if tip is not None:
            base = git.merge_base(runner, root, head, tip)
            if base is not None:
                return f"merge base with {branch}", base
    raise UsageError(f"no REF: none of {', '.join(DEFAULT_BASES)} shares history with HEAD; "
                     "pass --changed-since REF")


def _relative(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError(f"{path} is outside the git repository {root}") from None
    return "" if rel == "." else rel


def _export(runner: Runner, root: Path, rev: str, dest: Path, ignored: list[str]) -> None:
    dest.mkdir(mode=0o700)
    git.export_tree(runner, root, rev, dest)
    for name in ignored:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, target)
        target.chmod(0o600)


def _plan(runner: Runner, root: Path, config_rel: str, ref: str, commit: str, head: str,
          work: Path, environ: Mapping[str, str], terraform_plan: bool) -> Plan:
    # the git-ignored secrets (config/secrets/ here) are in no commit: both sides read them
    secrets_dir = f"{config_rel}/secrets" if config_rel else "secrets"
    ignored = [p for p in git.ignored_files(runner, root, secrets_dir)
               if not any(part.startswith(".") for part in Path(p).parts)
               and (root / p).is_file()]
    _export(runner, root, commit, work / "ref", ignored)
    _export(runner, root, head, work / "head", ignored)
    try:
        after = load_federation(work / "head" / config_rel)
    except ConfigError as exc:  # HEAD's own problems: exit 2, named as in the repository
        raise _in_repository(exc, work / "head", root) from None
    notes: list[str] = []
    before = _load_ref(work / "ref", config_rel, ref, commit, notes)
    files = git.changed_files(runner, root, commit)
    federation_file = f"{config_rel}/{FEDERATION_FILE}" if config_rel else FEDERATION_FILE
    data_before = federation_data(git.file_at(runner, root, commit, federation_file),
                                  f"{federation_file}@{commit}")
    data_after = federation_data(git.file_at(runner, root, head, federation_file),
                                 f"{federation_file}@HEAD")
    terraform_rel = _inside(after.terraform_root, work / "head")
    layout = RepoLayout(root=work / "head", config=config_rel, terraform=terraform_rel)
    cd = changed_matrix(after, layout, commit, files, data_before, data_after)
    names = [*after.members, *(n for n in (before.members if before else {})
                               if n not in after.members)]
    changes: list[MemberChange] = []
    sides = _Sides(before, after, runner, root, commit, head, config_rel, terraform_plan)
    for name in names:
        change = sides.member(name, terraform_files_of=lambda stack: terraform_files(
            stack, terraform_rel, files), environ=environ)
        change = replace(change, deployed_by_cd=name in cd.reasons,
                         cd_reasons=tuple(cd.reasons.get(name, ())))
        if change.status == "unchanged" and change.changed:
            change = replace(change, status="changed")
        changes.append(change)
    if any(m.terraform_plan == NOT_ASKED for m in changes):
        notes.append("terraform plan: not run; `federation-deploy plan --terraform-plan` runs "
                     "it for the touched stacks (with the cloud's credentials)")
    if any(m.terraform_plan == NO_CREDENTIALS for m in changes):
        notes.append(f"terraform plan: {NO_CREDENTIALS} (the Terraform workflow plans pull "
                     "requests from this repository with them)")
    plan_ = Plan(ref=ref, commit=commit, head=head, members=tuple(changes),
                 federation=federation_key_changes(data_before, data_after),
                 cd_order=tuple(m.name for m in deploy_order(after)), notes=tuple(notes))
    return plan_


@dataclass(frozen=True)
class _Sides:
    """REF's and HEAD's federations, and where git can tell about their files."""

    before: Federation | None
    after: Federation
    runner: Runner
    root: Path
    commit: str
    head: str
    config_rel: str
    terraform_plan: bool = False

    def member(self, name: str, *, terraform_files_of: Callable[[str | None], tuple[str, ...]],
               environ: Mapping[str, str]) -> MemberChange:
        """One member's change. Locked secrets on either side: both sides rendered with the
        stand-in."""
        was = self.before.members.get(name) if self.before else None
        now = self.after.members.get(name)
        locked = sorted(_locked_secret_files(self.before, was)
                        | _locked_secret_files(self.after, now))
        rendered = (_render(self.before, was, bool(locked)),
                    _render(self.after, now, bool(locked)))
        change = member_change(name, self.before, self.after, *rendered)
        stack_files = terraform_files_of(change.terraform_stack)
        extra = (f"secret values: {', '.join(locked)} git-crypt locked; rendered with the "
                 "stand-in on both sides",) if locked else ()
        return replace(
            change, terraform_files=stack_files,
            terraform_plan=(_terraform_plan(self.runner, self.after, now, environ)
                            if self.terraform_plan else NOT_ASKED) if stack_files else None,
            locked_secrets=_locked_states(self.runner, self.root, self.commit, self.head,
                                          self.config_rel, locked),
            not_computed=change.not_computed + extra)


def _in_repository(exc: ConfigError, tree: Path, root: Path) -> ConfigError:
    """exc with the exported tree's paths shown as the repository's own."""
    prefix = f"{tree}/"
    return ConfigError([replace(p, file=str(root / p.file.removeprefix(prefix))
                                if p.file.startswith(prefix) else p.file,
                                message=p.message.replace(prefix, f"{root}/"))
                        for p in exc.problems])


def has_credentials(cloud: str, environ: Mapping[str, str]) -> bool:
    """Whether the environment holds credentials for cloud (CI for forks holds none)."""
    return any(environ.get(name) for name in CREDENTIAL_VARIABLES.get(cloud, ()))


def _terraform_plan(runner: Runner, fed: Federation, member: Member | None,
                    environ: Mapping[str, str]) -> str:
    """terraform's own summary line of a plan of HEAD's stack (in the export: the work tree
    is never initialised), or why there is none. A failing plan is reported, not raised:
    the rest of the review stands."""
    if member is None or member.terraform is None:
        return "not computed: the member has no stack at HEAD"
    if not has_credentials(member.cloud, environ):
        return NO_CREDENTIALS
    from federation_deploy.commands.terraform import for_member

    try:
        return for_member(fed, member.name, runner).plan().summary.line
    except FederationDeployError as exc:
        return f"not computed: terraform plan failed: {_failure(exc)}"


def _failure(exc: FederationDeployError) -> str:
    """What failed and terraform's own error summary (its first `Error:` line), one line."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    output = f"{getattr(exc, 'stderr', '')}\n{getattr(exc, 'stdout', '')}\n{text}"
    errors = [" ".join(line.split()) for line in error_text(output).splitlines()
              if line.strip().startswith("Error:")]
    said = errors[0] if errors else ""
    if said and said not in first:
        first = f"{first}; terraform: {said}"
    return first if len(first) <= 400 else first[:400] + "…"


def _inside(path: Path, root: Path) -> str | None:
    try:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    return "" if rel == "." else rel


def _load_ref(tree: Path, config_rel: str, ref: str, commit: str,
              notes: list[str]) -> Federation | None:
    """REF's federation; None (every member counts as added) when REF has none, which the
    notes say. A config at REF that does not load cannot be compared with: an error (exit 1)
    naming REF and the file, not a report of every member "added"."""
    config_dir = tree / config_rel
    if not (config_dir / FEDERATION_FILE).is_file():
        notes.append(f"{ref} has no {FEDERATION_FILE}: every member is compared as added")
        return None
    try:
        return load_federation(config_dir)
    except ConfigError as exc:
        prefix = f"{tree}/"
        lines = []
        for p in exc.problems[:5]:
            file = p.file.removeprefix(prefix)
            where = f"{file}:{p.line}" if p.line else file
            lines.append(f"  {where}: {p.key + ': ' if p.key else ''}"
                         f"{p.message.replace(prefix, '')}")
        more = len(exc.problems) - len(lines)
        raise FederationDeployError(
            f"plan: the config at {ref} ({commit[:12]}) does not load, so HEAD cannot be "
            f"compared with it:\n" + "\n".join(lines)
            + (f"\n  ... and {more} more" if more > 0 else "")
            + f"\n(`git show {commit[:12]}:<file>` shows it; pass another --changed-since)"
        ) from None


def _locked_secret_files(fed: Federation | None, member: Member | None) -> set[str]:
    """The member's secret values files that are still git-crypt ciphertext (config-relative)."""
    if fed is None or member is None or not member.deployable or not fed.locked_files:
        return set()
    found: set[str] = set()
    for release in member.releases:
        try:
            layers = list(values_layers(fed, member, release))
        except ConfigError:
            continue
        for layer in layers:
            if layer.secret and layer.path in fed.locked_files:
                found.add(layer.path.relative_to(fed.config_dir).as_posix())
    return found


def _locked_states(runner: Runner, root: Path, commit: str, head: str, config_rel: str,
                   files: list[str]) -> tuple[tuple[str, str], ...]:
    """Whether each locked file changed, by its blob id (git-crypt's encryption is
    deterministic: the same plaintext gives the same blob)."""
    paths = [f"{config_rel}/{f}" if config_rel else f for f in files]
    old = git.blob_ids(runner, root, commit, paths)
    new = git.blob_ids(runner, root, head, paths)
    states = []
    for file, path in zip(files, paths, strict=True):
        state = ("added" if path not in old else "removed" if path not in new
                 else "unchanged" if old[path] == new[path] else "changed")
        states.append((file, state))
    return tuple(states)


def _render(fed: Federation | None, member: Member | None, without_secrets: bool) -> Rendered:
    if fed is None or member is None or not member.deployable:
        return Rendered()
    try:
        rendered = render_releases(fed, member, without_secrets=without_secrets)
    except (ConfigError, UsageError) as exc:
        return Rendered(error=exc.render())
    return Rendered(releases={r.release.name: r for r in rendered})
