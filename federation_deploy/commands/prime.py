"""Command `traffic prime`: move the prime role to another member, written and published as
a weight change is (one writer: the writer lock, a compare-and-swap of federation.yaml with
`generation:` one more, the publish refused over a newer generation, then a wait until the
redirector serves it).

The prime is the redirector's versions reference (every other member must run its versions)
and its last resort (every launch goes there when no member is healthy; other paths are
proxied to it). So the new prime must be one of ours (not external: its versions are not ours
to choose), routed, in rotation (weight > 0, not drained) and not in the middle of a ramp.
A freeze refuses it, as it refuses `traffic set`; the move is announced like a weight change.
"""

from __future__ import annotations

from collections.abc import Callable

from ruamel.yaml.comments import CommentedMap

from federation_deploy.actions.notify import Event
from federation_deploy.commands.announce import announced
from federation_deploy.commands.freeze import refuse_when_frozen
from federation_deploy.commands.ramp import ramp_io
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, Member
from federation_deploy.errors import ConfigError, UsageError
from federation_deploy.runner import Runner
from federation_deploy.traffic.publish import PublishRequest as PublishRequest  # for the CLI
from federation_deploy.traffic.publish import publisher_for
from federation_deploy.traffic.ramp.engine import (
    Clock,
    Progress,
    Publish,
    RampEngine,
    RampSettings,
)
from federation_deploy.traffic.weights import ConfigSnapshot, write_federation, writer_lock

Confirm = Callable[[str], None]
# what move_prime says when member is the prime already, and served as such (exit 0)
ALREADY = "is already the prime, and the redirector serves it: nothing to do"


def prime(fed: Federation, member: str, request: PublishRequest, *, runner: Runner,
          progress: Progress, confirm: Confirm) -> CommandResult:
    """`traffic prime MEMBER`: published as requested; stdout says what was done."""
    request = request.for_federation(fed)  # a sandbox's own redirector by default
    publisher, settle = publisher_for(request, runner, progress)
    settings = RampSettings(redirector_url=request.redirector_url, settle_timeout=settle)
    message = move_prime(fed, member, publisher, settings=settings, progress=progress,
                         confirm=confirm)
    if message.endswith(ALREADY):
        return CommandResult(stdout=message + "\n")  # nothing changed: nothing to announce
    # announced like every weight change (Grafana, the webhook)
    return announced(fed, Event("weights", "prime", message, member),
                     CommandResult(stdout=message + "\n"))


def prime_refusal(fed: Federation, m: Member) -> str | None:
    """Why m cannot be the prime, or None."""
    if not m.deployable:
        return (f"{m.name} is external (run by a partner): the prime's versions are the "
                "reference every member must run, and an external member's are not ours to "
                "choose")
    if not m.routed:
        return f"{m.name} is not routed (routed: false): the prime must receive launches"
    if m.drained is not None:
        return (f"{m.name} is drained since {m.drained.since} ({m.drained.reason}): restore "
                f"it first (`federation-deploy traffic restore {m.name}`)")
    if m.weight <= 0:
        return (f"{m.name} is at weight 0 (out of rotation): the prime is the last resort when "
                "no member is healthy; give it a weight first")
    if m.ramp is not None:
        return (f"{m.name} is being ramped (step {m.ramp.step + 1}/{len(m.ramp.steps)}): let "
                "the ramp finish first")
    return None


def move_prime(
    fed: Federation, member: str, publisher: Publish, *,
    settings: RampSettings | None = None, clock: Clock | None = None,
    progress: Progress | None = None, confirm: Confirm | None = None,
) -> str:
    """Make member the prime (the current prime loses the role), publish, wait; the message.
    Already the prime: published again if the redirector was not given it (a failed publish
    after the write), else nothing to do (said, exit 0: idempotent)."""
    m = fed.member(member)
    # a deliberate change, like `traffic set`: a freeze refuses it (drain and restore pass)
    refuse_when_frozen(fed, f"traffic prime {member}", clock, progress)
    current = next((o for o in fed.routed if o.prime), None)
    io = ramp_io(publisher, clock, progress, None)
    with writer_lock(fed.config_dir, f"traffic prime {member}"):
        engine = RampEngine.for_change(fed, member, m.weight, settings or RampSettings(), io)
        if m.prime:
            if engine.republish(ramp_flag=False, done=f"{member} prime: published",
                                failed=f"{member} prime"):
                return f"{member} is the prime (federation.yaml already said so): now published"
            return f"{member} {ALREADY}"  # idempotent: exit 0
        refusal = prime_refusal(fed, m)
        if refusal is not None:
            raise UsageError(f"{member} cannot be the prime: {refusal}")
        was = current.name if current is not None else "none"
        if confirm is not None:
            confirm(f"Move the prime from {was} to {member}? (the versions reference and the "
                    "last resort when no member is healthy)")
        engine.change(lambda config: write_prime(config, member), ramp_flag=False,
                      done=f"prime moved from {was} to {member} and published",
                      failed=f"prime moved to {member}")
    return (f"{member} is the prime (was {was}): the redirector compares every member's "
            f"versions with {member}'s and sends every launch there when no member is healthy")


def write_prime(snapshot: ConfigSnapshot, member: str) -> ConfigSnapshot:
    """`prime: true` on member (after its `cloud:`), and the key removed from every other
    member; round-trip, a compare-and-swap with `generation:` one more."""
    display = str(snapshot.fed.path)

    def edit(data: CommentedMap) -> None:
        members = data.get("members")
        if not isinstance(members, CommentedMap) or \
                not isinstance(members.get(member), CommentedMap):
            raise ConfigError.single(display, None, f"members.{member}",
                                     "member not found while moving the prime")
        for name, node in members.items():
            if name != member and isinstance(node, CommentedMap) and "prime" in node:
                del node["prime"]
        node = members[member]
        if "prime" in node:
            node["prime"] = True
        else:
            keys = list(node)
            at = keys.index("cloud") + 1 if "cloud" in keys else len(keys)
            node.insert(at, "prime", True)

    return write_federation(snapshot, edit)
