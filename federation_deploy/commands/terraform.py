"""The `terraform` commands: bootstrap, init, plan, apply, check, output, lock of a member."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from ..actions import terraform as tf
from ..config import Federation
from ..errors import EXIT_CHANGES, Problem
from ..render import REDACTED
from ..runner import Runner
from .result import CommandResult


def check_terraform_pins(fed: Federation) -> list[Problem]:
    """For `validate`: every stack's required_version equals the pinned terraform version."""
    return tf.check_terraform_pins(fed)


def bootstrap(fed: Federation, member: str, runner: Runner,
              env: Mapping[str, str] | None = None) -> CommandResult:
    result = tf.bootstrap_member(fed, member, runner, env=env)
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
    stack = tf.for_member(fed, member, runner, env=env)
    stack.init()
    return CommandResult(messages=(f"initialised {stack.name} (lock file read-only, unchanged)",))


def plan(fed: Federation, member: str, runner: Runner,
         env: Mapping[str, str] | None = None) -> CommandResult:
    result = tf.for_member(fed, member, runner, env=env).plan()
    messages = [result.summary.line]
    if result.summary.changes:
        messages.append(f"plan saved to {result.plan_file}; apply it with "
                        f"`federation-deploy terraform apply {member}`")
    else:
        messages.append(f"plan saved to {result.plan_file} (nothing to apply)")
    return CommandResult(stdout=result.text, messages=tuple(messages))


def apply(fed: Federation, member: str, runner: Runner, confirm: Callable[[str], None],
          env: Mapping[str, str] | None = None) -> CommandResult:
    """Apply the member's saved plan after `confirm` (which raises to abort)."""

    def ask(saved: tf.SavedPlan) -> None:
        confirm(f"Apply the plan of {saved.stack} made {saved.created} ({saved.summary.line})?")

    result = tf.apply_member(fed, member, runner, env=env, confirm=ask)
    messages = [f"applied {result.stack}: {result.summary.line}"]
    if result.outputs_file is not None:
        messages.append(f"outputs saved to {result.outputs_file} (commit it: render uses it)")
    return CommandResult(stdout=result.text, messages=tuple(messages))


def check(fed: Federation, member: str, runner: Runner,
          env: Mapping[str, str] | None = None) -> CommandResult:
    """Drift detection: exit 0 no drift, 3 drift (errors raise, exit 1)."""
    stack = tf.for_member(fed, member, runner, env=env)
    summary, text = stack.check()
    if summary.changes:
        return CommandResult(exit_code=EXIT_CHANGES, stdout=text,
                      messages=(f"drift in {stack.name}: {summary.line}",))
    return CommandResult(messages=(f"no drift in {stack.name}",))


def output(fed: Federation, member: str, runner: Runner, fmt: str = "text",
           env: Mapping[str, str] | None = None) -> CommandResult:
    outputs = tf.for_member(fed, member, runner, env=env).outputs()
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
    stack = tf.for_member(fed, member, runner, env=env)
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
