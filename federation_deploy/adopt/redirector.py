"""Which member's federationRedirect values are the federation's redirector, when that is
clear; and what to say (and refuse) when it is not.

Several members' values may enable a redirector: the federation's (prod's, routing to the
other members), staging's own for its test host, a member's sidecar. adopt used to take the
first by a sort, so a repository whose prod values lost their block adopted staging's as the
federation's: staging prime with weight 100 and every real member `routed: false`, exit 0
(issue 29). A guess is never made: the one candidate that is not staging and routes to
another member, or the member named by --redirector-member; else the ambiguity is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from federation_deploy.adopt.sources import Unmapped
from federation_deploy.errors import UsageError

OPTION = "--redirector-member"
Candidate = tuple[str, dict[str, Any]]  # (member, its federationRedirect block)


@dataclass(frozen=True)
class RedirectorChoice:
    """The federation's redirector (None: none found, or refused) and what to say."""

    chosen: Candidate | None
    others: tuple[Candidate, ...] = ()
    refused: Unmapped | None = None


def _foreign_hosts(candidate: Candidate) -> list[str]:
    member, block = candidate
    return [str(key) for key in (block.get("hosts") or {}) if key != member]


def _describe(candidate: Candidate) -> str:
    member, block = candidate
    hosts = ", ".join(str(k) for k in block.get("hosts") or {})
    host = f"{block['host']}, " if block.get("host") else ""
    return f"{member} ({host}hosts: {hosts})"


def choose_redirector(candidates: Sequence[Candidate], staging: Sequence[str],
                      named: str | None) -> RedirectorChoice:
    """The candidate named (UsageError when it has no such values), else the one candidate
    that is not a staging member and routes to a host other than itself; none or several
    such: refused (a blocking Unmapped saying what was found and how to say which)."""
    if named is not None:
        for candidate in candidates:
            if candidate[0] == named:
                return RedirectorChoice(candidate, tuple(c for c in candidates if c[0] != named))
        found = ", ".join(c[0] for c in candidates) or "none"
        raise UsageError(f"{OPTION} {named}: its plain values (config/common/*.yaml, "
                         f"config/{named}.yaml over the chart's) do not enable "
                         f"federationRedirect with hosts (members whose values do: {found})")
    if not candidates:
        return RedirectorChoice(None)
    federation_like = [c for c in candidates if c[0] not in staging and _foreign_hosts(c)]
    if len(federation_like) == 1:
        chosen = federation_like[0]
        return RedirectorChoice(chosen, tuple(c for c in candidates if c is not chosen))
    found = "; ".join(_describe(c) for c in candidates)
    if federation_like:
        why = (f"{len(federation_like)} members' values enable a redirector that routes to "
               f"other members: {found}")
    else:
        why = ("no member's values enable a redirector of the federation's kind (of a member "
               "that is not CD's staging, routing to other members); found only: "
               f"{found}. The member that runs the federation's redirector (prod, in "
               "mybinder.org-deploy) has no federationRedirect block with hosts in its values")
    return RedirectorChoice(None, tuple(candidates), Unmapped(
        "the federation redirector (which member runs it is ambiguous)",
        "config/*.yaml",
        f"{why}. adopt does not guess: a wrong guess routes every launch to one member. Say "
        f"which member runs it with `federation-deploy adopt PATH {OPTION} NAME --force`, or "
        "write redirector: {host, member, release} and each member's weight and prime (or "
        "routed: false) in federation.yaml by hand",
        blocking=True))


def redirector_section(member: str, block: Mapping[str, Any]) -> dict[str, Any]:
    """federation.yaml's `redirector:` from the chosen member's federationRedirect block."""
    section: dict[str, Any] = {"host": block.get("host"), "member": member,
                               "release": "mybinder"}
    for key in ("load_balancer", "check", "pod_headroom", "host_cookie_age_hours"):
        if key in block:
            section[key] = block[key]
    return {k: v for k, v in section.items() if v is not None}
