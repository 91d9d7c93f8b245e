"""Which member the redirector takes as its reference: the member whose /versions every other
member must match, and the last resort when no member is healthy.

The prime, normally. When the prime has been unhealthy for longer than `prime_fallback_after`
(a prime down for hours would otherwise keep stale versions as the reference, so that every
member deployed since fails its versions check and all launches go to the dead prime), the
healthiest member with the highest weight acts instead: a healthy one first, else one whose
/health passes and only its versions differ from the old reference. It acts until the prime
passes a check again. With no such member the reference stays where it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from federation_deploy.redirector.config import HostConfig, RedirectorConfig

# A member's health as the choice ranks it: healthy beats "only its versions differ from the
# reference" (its /health passed), which beats anything else (not a candidate).
HEALTHY, VERSIONS_ONLY, UNFIT = 2, 1, 0


@dataclass(frozen=True)
class Reference:
    """The acting reference: its name, whether it is the configured prime, and why."""

    name: str
    prime: bool
    reason: str

    def as_json(self) -> dict[str, object]:
        return {"member": self.name, "prime": self.prime, "reason": self.reason}


class ReferenceKeeper:
    """Keeps the acting reference as checks come in (choose() is called after each one and on
    every config change); remembers since when the prime is unhealthy."""

    def __init__(self) -> None:
        self.unhealthy_since: float | None = None
        self.current: Reference | None = None

    def choose(self, config: RedirectorConfig, ranks: Mapping[str, int],
               checked: Mapping[str, bool], now: float) -> Reference:
        """The reference now. ranks: each member's HEALTHY/VERSIONS_ONLY/UNFIT; checked:
        whether it has completed a check (a prime not checked yet is not unhealthy)."""
        primes = config.primes
        healthy = [p for p in primes if ranks.get(p.name) == HEALTHY]
        if healthy:
            self.unhealthy_since = None
            return self._set(Reference(healthy[0].name, True, "the prime is healthy"))
        prime = primes[0]
        if not any(checked.get(p.name) for p in primes):
            self.unhealthy_since = None
            return self._set(Reference(prime.name, True, "the prime has not been checked yet"))
        if self.unhealthy_since is None:
            self.unhealthy_since = now
        down = now - self.unhealthy_since
        after = config.prime_fallback_after
        if down < after:
            return self._set(Reference(
                prime.name, True, f"the prime is unhealthy for {down:.0f}s; another member "
                f"acts after {after:g}s (prime_fallback_after)"))
        why = (f"the prime {prime.name} has been unhealthy for {down:.0f}s, longer than "
               f"prime_fallback_after ({after:g}s)")
        best = best_member(config.hosts, ranks, {p.name for p in primes})
        if best is not None:
            return self._set(Reference(best.name, False, f"{why}: {best.name} is the "
                                       "healthiest member with the highest weight"))
        kept = self.current
        if kept is not None and not kept.prime and config.host(kept.name) is not None:
            return self._set(Reference(kept.name, False, f"{why}, and no member is healthy "
                                       f"now: {kept.name} stays the reference"))
        return self._set(Reference(prime.name, True, f"{why}, but no other member is fit to "
                                   "act for it"))

    def _set(self, reference: Reference) -> Reference:
        self.current = reference
        return reference


def best_member(hosts: tuple[HostConfig, ...], ranks: Mapping[str, int],
                excluded: set[str]) -> HostConfig | None:
    """The fittest non-prime member (healthy before versions-only), highest weight first,
    then by name; None when none is fit."""
    fit = [h for h in hosts if h.name not in excluded and ranks.get(h.name, UNFIT) > UNFIT]
    if not fit:
        return None
    return min(fit, key=lambda h: (-ranks[h.name], -h.weight, h.name))
