"""`deploy` in a sandbox: no credentials and no cluster; the redirector member's weights go to
the sandbox's own redirector, the other releases are named as not deployed."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from federation_deploy.config import Federation, Hook, Member
from federation_deploy.errors import ToolError
from federation_deploy.health import http
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
        published += sandbox_versions(fed, member, [n for n in names if n not in published],
                                      rolled_back=False, say=say)
        skipped = [n for n in names if n not in published]
        if skipped:
            say(f"stage releases: {', '.join(skipped)} not deployed: a sandbox member has no "
                "cluster")
    if hooks:
        say(f"hooks {', '.join(h.name for h in hooks)} not run: hooks may reach a real "
            "cluster or cloud, which a sandbox never does")
    return published


def sandbox_versions(fed: Federation, member: Member, releases: Sequence[str], *,
                     rolled_back: bool, say: Progress) -> list[str]:
    """A rollout's chart in a sandbox: the stand-in is told to report the version its release
    now has in /versions (or, rolled back, the rollout's old one), as BinderHub would once
    deployed. Returns the releases so handled (none outside a rollout)."""
    rollout = fed.rollout
    if rollout is None:
        return []
    chosen = [n for n in releases if member.release(n).pin == rollout.chart]
    if not chosen:
        return []
    version = rollout.from_version if rolled_back else member.release(chosen[0]).version
    url = f"{member.url}/_standin/state"
    current = json.loads(http.get(url, 5).text).get("versions") or {}
    answer = http.request("PUT", url, 5,
                          json_body={"versions": {**current, rollout.versions_key: version}})
    if answer.status >= 400:
        raise ToolError([url], None, summary=f"the stand-in {member.name} answered HTTP "
                                             f"{answer.status} to PUT {url}")
    say(f"stage releases: {', '.join(chosen)}: the stand-in {member.name} now reports "
        f"{rollout.versions_key} {version}")
    return chosen
