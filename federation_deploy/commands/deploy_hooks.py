"""Member hooks in a deploy: which run (--stage), their argv placeholders, running them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from federation_deploy.config import Federation, Hook, Member
from federation_deploy.config.schema import STAGES
from federation_deploy.errors import ToolError, UsageError
from federation_deploy.runner import Runner

HOOKS = "hooks"  # `--stage hooks`: every hook of the member
CLUSTER_STAGES = frozenset({"auth", "releases", "rollout"})


def split_requested(requested: Sequence[str], member: Member) -> tuple[list[str], tuple[Hook, ...]]:
    """--stage values: deploy stages, `hooks` (all of the member's) or hook names."""
    by_name = {h.name: h for h in member.hooks}
    stages: list[str] = []
    names: set[str] = set()
    for item in requested:
        if item in STAGES:
            stages.append(item)
        elif item == HOOKS:
            if not by_name:
                raise UsageError(f"--stage hooks: member {member.name} has no hooks "
                                 f"(members.{member.name}.hooks in federation.yaml)")
            names.update(by_name)
        elif item in by_name:
            names.add(item)
        else:
            hooks = ", ".join(by_name) or "none"
            raise UsageError(f"unknown stage {item!r} (stages: {', '.join(STAGES)}, hooks; "
                             f"hooks of {member.name}: {hooks})")
    return stages, tuple(h for h in member.hooks if h.name in names)


def needs_cluster(hooks: Sequence[Hook]) -> bool:
    """Hooks after auth, releases or rollout run with the member's credentials."""
    return any(h.after in CLUSTER_STAGES for h in hooks)


def hook_argv(hook: Hook, fed: Federation, member: Member, kubeconfig: Path | None) -> list[str]:
    """The argv with its placeholders filled in: {member}, {namespace} and {release} (of the
    member's last release, the one deploy.py deployed last), {config_dir}, {kubeconfig} (the
    run's private one; a run without one refuses such a hook up front: without_kubeconfig)."""
    values = {**member.hook_placeholders(), "config_dir": str(fed.config_dir.resolve())}
    if kubeconfig is not None:
        values["kubeconfig"] = str(kubeconfig)
    elif hook.uses("kubeconfig"):
        raise UsageError(f"hook {hook.name!r} of {member.name} ({hook.location}) names "
                         "{kubeconfig}, and this run has no cluster credentials")
    return hook.filled_argv(values)


def without_kubeconfig(member: Member, hooks: Sequence[Hook], stages: Sequence[str],
                       say: Callable[[str], None]) -> None:
    """Before anything runs, for a run that gets no cluster credentials (no auth stage): a
    hook that names {kubeconfig} is refused, the others are said to run without any
    (KUBECONFIG removed from their environment: never the user's cluster)."""
    if not hooks:
        return
    chosen = ", ".join(stages) or "none"
    for hook in hooks:
        if hook.uses("kubeconfig"):
            raise UsageError(
                f"hook {hook.name!r} of {member.name} ({hook.location}) names {{kubeconfig}}, "
                f"and this run gets no cluster credentials (stages: {chosen}); add the auth "
                "stage (--stage auth) or leave the hook out")
    say(f"hooks {', '.join(h.name for h in hooks)} of {member.name} run without a kubeconfig "
        f"(stages: {chosen}: no cluster credentials); KUBECONFIG is removed from their "
        "environment")


def hook_env(kubeconfig: Path | None) -> dict[str, str | None]:
    """Every hook's KUBECONFIG: the run's private one, or none at all (never the user's)."""
    return {"KUBECONFIG": str(kubeconfig) if kubeconfig is not None else None}


def run_hooks(
    runner: Runner,
    fed: Federation,
    member: Member,
    hooks: Sequence[Hook],
    after: str,
    *,
    kubeconfig: Path | None,
    say: Callable[[str], None],
) -> list[str]:
    """Run the hooks that come after stage `after`, in order, in the config directory; the
    run's private KUBECONFIG in their environment (none when the run has none). A failing hook stops
    the deploy: ToolError naming it (exit 1)."""
    ran: list[str] = []
    for hook in (h for h in hooks if h.after == after):
        argv = hook_argv(hook, fed, member, kubeconfig)
        say(f"hook {hook.name} (after {after}) of {member.name}")
        env = hook_env(kubeconfig)
        for attempt in range(1, hook.attempts + 1):
            try:
                proc = runner.run(argv, cwd=fed.config_dir, env=env, timeout=hook.timeout)
                break
            except ToolError as exc:
                how = (f"timed out after {hook.timeout:g}s" if exc.returncode is None
                       else f"failed with exit {exc.returncode}")
                if attempt < hook.attempts:
                    say(f"hook {hook.name} {how} (attempt {attempt} of {hook.attempts}): "
                        "running it again")
                    continue
                tries = f" ({hook.attempts} attempts)" if hook.attempts > 1 else ""
                raise exc.with_context(
                    f"hook {hook.name!r} of {member.name} (after {after}, {hook.location}) "
                    f"{how}{tries}; the stages after it did not run", stage=HOOKS) from None
        for line in (proc.stdout or "").splitlines():
            say(f"  {line}")  # the hook's own report, censored by the Runner
        ran.append(hook.name)
    return ran
