"""Command `verify`: a member's /health and /versions, retried (the deploy's verify stage
alone, for any member, external ones too)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, Member
from federation_deploy.health.probe import Fetch, Retry, VerifyResult, http_get, verify_member

__all__ = ["Retry", "prime_versions_url", "verify", "verify_summary"]


def prime_versions_url(fed: Federation, member: Member) -> str | None:
    """Where the prime's /versions are, for a member whose versions must equal them (the
    redirector's rule); None for the prime itself."""
    prime = next((m for m in fed.routed if m.prime), None)
    return None if prime is None or prime.name == member.name else prime.versions_url


def verify(
    fed: Federation,
    member: str,
    *,
    progress: Callable[[str], None],
    retry: Retry | None = None,
    fetch: Fetch = http_get,
    sleep: Callable[[float], None] = time.sleep,
) -> CommandResult:
    """The verify stage alone (any member, external ones too): /health and /versions with
    retries; the result as JSON on stdout. VerificationError (exit 1) when it fails."""
    target = fed.member(member)
    result = verify_member(target, retry, fetch=fetch, sleep=sleep, progress=progress,
                           pod_headroom=fed.redirector.pod_headroom,
                           prime_versions_url=prime_versions_url(fed, target))
    return CommandResult(
        stdout=json.dumps({"member": result.member, "health": result.health,
                           "versions": result.versions}, indent=2) + "\n",
        messages=tuple(verify_summary(result)))


def verify_summary(result: VerifyResult) -> list[str]:
    checks = result.health.get("checks", [])
    versions = ", ".join(f"{k} {v}" for k, v in result.versions.items()
                         if isinstance(v, str | int | float)) or "none listed"
    return [f"verify: {result.member} healthy ({len(checks)} check(s) ok), versions: {versions}"]
