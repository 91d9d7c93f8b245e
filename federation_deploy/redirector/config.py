"""Parse and validate the redirector's config.json (mybinder's `federationRedirect` values)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

LOAD_BALANCERS = ("rendezvous", "random")
# How a ramping member gets its share: "sticky" (a set of repositories whose estimated launches
# make up the share; each repository on one member) or "per-launch" (a uniform draw per launch:
# exact without any estimate, but a repository lands on two members). benchmarks/ramp_policy.py
# measures both; sticky keeps the share on target with far fewer cold launches.
RAMP_POLICIES = ("sticky", "per-launch")
DEFAULT_RAMP_POLICY = "sticky"

# Defaults of mybinder's redirector (its built-in CONFIG), so that a config.json written for it
# behaves the same here when it leaves a setting out. federation.yaml's schema imports them:
# they are defined here only. Check timings are seconds (retries: attempts per endpoint).
DEFAULT_LOAD_BALANCER = "rendezvous"
DEFAULT_CHECK_PERIOD = 10.0
DEFAULT_CHECK_JITTER = 0.1
DEFAULT_CHECK_RETRIES = 5
DEFAULT_CHECK_TIMEOUT = 2.0
DEFAULT_CHECK_FAILED_PERIOD = 300.0
DEFAULT_POD_HEADROOM = 10
DEFAULT_HOST_COOKIE_AGE_HOURS = 4.0
# seconds the prime may be unhealthy before the healthiest highest-weight member acts as the
# versions reference and last resort (reference.py); it acts until the prime recovers
DEFAULT_PRIME_FALLBACK_AFTER = 600.0

# Bounds of config.json's numbers, the same in federation.yaml's schema (which imports them):
# beyond them a value passed validation and failed where it was used (a host cookie of 10^9
# hours made every /build answer 500: its expiry date is past year 9999).
# Weights are relative; the bound keeps their sum (and every share) a finite number, and a
# non-zero weight below MIN_WEIGHT (1e-300, written as 300 digits) is refused as a typo.
MAX_WEIGHT = 1_000_000
MIN_WEIGHT = 0.0001
# seconds (check timings, prime_fallback_after): the deploy side's longest duration too
MAX_SECONDS = 30 * 86400.0
MAX_HOST_COOKIE_AGE_HOURS = 10 * 365 * 24  # ten years
MAX_CHECK_RETRIES = 100
MAX_POD_HEADROOM = 100_000

# A member URL ends up verbatim in a Location header and in the `host` cookie's value, so it is
# restricted to characters that cannot break out of either.
_SAFE_PATH = re.compile(r"[A-Za-z0-9._~/%!$&'()*+,=:@-]*")
_SAFE_NETLOC = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


class RedirectorConfigError(Exception):
    """config.json is unreadable or invalid; names the offending key (dotted path)."""

    def __init__(self, key: str, message: str, source: str | None = None) -> None:
        self.key = key
        self.message = message
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"

    def with_source(self, source: str) -> RedirectorConfigError:
        return RedirectorConfigError(self.key, self.message, source)


@dataclass(frozen=True)
class HostConfig:
    """One federation member as the redirector routes to it."""

    name: str
    url: str
    weight: float
    prime: bool = False
    ramp: bool = False
    health: str = ""
    versions: str = ""
    # a ramping member's weight once its ramp completes (published only with `ramp: true`):
    # the sticky ramp picks its repositories among those plain rendezvous gives it there
    final_weight: float | None = None

    def as_json(self) -> dict[str, Any]:
        """The shape mybinder's /active_hosts serves (its config entry), plus `ramp`, and
        `final_weight` when the config set one."""
        entry: dict[str, Any] = {
            "url": self.url,
            "weight": _plain(self.weight),
            "prime": self.prime,
            "ramp": self.ramp,
            "health": self.health,
            "versions": self.versions,
        }
        if self.final_weight is not None:
            entry["final_weight"] = _plain(self.final_weight)
        return entry


def _plain(number: float) -> int | float:
    """5.0 -> 5: a weight served back as config.json wrote it (an integer stays one)."""
    return int(number) if number.is_integer() else number


@dataclass(frozen=True)
class CheckConfig:
    """Health check timing: seconds, except retries (attempts per endpoint)."""

    period: float = DEFAULT_CHECK_PERIOD
    jitter: float = DEFAULT_CHECK_JITTER
    retries: int = DEFAULT_CHECK_RETRIES
    timeout: float = DEFAULT_CHECK_TIMEOUT
    failed_period: float = DEFAULT_CHECK_FAILED_PERIOD


@dataclass(frozen=True)
class RedirectorConfig:
    """The validated config: only routable hosts (null and weight-0 non-primes are dropped)."""

    hosts: tuple[HostConfig, ...]
    check: CheckConfig = field(default_factory=CheckConfig)
    load_balancer: str = DEFAULT_LOAD_BALANCER
    pod_headroom: int = DEFAULT_POD_HEADROOM
    host_cookie_age_hours: float = DEFAULT_HOST_COOKIE_AGE_HOURS
    ramp_policy: str = DEFAULT_RAMP_POLICY
    dropped: tuple[str, ...] = ()
    ignored_keys: tuple[str, ...] = ()
    # the weights' generation the deploy side published (None in a config from before it, or
    # written by hand); reported in /active_hosts so a writer can see what is served
    generation: int | None = None
    # while a rollout's rings run: /versions key -> the versions a member may report there
    # (either side of the rollout); None: every member's /versions must equal the prime's
    accepted_versions: Mapping[str, tuple[str, ...]] | None = None
    prime_fallback_after: float = DEFAULT_PRIME_FALLBACK_AFTER

    def host(self, name: str) -> HostConfig | None:
        for host in self.hosts:
            if host.name == name:
                return host
        return None

    @property
    def primes(self) -> tuple[HostConfig, ...]:
        return tuple(h for h in self.hosts if h.prime)


_TOP_KEYS = {
    "hosts", "check", "load_balancer", "pod_headroom", "host_cookie_age_hours", "ramp_policy",
    "generation", "accepted_versions", "prime_fallback_after",
}
_HOST_KEYS = {"url", "weight", "prime", "ramp", "final_weight", "health", "versions"}
_CHECK_KEYS = {"period", "jitter", "retries", "timeout", "failed_period"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _number(value: Any, key: str, *, minimum: float, strict: bool = False,
            maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RedirectorConfigError(key, f"expected a number, got {_kind(value)}")
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        finite = False
    if not finite:
        raise RedirectorConfigError(key, f"expected a finite number, got {_short(value)}")
    if value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise RedirectorConfigError(key, f"expected a number {relation} {minimum:g}, "
                                         f"got {_short(value)}")
    if maximum is not None and value > maximum:
        raise RedirectorConfigError(key, f"expected a number <= {maximum:g}, got {_short(value)}")
    return float(value)


def _weight(value: Any, key: str, *, positive: bool = False) -> float:
    """A weight: 0 (unless positive), or from MIN_WEIGHT to MAX_WEIGHT."""
    weight = _number(value, key, minimum=0, strict=positive, maximum=MAX_WEIGHT)
    if 0 < weight < MIN_WEIGHT:
        raise RedirectorConfigError(
            key, f"expected 0 or a weight >= {MIN_WEIGHT:g}, got {_short(value)}")
    return weight


def _short(value: Any) -> str:
    """A number as an error message quotes it: never 300 digits."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:10]}…({len(text)} digits)"


def _integer(value: Any, key: str, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise RedirectorConfigError(key, f"expected an integer, got {_kind(value)}")
    if value < minimum:
        raise RedirectorConfigError(key, f"expected an integer >= {minimum}, got {_short(value)}")
    if maximum is not None and value > maximum:
        raise RedirectorConfigError(key, f"expected an integer <= {maximum}, got {_short(value)}")
    return value


# The largest generation: helm reads values as JSON into float64, exact up to 2**53; above
# it a published generation would come back rounded (and the compare-and-swap be wrong).
MAX_GENERATION = 2**53 - 1


def _boolean(value: Any, key: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise RedirectorConfigError(key, f"expected true or false, got {_kind(value)}")
    return value


def member_url_problem(value: str) -> str | None:
    """Why the redirector refuses value as a member URL, or None when it takes it.

    The one check of member URLs: the deploy side's `validate` imports it, so a URL that
    passes validate never makes the redirector's pods refuse their config.
    """
    url = value.strip().rstrip("/")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        return "expected an http(s) URL"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "expected an http(s) URL"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return "a member URL takes no query or fragment"
    if not _SAFE_NETLOC.fullmatch(parts.netloc) or not _SAFE_PATH.fullmatch(parts.path):
        return ("unexpected characters in URL (no user:password@, spaces, quotes or "
                "non-ASCII host)")
    return None


def url_identity(url: str) -> str:
    """What makes two member URLs the same member: scheme and host without case, the path
    without trailing slashes (https://OVH2.mybinder.org/ is https://ovh2.mybinder.org)."""
    parts = urlsplit(url.strip().rstrip("/"))
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"


def same_urls(urls: Mapping[str, str]) -> list[tuple[str, str]]:
    """(name, earlier name) for each member whose URL is an earlier member's (url_identity).
    The one check of duplicate URLs: the redirector's loader and the deploy side's validate."""
    seen: dict[str, str] = {}
    found: list[tuple[str, str]] = []
    for name, url in urls.items():
        identity = url_identity(url)
        if identity in seen:
            found.append((name, seen[identity]))
        else:
            seen[identity] = name
    return found


def _url(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise RedirectorConfigError(key, f"expected a URL string, got {_kind(value)}")
    problem = member_url_problem(value)
    if problem is not None:
        raise RedirectorConfigError(key, f"{problem}: {value!r}")
    return value.strip().rstrip("/")


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RedirectorConfigError(key, f"expected an object, got {_kind(value)}")
    return value


def _parse_host(name: str, raw: Mapping[str, Any], ignored: list[str]) -> HostConfig:
    key = f"hosts.{name}"
    if "url" not in raw:
        raise RedirectorConfigError(f"{key}.url", "missing (every host needs a url)")
    if "weight" not in raw:
        raise RedirectorConfigError(f"{key}.weight", "missing (a number >= 0)")
    url = _url(raw["url"], f"{key}.url")
    health = raw.get("health")
    versions = raw.get("versions")
    ignored.extend(f"{key}.{k}" for k in raw if k not in _HOST_KEYS)
    weight = _weight(raw["weight"], f"{key}.weight")
    prime = _boolean(raw.get("prime"), f"{key}.prime")
    ramp = _boolean(raw.get("ramp"), f"{key}.ramp")
    final_weight = raw.get("final_weight")
    if final_weight is not None:
        # bounded as `weight` is (finite), and > 0: a ramp that ends at 0 is an abort
        final_weight = _weight(final_weight, f"{key}.final_weight", positive=True)
        if not ramp:
            # only a ramp has a final weight; elsewhere it would be a second, unused weight
            raise RedirectorConfigError(
                f"{key}.final_weight",
                "only a ramping host has a final weight (set `ramp: true`, or remove the key)",
            )
    return HostConfig(
        name=name,
        url=url,
        weight=weight,
        prime=prime,
        ramp=ramp,
        final_weight=final_weight,
        health=url + "/health" if health is None else _url(health, f"{key}.health"),
        versions=url + "/versions" if versions is None else _url(versions, f"{key}.versions"),
    )


def _parse_check(raw: Any, ignored: list[str]) -> CheckConfig:
    if raw is None:
        return CheckConfig()
    raw = _mapping(raw, "check")
    ignored.extend(f"check.{k}" for k in raw if k not in _CHECK_KEYS)

    def get(name: str, default: Any) -> Any:
        value = raw.get(name)
        return default if value is None else value

    jitter = _number(get("jitter", DEFAULT_CHECK_JITTER), "check.jitter", minimum=0)
    if jitter > 1:
        # the delay is period * (1 + jitter * (0.5 - u)); beyond 1 the spread is no longer jitter
        raise RedirectorConfigError("check.jitter", f"expected a number <= 1, got {jitter:g}")
    return CheckConfig(
        period=_number(
            get("period", DEFAULT_CHECK_PERIOD), "check.period", minimum=0, strict=True,
            maximum=MAX_SECONDS,
        ),
        jitter=jitter,
        retries=_integer(get("retries", DEFAULT_CHECK_RETRIES), "check.retries", minimum=1,
                         maximum=MAX_CHECK_RETRIES),
        timeout=_number(
            get("timeout", DEFAULT_CHECK_TIMEOUT), "check.timeout", minimum=0, strict=True,
            maximum=MAX_SECONDS,
        ),
        failed_period=_number(
            get("failed_period", DEFAULT_CHECK_FAILED_PERIOD), "check.failed_period", minimum=0,
            strict=True, maximum=MAX_SECONDS,
        ),
    )


def parse_config(data: Any) -> RedirectorConfig:
    """Validate config.json's data; raise RedirectorConfigError naming the first bad key.

    Keys this redirector does not use (mybinder's chart dumps all of `federationRedirect`,
    image and resources included) are ignored and listed in `ignored_keys`.
    """
    root = _mapping(data, "(top level)")
    ignored = [k for k in root if k not in _TOP_KEYS]
    if root.get("hosts") is None:
        raise RedirectorConfigError("hosts", "missing (an object of name: host config)")
    raw_hosts = _mapping(root["hosts"], "hosts")

    hosts: list[HostConfig] = []
    dropped: list[str] = []
    for name, raw in raw_hosts.items():
        if not isinstance(name, str) or not name:
            raise RedirectorConfigError("hosts", f"host names must be non-empty strings: {name!r}")
        if raw is None:
            # Helm cannot delete a key from values, so mybinder disables a member with null
            dropped.append(name)
            continue
        host = _parse_host(name, _mapping(raw, f"hosts.{name}"), ignored)
        if host.weight == 0 and not host.prime:
            dropped.append(name)
            continue
        # A weight-0 prime stays: it is still the proxy target, the versions reference and the
        # last resort, it just receives no launches while anything else is healthy.
        hosts.append(host)

    urls = {h.name: h.url for h in hosts}
    for name, other in same_urls(urls):
        raise RedirectorConfigError(
            f"hosts.{name}.url",
            f"{urls[name]} is also the url of {other!r} "
            "(trailing slashes and the host's case aside: the cookie could not tell them "
            "apart)",
        )
    if not hosts:
        raise RedirectorConfigError("hosts", "no host left after dropping null and weight-0 hosts")
    if not any(h.prime for h in hosts):
        raise RedirectorConfigError("hosts", "no prime host (set `prime: true` on one host)")

    load_balancer = root.get("load_balancer")
    if load_balancer is None:
        load_balancer = DEFAULT_LOAD_BALANCER
    if load_balancer not in LOAD_BALANCERS:
        raise RedirectorConfigError(
            "load_balancer", f"expected one of {', '.join(LOAD_BALANCERS)}, got {load_balancer!r}"
        )
    ramp_policy = root.get("ramp_policy")
    if ramp_policy is None:
        ramp_policy = DEFAULT_RAMP_POLICY
    if ramp_policy not in RAMP_POLICIES:
        raise RedirectorConfigError(
            "ramp_policy", f"expected one of {', '.join(RAMP_POLICIES)}, got {ramp_policy!r}"
        )
    headroom = root.get("pod_headroom")
    cookie_age = root.get("host_cookie_age_hours")
    generation = root.get("generation")
    fallback_after = root.get("prime_fallback_after")
    return RedirectorConfig(
        hosts=tuple(hosts),
        check=_parse_check(root.get("check"), ignored),
        load_balancer=load_balancer,
        pod_headroom=(
            DEFAULT_POD_HEADROOM
            if headroom is None
            else _integer(headroom, "pod_headroom", minimum=0, maximum=MAX_POD_HEADROOM)
        ),
        host_cookie_age_hours=(
            DEFAULT_HOST_COOKIE_AGE_HOURS
            if cookie_age is None
            else _number(cookie_age, "host_cookie_age_hours", minimum=0, strict=True,
                         maximum=MAX_HOST_COOKIE_AGE_HOURS)
        ),
        ramp_policy=ramp_policy,
        dropped=tuple(dropped),
        ignored_keys=tuple(ignored),
        generation=None if generation is None else _integer(generation, "generation", minimum=0,
                                                            maximum=MAX_GENERATION),
        accepted_versions=_parse_accepted(root.get("accepted_versions")),
        prime_fallback_after=(
            DEFAULT_PRIME_FALLBACK_AFTER
            if fallback_after is None
            else _number(fallback_after, "prime_fallback_after", minimum=0, strict=True,
                         maximum=MAX_SECONDS)
        ),
    )


def _parse_accepted(raw: Any) -> Mapping[str, tuple[str, ...]] | None:
    """`accepted_versions: {binderhub: [OLD, NEW]}` (published while a rollout's rings run)."""
    if raw is None:
        return None
    accepted: dict[str, tuple[str, ...]] = {}
    for key, values in _mapping(raw, "accepted_versions").items():
        if not isinstance(values, list) or not values \
                or not all(isinstance(v, str) and v for v in values):
            raise RedirectorConfigError(f"accepted_versions.{key}",
                                        "expected a non-empty list of version strings")
        accepted[str(key)] = tuple(values)
    return accepted or None


def loads_config(text: str, source: str | None = None) -> RedirectorConfig:
    """Parse config.json text; errors carry `source` (usually the file name)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RedirectorConfigError(
            "", f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}", source
        ) from None
    try:
        return parse_config(data)
    except RedirectorConfigError as exc:
        raise exc.with_source(source) if source else exc from None


def load_config(path: str | Path) -> RedirectorConfig:
    """Read and validate a config.json file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RedirectorConfigError("", "file not found", str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RedirectorConfigError("", f"cannot read: {exc}", str(path)) from None
    return loads_config(text, str(path))
