"""`deploy` in a sandbox: no credentials and no cluster; the redirector member's weights go to
the sandbox's own redirector, the other releases are named as not deployed."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from federation_deploy.config import Federation, Hook, Member
from federation_deploy.traffic.publish import publish_file

Progress = Callable[[str], None]


def sandbox_stages(fed: Federation, member: Member, stages: Sequence[str],
                   releases: Sequence[str] | None, hooks: Sequence[Hook],
                   say: Progress) -> list[str]:
    """What replaces auth, releases and rollout in a sandbox, whose members are stand-ins on
    127.0.0.1: the redirector release publishes the weights to the sandbox's redirector file
    (compare-and-swap, as every publish); nothing else runs. Returns the releases published."""
    sandbox = fed.sandbox
    assert sandbox is not None  # the command checked
    say(f"sandbox ({sandbox.location}): member {member.name} is a stand-in on 127.0.0.1: no "
        "credentials are fetched and no cluster is touched")
    published: list[str] = []
    if "releases" in stages:
        names = list(releases or [r.name for r in member.releases])
        if member.name == fed.redirector.member and fed.redirector.release in names:
            publish_file(fed, sandbox.redirector_config, progress=say)
            say(f"stage releases: {fed.redirector.release}: generation {fed.generation} of the "
                f"weights published to the sandbox's redirector "
                f"(file:{sandbox.redirector_config})")
            published.append(fed.redirector.release)
        skipped = [n for n in names if n not in published]
        if skipped:
            say(f"stage releases: {', '.join(skipped)} not deployed: a sandbox member has no "
                "cluster")
    if hooks:
        say(f"hooks {', '.join(h.name for h in hooks)} not run: hooks may reach a real "
            "cluster or cloud, which a sandbox never does")
    return published
