"""Command `member`: `member new` writes a member ready to provision, deploy and ramp (its
terraform stack with its own state and a lock file, its values file, its federation.yaml entry
at weight 0); `member remove` takes a member out of rotation's registry once it has no weight.

Nothing is left half-written: the stack is written in a temporary directory renamed into
place, the values file atomically, federation.yaml through the one writer (traffic/weights.py);
a failure at any step (the lock, validate) takes back every step before it."""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from federation_deploy.actions.terraform_diagnosis import MIRROR_ENV, diagnose
from federation_deploy.commands.result import CommandResult
from federation_deploy.commands.validate import validate
from federation_deploy.config import CLOUDS, NAME, Federation, url_problem
from federation_deploy.config.aws_names import cluster_name, name_limit, overlaps
from federation_deploy.config.scaffold import (
    DEFAULT_REGIONS,
    PROVIDERS,
    SHARED_MODULES,
    MemberSpec,
    member_entry,
    stack_directory,
    stack_files,
    template_member,
    values_text,
)
from federation_deploy.errors import ToolError, UsageError
from federation_deploy.runner import Runner
from federation_deploy.traffic.shares import plain_number
from federation_deploy.traffic.weights import ConfigSnapshot, restore, snapshot_of, write_federation
from federation_deploy.yamlio import atomic_write_text


def resolve_spec(fed: Federation, name: str, cloud: str, *, region: str | None,
                 url: str | None, project: str | None,
                 target_weight: float | None) -> MemberSpec:
    """The new member, checked once, at the edge: a free DNS name, a known cloud, the
    options its cloud needs."""
    if not NAME.match(name):
        raise UsageError(f"member name {name!r}: lowercase letters, digits and dashes, "
                         "starting and ending with a letter or digit (a DNS label)")
    if name in fed.members:
        raise UsageError(f"member {name!r} is already in {fed.path}")
    if cloud not in CLOUDS:
        raise UsageError(f"--cloud {cloud!r}: one of {', '.join(CLOUDS)}")
    if cloud == "aws":
        _check_aws_name(fed, name)
    if cloud == "gcp" and not project:
        raise UsageError("--cloud gcp needs --project (the Google Cloud project of its cluster)")
    if region is None:
        region = DEFAULT_REGIONS.get(cloud)
    if url is None:
        if cloud == "external":
            raise UsageError("--cloud external needs --url (the partner's BinderHub)")
        url = f"https://{name}.{fed.redirector.host}"
    url = url.rstrip("/")
    if problem := url_problem(url):
        raise UsageError(f"--url {url}: {problem}")
    template = template_member(fed, cloud)
    if cloud != "external" and template is None:
        raise UsageError(f"no deployable member in {fed.path} to take releases from: add "
                         f"{name} by hand")
    versions = sorted({m.kubernetes_version for m in fed.members.values()
                       if m.kubernetes_version and m.cloud == cloud}
                      or {m.kubernetes_version for m in fed.members.values()
                          if m.kubernetes_version}, key=_version_key)
    routed = [m.weight for m in fed.routed if m.weight > 0]
    if target_weight is None:
        # the smallest weight in service: a new member ends its ramp as the least of them
        target_weight = min(routed) if routed else 1.0
    return MemberSpec(name=name, cloud=cloud, url=url, region=region, project=project,
                      kubernetes_version=versions[-1] if versions else "1.29",
                      target_weight=target_weight, template=template)


def _check_aws_name(fed: Federation, name: str) -> None:
    """An AWS member's name is its cluster's, and so its IAM and bucket names': it must fit
    them all (the limit computed from the module's templates) and stay apart from every other
    AWS member's `<cluster name>-*` in the account."""
    module = fed.terraform_root / "aws" / "modules" / SHARED_MODULES["aws"]
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(module.glob("*.tf")))
    limit = name_limit(text)
    if len(name) > limit.length:
        raise UsageError(f"member name {name!r} is {len(name)} characters: an AWS member's "
                         f"name is at most {limit.length}, for "
                         f"{limit.decided_by.format(name=name)}")
    for other in fed.members.values():
        if other.cloud == "aws" and overlaps(name, cluster_name(other)):
            raise UsageError(f"member name {name!r} overlaps member {other.name}'s cluster "
                             f"name {cluster_name(other)!r} (IAM roles <cluster name>-* share "
                             "the account): pick a name that is neither it nor it plus a "
                             "dash")


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def new(fed: Federation, name: str, cloud: str, runner: Runner, *, region: str | None = None,
        url: str | None = None, project: str | None = None,
        target_weight: float | None = None,
        env: Mapping[str, str] | None = None) -> CommandResult:
    """Write the member's stack, values file and entry; lock the stack's providers; check the
    whole config as `validate` does. Any failure takes every written file back."""
    spec = resolve_spec(fed, name, cloud, region=region, url=url, project=project,
                        target_weight=target_weight)
    stack_dir = stack_directory(fed, spec)
    files = stack_files(fed, spec)
    values = values_text(spec)
    values_path = fed.values_file(spec.name)
    for path in (stack_dir if files else None, values_path if values else None):
        if path is not None and path.exists():
            raise UsageError(f"{path} exists already: move it away or pick another name")
    created: list[Path] = []
    snapshot = snapshot_of(fed)
    written: ConfigSnapshot | None = None
    messages: list[str] = []
    try:
        if files and stack_dir is not None:
            _write_stack(stack_dir, files)
            created.append(stack_dir)
        if values is not None:
            values_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(values_path, values, mode=0o644)
            created.append(values_path)
        written = write_federation(snapshot, _adding(spec.name, member_entry(fed, spec)))
        if spec.stack is not None:
            from federation_deploy.commands.terraform import lock

            try:
                messages += lock(written.fed, spec.name, runner, env=env).messages
            except ToolError as exc:
                raise _lock_failed(exc, fed, spec, env) from None
        messages += validate(fed.config_dir).messages
    except BaseException:
        if written is not None:
            restore(written, snapshot)
        for path in reversed(created):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise
    target = "" if spec.cloud == "external" else \
        f" (target_weight {plain_number(spec.target_weight)})"
    return CommandResult(stdout=_next_steps(fed, spec, created),
                         messages=(*messages, f"added member {spec.name} at weight 0{target}"))


def _lock_failed(exc: ToolError, fed: Federation, spec: MemberSpec,
                 env: Mapping[str, str] | None) -> ToolError:
    """The lock's failure said as its cause (actions/terraform_diagnosis: a mirror without the
    provider, no registry ...), and that nothing of the member was written."""
    environ = os.environ if env is None else env
    mirror = environ.get(MIRROR_ENV)
    provider = PROVIDERS[spec.cloud]
    found = diagnose(f"{exc.stderr}\n{exc.stdout}", stack=f"terraform/{spec.stack}",
                     chdir=f"terraform/{spec.stack}",
                     lock_command=f"`federation-deploy terraform lock {spec.name}`",
                     mirror=mirror, action="providers lock")
    summary = found.summary if found else (exc.summary or "terraform providers lock failed")
    if mirror and not (Path(mirror) / "registry.terraform.io" / provider).is_dir():
        article = "an" if spec.cloud == "aws" else "a"
        summary = (f"the plugin mirror {MIRROR_ENV}={mirror} has no {provider}, which "
                   f"{article} {spec.cloud.upper()} stack needs (terraform could not lock it)")
    hint = found.hint if found else exc.hint
    return exc.with_context(
        f"member new {spec.name}: {summary}; nothing was written (the stack, values file and "
        f"{fed.path.name} entry were taken back)",
        hint=hint or f"run `federation-deploy member new` where {provider} can be installed "
                     f"(the registry, or a mirror holding it)")


def _write_stack(stack_dir: Path, files: dict[str, str]) -> None:
    """The stack's files in a fresh directory beside it, renamed into place at once."""
    stack_dir.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{stack_dir.name}.", dir=stack_dir.parent))
    try:
        for name, text in files.items():
            (temporary / name).write_text(text, encoding="utf-8")
        temporary.chmod(0o755)
        temporary.rename(stack_dir)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _adding(name: str, entry: dict[str, Any]) -> Any:
    def edit(data: CommentedMap) -> None:
        members = data.get("members")
        if not isinstance(members, CommentedMap):
            raise UsageError("federation.yaml has no members: mapping to add to")
        members[name] = _commented(entry)
        members.yaml_set_comment_before_after_key(
            name, before=f"\n{name}: added by `federation-deploy member new`, at weight 0 "
            "until a ramp", indent=2)
    return edit


def _commented(value: Any) -> Any:
    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = _commented(item)
        return out
    if isinstance(value, list):
        return [_commented(v) for v in value]
    return value


def _shown(fed: Federation, paths: list[Path]) -> list[str]:
    """Paths relative to the directory holding the config directory (the repository)."""
    root = fed.config_dir.resolve().parent
    return [str(p.resolve().relative_to(root)) if p.resolve().is_relative_to(root) else str(p)
            for p in paths]


def _next_steps(fed: Federation, spec: MemberSpec, created: list[Path]) -> str:
    shown = _shown(fed, created)
    name = spec.name
    wrote = ", ".join([*shown, f"members.{name} in {fed.path.name}"])
    lines = [f"wrote {wrote}", "next:"]
    others = [m.name for m in fed.members.values() if m.cloud == "aws" and m.terraform]
    if spec.cloud == "aws" and others:
        lines.append(f"  # in the AWS account of {', '.join(others)}? set "
                     f"create_github_oidc_provider's default to false in terraform/aws/{name}/"
                     "variables.tf (one GitHub OIDC provider per account)")
    if spec.cloud == "aws":
        lines.append(f"  federation-deploy terraform bootstrap {name}   # its state bucket "
                     "and lock table")
    if spec.stack is not None:
        lines += [f"  federation-deploy terraform plan {name}",
                  f"  federation-deploy terraform apply {name}   # saves config/generated/"
                  f"{name}.terraform.json: commit it with the stack and its lock file"]
    if spec.cloud == "kubeconfig":
        lines.append(f"  # its kubeconfig: config/secrets/{name}-kubeconfig.yml, and the "
                     f"KUBECONFIG_{name.upper().replace('-', '_')} secret in the "
                     "MEMBER_KUBECONFIG expressions of the workflows")
    if spec.cloud != "external":
        lines += [f"  federation-deploy deploy {name} --dry-run   # then merge: CD deploys it"]
    if spec.cloud == "external":
        # an external member cannot be ramped (validate refuses its ramp): its weight is set
        lines.append(f"  federation-deploy traffic set {name} --weight "
                     f"{plain_number(spec.target_weight)}   # routes launches to it")
    else:
        lines += [f"  federation-deploy ramp {name} --dry-run   # the ramp's plan, to "
                  f"target_weight {plain_number(spec.target_weight)}",
                  f"  federation-deploy ramp {name}"]
    return "\n".join(lines) + "\n"


def remove(fed: Federation, name: str, *, prime_command: bool = False) -> CommandResult:
    """Remove the member's entry (one writer) when it takes no launches, runs nothing the
    others need and has no values file left (validate would refuse those); say which of its
    other files to delete (none is deleted here). prime_command: whether this CLI has
    `traffic prime` to advise (else the advice is the federation.yaml key)."""
    member = fed.member(name)
    if member.prime:
        how = ("`federation-deploy traffic prime OTHER`" if prime_command
               else f"move `prime: true` to another routed member in {fed.path.name}")
        raise UsageError(f"member {name} is the prime member: make another prime first "
                         f"({how})")
    if name == fed.redirector.member:
        raise UsageError(f"member {name} runs the redirector (redirector.member in "
                         f"{fed.path.name}): move it first")
    if member.routed and member.weight > 0:
        raise UsageError(f"member {name} has weight {plain_number(member.weight)}: take it "
                         f"out of rotation first (`federation-deploy traffic set {name} "
                         "--weight 0`, or `ramp --abort` during a ramp)")
    if member.ramp is not None:
        raise UsageError(f"member {name} has a ramp in progress: `federation-deploy ramp "
                         f"{name} --abort` first")
    values = [p for p in (fed.values_file(name), fed.values_file(name, secret=True))
              if p.exists()]
    if values:
        # validate refuses a values file of a member federation.yaml does not have: removing
        # the entry first would leave the config invalid, and this command deletes no file
        raise UsageError(f"member {name} still has values files: delete "
                         f"{' and '.join(_shown(fed, values))} first (validate refuses values "
                         "of a member federation.yaml does not have), then run this again")
    snapshot = snapshot_of(fed)

    def edit(data: CommentedMap) -> None:
        delete_entry(data, "members", name)

    write_federation(snapshot, edit)
    shown = _shown(fed, [p for p in _member_files(fed, name) if p.exists()])
    lines = [f"removed members.{name} from {fed.path.name}"]
    if shown:
        lines += ["delete these files by hand (left in place):", *(f"  {p}" for p in shown)]
    if member.terraform is not None:
        lines.append(f"  # its cloud resources stay until `terraform destroy` in "
                     f"{member.terraform.path} (with the state of its backend)")
    return CommandResult(stdout="\n".join(lines) + "\n")


_KEEP = object()


def _after(node: Any, key: Any) -> tuple[Any, Any, int] | None:
    """Where ruamel keeps the comment lines after node[key] (the next entry's leading
    comment): the comment slot of its deepest last item, as (container, key, position)."""
    value = node[key]
    while isinstance(value, (CommentedMap, CommentedSeq)) and value:
        node, key = value, (list(value)[-1] if isinstance(value, CommentedMap)
                            else len(value) - 1)
        value = node[key]
    return (node, key, 2 if isinstance(node, CommentedMap) else 0) \
        if isinstance(node, (CommentedMap, CommentedSeq)) else None


def _comment_slot(node: Any, key: Any, position: int, token: Any = _KEEP) -> Any:
    """The comment token at node.ca.items[key][position]; set it when token is given."""
    items = node.ca.items
    if token is not _KEEP:
        slot = items.setdefault(key, [None, None, None, None])
        slot[position] = token
    return items.get(key, [None] * 4)[position]


def delete_entry(data: CommentedMap, section: str, name: str) -> None:
    """Delete data[section][name] with its own leading comment, keeping the comment that
    leads the entry after it (ruamel stores each entry's leading comment at the end of the
    entry before it)."""
    mapping = data[section]
    keys = list(mapping)
    at = keys.index(name)
    after = _after(mapping, name)
    following = _comment_slot(*after) if after is not None and at + 1 < len(keys) else None
    if at > 0:
        before = _after(mapping, keys[at - 1])
        if before is not None:
            _comment_slot(*before, token=following)
    else:
        # the first entry's leading comment is the section's own comment (and its key's)
        lead = [copy.copy(following)] if following is not None else None
        if lead:
            # a leading comment is written at the entry's indent: its first line unindented
            lead[0].value = lead[0].value.lstrip("\n").lstrip(" ")
        if mapping.ca.comment is not None:
            mapping.ca.comment[1] = lead
        slot = data.ca.items.get(section)
        if slot is not None and len(slot) > 3:
            slot[3] = lead
    del mapping[name]


def _member_files(fed: Federation, name: str) -> list[Path]:
    member = fed.member(name)
    files = [fed.generated_outputs_file(name)]
    if member.cluster.kubeconfig:
        files.append(fed.secrets_path(member.cluster.kubeconfig))
    if member.terraform is not None:
        shared = [m for m in fed.members.values()
                  if m.name != name and m.terraform and m.terraform.path == member.terraform.path]
        if not shared:
            files.append(member.terraform.directory)
    return files
