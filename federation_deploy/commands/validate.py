"""Command `validate`: load and check all config (values, chart and terraform pins); change
nothing."""

from __future__ import annotations

from pathlib import Path

from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, load_federation
from federation_deploy.config.problems import one_resolution
from federation_deploy.errors import ConfigError, Problem
from federation_deploy.values.render import SharedMerges, render_member, secrets_note


# one load: each path's links resolved once for all the releases rendered
@one_resolution
def validate(config_dir: Path, *, without_secrets: bool = False) -> CommandResult:
    """Load everything and check it; raise ConfigError listing every problem. Changes nothing.
    Messages: the warnings, then a count of what was checked. Files locked with git-crypt
    are warned about (the loader did), never read; without_secrets leaves out every secret
    layer (the stand-in in their place)."""
    fed = load_federation(config_dir)
    problems: list[Problem] = list(fed.freeze_problems)
    problems += _terraform_pin_problems(fed)
    rendered = []
    shared: SharedMerges = {}  # the common layer merged once per release name
    for member in fed.members.values():
        if member.deployable:
            # renders every layer, so a values file that cannot merge is caught here too
            rendered += render_member(fed, member.name, without_secrets=without_secrets,
                                      skip_locked=True, shared=shared)
    # what --without-secrets left out, once for every member (it was a line per member)
    note = secrets_note(rendered)
    notes = [note] if note else []
    if problems:
        raise ConfigError(problems)
    releases = sum(len(m.releases) for m in fed.members.values())
    return CommandResult(messages=(
        # a note (advice, nothing wrong) says so itself; anything else is a warning
        *(w if w.startswith("note: ") else f"warning: {w}" for w in fed.warnings),
        *notes,
        f"config valid: {len(fed.members)} members, {releases} releases",
    ))


def _terraform_pin_problems(fed: Federation) -> list[Problem]:
    from federation_deploy.commands.terraform import check_terraform_pins

    return check_terraform_pins(fed)
