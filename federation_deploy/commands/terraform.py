"""The `terraform` commands: a member's stack resolved, bootstrapped, planned, applied, checked."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from federation_deploy.actions import terraform as tf
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, Member, display_path, terraform_files
from federation_deploy.errors import EXIT_CHANGES, Problem, ToolError, UsageError
from federation_deploy.runner import Runner
from federation_deploy.values.render import REDACTED
from federation_deploy.yamlio import atomic_write_text


def check_terraform_pins(fed: Federation) -> list[Problem]:
    """For `validate`: every stack's required_version equals the pinned terraform version, and
    no two stacks (or members) share a terraform state or lock table."""
    return [*terraform_files.check_terraform_pins(fed), *terraform_files.shared_state_problems(fed)]


def bootstrap(fed: Federation, member: str, runner: Runner,
              env: Mapping[str, str] | None = None) -> CommandResult:
    result = bootstrap_member(fed, member, runner, env=env)
    b = result.backend
    messages = [f"state bucket s3://{b.bucket} and lock table {b.dynamodb_table} "
                f"({b.region}) for {member}: "
                + ("created or updated" if result.changes else "already in place, no changes")]
    if result.imported:
        messages.append(f"adopted existing {', '.join(result.imported)} into the bootstrap "
                        f"state ({result.state_file})")
    messages.append(result.summary)
    return CommandResult(messages=tuple(messages))


def init(fed: Federation, member: str, runner: Runner,
         env: Mapping[str, str] | None = None) -> CommandResult:
    stack = for_member(fed, member, runner, env=env)
    stack.init()
    return CommandResult(messages=(f"initialised {stack.name} (lock file read-only, unchanged)",))


def plan(fed: Federation, member: str, runner: Runner,
         env: Mapping[str, str] | None = None) -> CommandResult:
    result = for_member(fed, member, runner, env=env).plan()
    messages = [result.summary.line]
    if result.summary.changes:
        messages.append(f"plan saved to {result.plan_file}; apply it with "
                        f"`federation-deploy terraform apply {member}`")
    else:
        messages.append(f"plan saved to {result.plan_file} (nothing to apply)")
    return CommandResult(stdout=result.text, messages=tuple(messages), streamed=runner.stream)


def apply(fed: Federation, member: str, runner: Runner, confirm: Callable[[str], None],
          env: Mapping[str, str] | None = None) -> CommandResult:
    """Apply the member's saved plan after `confirm` (which raises to abort)."""

    def ask(saved: tf.SavedPlan) -> None:
        confirm(f"Apply the plan of {saved.stack} made {saved.created} ({saved.summary.line})?")

    result = apply_member(fed, member, runner, env=env, confirm=ask)
    messages = [f"applied {result.stack}: {result.summary.line}"]
    if result.outputs_file is not None:
        messages.append(f"outputs saved to {result.outputs_file} (commit it: render uses it)")
    return CommandResult(stdout=result.text, messages=tuple(messages), streamed=runner.stream)


def check(fed: Federation, member: str, runner: Runner,
          env: Mapping[str, str] | None = None) -> CommandResult:
    """Drift detection: exit 0 no drift, 3 drift (errors raise, exit 1)."""
    stack = for_member(fed, member, runner, env=env)
    summary, text = stack.check()
    if summary.changes:
        return CommandResult(exit_code=EXIT_CHANGES, stdout=text, streamed=runner.stream,
                             messages=(f"drift in {stack.name}: {summary.line}",))
    return CommandResult(messages=(f"no drift in {stack.name}",))


def output(fed: Federation, member: str, runner: Runner, fmt: str = "text",
           env: Mapping[str, str] | None = None) -> CommandResult:
    outputs = for_member(fed, member, runner, env=env).outputs()
    return CommandResult(stdout=format_outputs(outputs, fmt))


def format_outputs(outputs: Mapping[str, Any], fmt: str) -> str:
    """`name = value` lines, or terraform's `output -json` object; sensitive values redacted."""
    shown: dict[str, Any] = {}
    for name, entry in sorted(outputs.items()):
        entry = dict(entry) if isinstance(entry, Mapping) else {"value": entry}
        if entry.get("sensitive"):
            entry["value"] = REDACTED
        shown[name] = entry
    if fmt == "json":
        return json.dumps(shown, indent=2, sort_keys=True) + "\n"
    lines = []
    for name, entry in shown.items():
        value = entry.get("value")
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        lines.append(f"{name} = {text}")
    return "\n".join(lines) + ("\n" if lines else "")


def lock(fed: Federation, member: str, runner: Runner,
         env: Mapping[str, str] | None = None,
         platforms: tuple[str, ...] = tf.LOCK_PLATFORMS) -> CommandResult:
    stack = for_member(fed, member, runner, env=env)
    result = stack.lock(platforms)
    messages = [f"{'updated' if result.changed else 'unchanged'}: {stack.lock_file} "
                f"(platforms {', '.join(result.platforms)})"]
    if result.skipped:
        messages.append(f"warning: not locked for {', '.join(result.skipped)}: the mirror "
                        f"{stack.mirror} has no packages for them; terraform on those "
                        "platforms will refuse this lock file until someone runs `lock` where "
                        "the registry is reachable")
    if result.changed:
        messages.append("review and commit the lock file")
    return CommandResult(messages=tuple(messages))


# --------------------------------------------------------------------------------------------
# A member's stack: resolved from federation.yaml, applied, bootstrapped


def stack_variables(member: Member, stack: Path) -> dict[str, str]:
    """Values from federation.yaml for the variables the stack declares (region, names, ...)."""
    candidates = {
        "region": member.cluster.region,
        "cluster_name": member.cluster.name,
        "kubernetes_version": member.kubernetes_version,
        "project": member.cluster.project,
        "location": member.cluster.location,
    }
    declared = terraform_files.declared_variables(stack)
    return {k: v for k, v in candidates.items() if v is not None and k in declared}


def sandbox_environment(fed: Federation, member: Member,
                        env: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """env, and in a sandbox the environment of its moto_server over it: a sandbox's terraform
    never reaches a real cloud (AWS stacks only; a sandbox has no Google Cloud emulator)."""
    sandbox = fed.sandbox
    if sandbox is None:
        return env
    if member.cloud != "aws" or sandbox.aws_endpoint is None:
        fed.refuse_in_sandbox(
            f"terraform of member {member.name!r} ({member.cloud}) would run against a real "
            "cloud: a sandbox runs AWS stacks only, against its moto_server"
            + ("" if member.cloud != "aws" else " (none is recorded: is the sandbox up?)"))
    from federation_deploy.sandbox.processes import moto_environment

    assert sandbox.aws_endpoint is not None
    return {**(env or {}), **moto_environment(sandbox.aws_endpoint)}


def for_member(
    fed: Federation,
    member_name: str,
    runner: Runner,
    *,
    env: Mapping[str, str] | None = None,
    binary: str = "terraform",
) -> tf.PinnedTerraform:
    """The pinned terraform of a member's stack, with its variables from federation.yaml."""
    member = fed.member(member_name)
    if member.terraform is None:
        with_stack = ", ".join(m.name for m in fed.members.values() if m.terraform) or "none"
        raise UsageError(f"member {member.name!r} has no terraform stack in federation.yaml "
                         f"(members with one: {with_stack})")
    stack = member.terraform.directory
    env = sandbox_environment(fed, member, env)
    return tf.PinnedTerraform(
        stack, fed.terraform_version, runner, name=f"{member.name} ({member.terraform.path})",
        member=member.name, variables=stack_variables(member, stack), env=env, binary=binary,
    )


def save_outputs(fed: Federation, member_name: str, outputs: Mapping[str, Any]) -> Path:
    """Write outputs to config/generated/<member>.terraform.json (terraform's `output -json`
    format) atomically. Sensitive outputs are left out: the file is committed."""
    path = fed.generated_outputs_file(member_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {k: v for k, v in sorted(outputs.items())
            if not (isinstance(v, Mapping) and v.get("sensitive"))}
    atomic_write_text(path, json.dumps(kept, indent=2, sort_keys=True) + "\n", mode=0o644)
    return path


def apply_member(fed: Federation, member: str, runner: Runner, *,
                 env: Mapping[str, str] | None = None,
                 confirm: Callable[[tf.SavedPlan], None] | None = None) -> tf.ApplyResult:
    """Apply the member's saved plan (after ``confirm``), then save its outputs for `render`."""
    stack = for_member(fed, member, runner, env=env)
    summary, text = stack.apply(confirm)
    outputs = stack.outputs()
    path = save_outputs(fed, member, outputs)
    return tf.ApplyResult(stack=stack.name, summary=summary, text=text, outputs=outputs,
                       outputs_file=path)


def bootstrap_member(
    fed: Federation,
    member_name: str,
    runner: Runner,
    *,
    env: Mapping[str, str] | None = None,
    binary: str = "terraform",
) -> tf.BootstrapResult:
    """Create (idempotently) the S3 bucket and DynamoDB table the member's backend names.

    Applies terraform/aws/bootstrap with the bucket, table and region read from the member's
    `backend "s3"` block. Its state is local, in the bootstrap stack's working area (per member);
    where that state is missing (another machine) but the bucket or table exist, the first apply
    fails saying so, and a second one imports them (the stack's `adopt_*` import blocks).
    """
    member = fed.member(member_name)
    if member.terraform is None:
        raise UsageError(f"member {member.name!r} has no terraform stack to bootstrap")
    env = sandbox_environment(fed, member, env)
    backend = terraform_files.parse_s3_backend(member.terraform.directory)
    if backend is None:
        raise UsageError(
            f"member {member.name!r}: stack {member.terraform.path} has no backend \"s3\"; "
            "bootstrap creates the S3 state bucket and DynamoDB lock table of AWS members"
        )
    stack = fed.terraform_root / terraform_files.BOOTSTRAP_STACK
    if not stack.is_dir():
        raise UsageError(f"bootstrap stack not found: {stack}")
    variables = {"region": backend.region, "state_bucket": backend.bucket,
                 "lock_table": backend.dynamodb_table}
    stack_tf = tf.PinnedTerraform(stack, fed.terraform_version, runner,
                                  name=f"bootstrap of {member.name}", member=member.name,
                                  variables=variables, env=env, binary=binary)
    stack_tf.check_version()
    stack_tf.require_lock_file()
    stack_tf.ensure_initialised()
    state = stack_tf.work_dir / member.name / "terraform.tfstate"
    state.parent.mkdir(parents=True, exist_ok=True)
    imported: list[str] = []
    try:
        changes, text = stack_tf.apply_local(state=state)
    except ToolError as exc:
        # Trying to create first costs nothing when they are new (the usual case); adopting
        # blindly would fail when they are not there.
        output = exc.stderr + exc.stdout
        if "BucketAlreadyExists" in output:
            raise exc.with_context(
                f"the bucket {backend.bucket} belongs to another AWS account",
                hint=f"bucket names are global: choose another in "
                     f"{display_path(backend.file)}:{backend.line}") from None
        adopt = {"adopt_bucket": "BucketAlreadyOwnedByYou" in output,
                 "adopt_table": "ResourceInUseException" in output
                 and "Table already exists" in output}
        if not any(adopt.values()):
            raise
        imported = [address for address, flag in (("aws_s3_bucket.state", "adopt_bucket"),
                                                  ("aws_dynamodb_table.lock", "adopt_table"))
                    if adopt[flag]]
        changes, text = stack_tf.apply_local(
            state=state, extra={k: str(v).lower() for k, v in adopt.items()})
    match = re.search(r"^Apply complete!.*$", text, re.MULTILINE)
    return tf.BootstrapResult(backend=backend, imported=tuple(imported), changes=changes,
                           summary=match.group(0) if match else text.strip()[-200:],
                           state_file=state)
