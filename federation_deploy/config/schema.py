"""federation.yaml's schema, declared once: per section a table of key, rule, default, message.

The loader reads allowed and required keys, defaults and the words of its error messages from
these tables; nothing else spells them. Each Rule carries the same test as a JSON Schema
fragment, so an editor schema can be generated from the tables (issue 16).

Adding a key is one row in its section (plus, if the model needs it, one dataclass field and
one line in the loader that reads it); adding a section is one Section with its rows, hung
under its parent with `nested=` (a mapping) or `each=` (a list, or a mapping of names).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from federation_deploy.durations import MAX_DURATION, MAX_DURATION_TEXT, parse_duration
from federation_deploy.errors import UsageError
from federation_deploy.redirector.config import (
    DEFAULT_CHECK_FAILED_PERIOD,
    DEFAULT_CHECK_JITTER,
    DEFAULT_CHECK_PERIOD,
    DEFAULT_CHECK_RETRIES,
    DEFAULT_CHECK_TIMEOUT,
    DEFAULT_HOST_COOKIE_AGE_HOURS,
    DEFAULT_LOAD_BALANCER,
    DEFAULT_POD_HEADROOM,
    DEFAULT_PRIME_FALLBACK_AFTER,
    DEFAULT_RAMP_POLICY,
    LOAD_BALANCERS,
    MAX_CHECK_RETRIES,
    MAX_GENERATION,
    MAX_HOST_COOKIE_AGE_HOURS,
    MAX_POD_HEADROOM,
    MAX_SECONDS,
    MAX_WEIGHT,
    MIN_WEIGHT,
    RAMP_POLICIES,
)

FEDERATION_FILE = "federation.yaml"
CLOUDS = ("gcp", "aws", "kubeconfig", "external")

# An exact chart version: semver with optional v, pre-release and build; no ranges.
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
TERRAFORM_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
KUBERNETES_VERSION = re.compile(r"^1\.\d+$")
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def is_str(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def is_number(v: Any) -> bool:
    """A finite number: .inf and .nan would turn shares into nan and the redirector refuses
    them."""
    if not isinstance(v, int | float) or isinstance(v, bool):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float (400 digits): not a usable number
        return False


def is_nonneg(v: Any) -> bool:
    return is_number(v) and v >= 0


def is_positive(v: Any) -> bool:
    return is_number(v) and v > 0


def is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def is_integer(v: Any, minimum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def shown_url(url: str) -> str:
    """url for messages: credentials in it (user:password@) are never printed back (the
    printer redacts every URL it prints as well: progress.printable)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def url_problem(url: str) -> str | None:
    """None when url is acceptable: https, or http(s) on 127.0.0.1/localhost (tests, sandbox);
    and never a URL the redirector would refuse (its own check, member_url_problem)."""
    from federation_deploy.redirector.config import member_url_problem

    if problem := member_url_problem(url):
        return problem
    parts = urlsplit(url)
    if not parts.hostname:
        return "expected an absolute URL like https://example.org"
    if parts.hostname in ("127.0.0.1", "localhost"):
        return None if parts.scheme in ("http", "https") else "expected an http(s) URL"
    if parts.scheme != "https":
        return "expected an https URL (http only on 127.0.0.1 or localhost)"
    if parts.query or parts.fragment:
        return "expected a URL without query or fragment"
    return None


@dataclass(frozen=True)
class Rule:
    """What a valid value is: a test for the loader and the same as JSON Schema for editors.
    Rules that cannot be said in JSON Schema (URL policy, increasing steps) are approximated
    there and checked exactly by the loader."""

    ok: Callable[[Any], bool]
    json: Mapping[str, Any]


def _matches(pattern: re.Pattern[str]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and bool(pattern.match(v))


def _is_duration(v: Any) -> bool:
    if not is_str(v):
        return False
    try:
        parse_duration(v)
    except UsageError:
        return False
    return True


def _increasing_percentages(v: Any) -> bool:
    return (isinstance(v, list) and bool(v) and all(is_positive(s) and s <= 100 for s in v)
            and all(a < b for a, b in zip(v, v[1:], strict=False)))


STRING = Rule(is_str, {"type": "string", "minLength": 1})
ANY_STRING = Rule(lambda v: isinstance(v, str), {"type": "string"})
OPTIONAL_STRING = Rule(lambda v: v is None or is_str(v), {"type": ["string", "null"]})
BOOLEAN = Rule(is_bool, {"type": "boolean"})
# Weights, like every number the redirector reads, are bounded as the redirector bounds them
# (redirector.config: MIN_WEIGHT, MAX_WEIGHT, ...): one bound for validate and the redirector.
WEIGHT = Rule(lambda v: is_number(v) and (v == 0 or MIN_WEIGHT <= v <= MAX_WEIGHT),
              {"type": "number", "anyOf": [{"const": 0}, {"minimum": MIN_WEIGHT}],
               "maximum": MAX_WEIGHT})
POSITIVE_WEIGHT = Rule(lambda v: is_number(v) and MIN_WEIGHT <= v <= MAX_WEIGHT,
                       {"type": "number", "minimum": MIN_WEIGHT, "maximum": MAX_WEIGHT})
WEIGHT_EXPECTED = f"a number from 0 to {MAX_WEIGHT:,} (if not 0, at least {MIN_WEIGHT:g})"
POSITIVE_WEIGHT_EXPECTED = f"a number > 0, at most {MAX_WEIGHT:,} (at least {MIN_WEIGHT:g})"
COOKIE_HOURS = Rule(lambda v: is_positive(v) and v <= MAX_HOST_COOKIE_AGE_HOURS,
                    {"type": "number", "exclusiveMinimum": 0,
                     "maximum": MAX_HOST_COOKIE_AGE_HOURS})
# Seconds and durations are bounded like every time option (durations.MAX_DURATION): a
# larger one passed validate and overflowed the ramp's arithmetic once it was live.
assert MAX_DURATION == MAX_SECONDS  # noqa: S101 - the deploy side's and the redirector's
SECONDS = Rule(lambda v: is_positive(v) and v <= MAX_DURATION,
               {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_DURATION})
SECONDS_EXPECTED = f"a number of seconds > 0, at most {MAX_DURATION:.0f} ({MAX_DURATION_TEXT})"
DURATION = Rule(_is_duration, {"type": "string", "minLength": 1})
DURATION_EXPECTED = f"a duration like 30m or 1h30m, at most {MAX_DURATION_TEXT}"
FRACTION = Rule(lambda v: is_number(v) and 0 <= v <= 1,
                {"type": "number", "minimum": 0, "maximum": 1})
GENERATION = Rule(lambda v: is_integer(v, 0) and v <= MAX_GENERATION,
                  {"type": "integer", "minimum": 0, "maximum": MAX_GENERATION})
MAX_PREFLIGHT = 10_000
OPTIONAL_PREFLIGHT = Rule(lambda v: v is None or (is_integer(v, 0) and v <= MAX_PREFLIGHT),
                          {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_PREFLIGHT})
def bounded_integer(minimum: int, maximum: int) -> Rule:
    return Rule(lambda v: is_integer(v, minimum) and v <= maximum,
                {"type": "integer", "minimum": minimum, "maximum": maximum})


MAX_ATTEMPTS = 100
STEP_INDEX = Rule(lambda v: is_integer(v, -1), {"type": "integer", "minimum": -1})
DNS_NAME = Rule(_matches(NAME), {"type": "string", "pattern": NAME.pattern})
# helm's own limit for a release name (helm refuses a longer one: "the length must not be
# longer than 53"), so a release name that validate passes is one helm takes
HELM_RELEASE_MAX = 53
HELM_RELEASE = Rule(lambda v: _matches(NAME)(v) and len(v) <= HELM_RELEASE_MAX,
                    {"type": "string", "pattern": NAME.pattern, "maxLength": HELM_RELEASE_MAX})
TERRAFORM_PIN = Rule(_matches(TERRAFORM_VERSION),
                     {"type": "string", "pattern": TERRAFORM_VERSION.pattern})
KUBERNETES_PIN = Rule(_matches(KUBERNETES_VERSION),
                      {"type": "string", "pattern": KUBERNETES_VERSION.pattern})
STEPS = Rule(_increasing_percentages,
             {"type": "array", "minItems": 1,
              "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 100}})
MAPPING = Rule(lambda v: isinstance(v, dict), {"type": "object"})
LIST = Rule(lambda v: isinstance(v, list), {"type": "array"})


def one_of(choices: tuple[str, ...]) -> Rule:
    return Rule(lambda v: v in choices, {"enum": list(choices)})


@dataclass(frozen=True)
class Key:
    """One row of a section: a key, its rule, the words an error says it expected, its
    default (what the model gets when the key is absent or invalid), whether it is required.

    A mapping key may name the section below it (`nested`); a list or a mapping of names may
    name the section of each item (`each`).
    """

    name: str
    rule: Rule
    expected: str
    default: Any = None
    required: bool = False
    nested: Section | None = None
    each: Section | None = None


@dataclass(frozen=True)
class Section:
    """The keys allowed at one place of federation.yaml (`path`, `*` for any name)."""

    path: str
    keys: tuple[Key, ...]
    # an item may also be written as a plain string: the value of this key (values: lists)
    shorthand: str | None = None

    def __getitem__(self, name: str) -> Key:
        for key in self.keys:
            if key.name == name:
                return key
        raise KeyError(f"{self.path or '(top level)'} has no key {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        """The keys in the order they are declared (and written, for tool-written sections)."""
        return tuple(k.name for k in self.keys)

    @property
    def allowed(self) -> frozenset[str]:
        return frozenset(self.names)

    @property
    def required(self) -> frozenset[str]:
        return frozenset(k.name for k in self.keys if k.required)

    def defaults(self) -> dict[str, Any]:
        return {k.name: k.default for k in self.keys}


# ---------------------------------------------------------------------------------------------
# The tables, innermost first (a section must exist before a row can hang it below a key).

CHECK = Section("redirector.check", (
    Key("period", SECONDS, SECONDS_EXPECTED, DEFAULT_CHECK_PERIOD),
    Key("jitter", FRACTION, "a number between 0 and 1", DEFAULT_CHECK_JITTER),
    Key("retries", bounded_integer(1, MAX_CHECK_RETRIES),
        f"an integer from 1 to {MAX_CHECK_RETRIES}", DEFAULT_CHECK_RETRIES),
    Key("timeout", SECONDS, SECONDS_EXPECTED, DEFAULT_CHECK_TIMEOUT),
    Key("failed_period", SECONDS, SECONDS_EXPECTED, DEFAULT_CHECK_FAILED_PERIOD),
))

REDIRECTOR = Section("redirector", (
    Key("host", STRING, "a host name like mybinder.org", "", required=True),
    Key("member", STRING, "a member name", "", required=True),
    Key("release", STRING, "a release name", "", required=True),
    Key("load_balancer", one_of(LOAD_BALANCERS), "one of " + ", ".join(LOAD_BALANCERS),
        DEFAULT_LOAD_BALANCER),
    Key("check", MAPPING, "a mapping", nested=CHECK),
    Key("pod_headroom", bounded_integer(0, MAX_POD_HEADROOM),
        f"an integer from 0 to {MAX_POD_HEADROOM:,}", DEFAULT_POD_HEADROOM),
    Key("host_cookie_age_hours", COOKIE_HOURS,
        f"a number of hours > 0, at most {MAX_HOST_COOKIE_AGE_HOURS} (ten years)",
        DEFAULT_HOST_COOKIE_AGE_HOURS),
    # how a member being ramped gets its share: sticky (each repository on one member, the
    # share on target from the redirector's popularity estimate) or per-launch (exact, but a
    # repository lands on two members)
    Key("ramp_policy", one_of(RAMP_POLICIES), "one of " + ", ".join(RAMP_POLICIES),
        DEFAULT_RAMP_POLICY),
    # a small repository a ramp launches on the new member itself during its holds (probes:
    # evidence when users' launches are few), like gh/binder-examples/requirements/HEAD;
    # `ramp --probe` overrides it
    Key("ramp_probe", OPTIONAL_STRING, "a launch path like gh/org/repo/ref"),
    # the pre-flight: before step 1, a ramp launches this many of the member's most launched
    # pool repositories on it and judges them (0: none; unset: 20 when the ramp knows the
    # redirector, which names the pool); `ramp --preflight` overrides it
    Key("ramp_preflight", OPTIONAL_PREFLIGHT,
        f"an integer from 0 to {MAX_PREFLIGHT} (0: no pre-flight)"),
    # the federation's Prometheus (every member's BinderHub launch metrics, labelled by
    # member): the evidence a ramp step is judged on; `ramp --prometheus-url` overrides it
    Key("prometheus_url", OPTIONAL_STRING,
        "a URL like https://prometheus.example.org (http only on 127.0.0.1 or localhost)"),
    # seconds the prime may be unhealthy before the redirector takes the healthiest member
    # with the highest weight as its versions reference and last resort, until it recovers
    Key("prime_fallback_after", SECONDS, SECONDS_EXPECTED,
        DEFAULT_PRIME_FALLBACK_AFTER),
))

TERRAFORM = Section("terraform", (
    Key("version", TERRAFORM_PIN, "an exact version like 1.11.4", "", required=True),
    # default: ../terraform next to the config directory (the loader resolves it)
    Key("root", STRING, "a directory path"),
))

# Which cluster keys each cloud takes; an external member has no cluster here.
CLUSTER = {
    "gcp": Section("members.*.cluster", (
        Key("name", STRING, "a string", required=True),
        Key("project", STRING, "a string", required=True),
        Key("location", STRING, "a string", required=True),
        # a service account key (relative to the config directory, git-crypt-locked in
        # mybinder.org-deploy): activated in a private gcloud config before get-credentials
        Key("key_file", STRING, "a path relative to the config directory"),
    )),
    "aws": Section("members.*.cluster", (
        Key("name", STRING, "a string", required=True),
        Key("region", STRING, "a string", required=True),
        Key("role_arn", STRING, "a string"),
    )),
    "kubeconfig": Section("members.*.cluster", (
        Key("kubeconfig", STRING, "a string", required=True),
        Key("context", STRING, "a string"),
    )),
    "external": Section("members.*.cluster", ()),
}

TERRAFORM_OUTPUT = Rule(lambda v: is_str(v) and "." in v, {"type": "string", "pattern": r"\."})
TERRAFORM_STACK = Section("members.*.terraform", (
    Key("stack", STRING, "a path under terraform/, like aws/curvenote", required=True),
    # terraform output name -> <release>.<values path>; each value checked with TERRAFORM_OUTPUT
    Key("outputs", MAPPING, "a mapping", {}),
))
TERRAFORM_OUTPUT_EXPECTED = "a values path like binderhub.registry.url"

# One pinned chart of the top-level `charts:` table, keyed by a name releases refer to.
CHART = Section("charts.*", (
    # default: the table's key (the chart's name in its repository); or oci://..., package:NAME
    Key("chart", STRING, "a chart name, oci://... or package:NAME"),
    Key("repo", STRING, "a chart repository URL"),
    # the loader also insists on an exact, quoted version (EXACT_VERSION)
    Key("version", ANY_STRING, "an exact version", "", required=True),
    # what a bump pull request links to (release notes); default: the chart's source URL
    Key("changelog", STRING, "a URL"),
))

# The deploy's stages, in their order; a hook runs after one of them.
STAGES = ("auth", "releases", "rollout", "verify")
ARGV = Rule(lambda v: isinstance(v, list) and bool(v) and all(is_str(a) for a in v),
            {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}})
NAMES = Rule(lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v),
             {"type": "array", "items": {"type": "string"}})

# One entry of a `values:` list: a mapping like this, or the path alone as a string (then
# neither secret nor optional). Paths and globs are relative to the config directory;
# {member} (and, for a release, {namespace}) are substituted.
VALUES_FILE = Section("members.*.values[]", (
    Key("path", STRING, "a file path or glob relative to the config directory", "",
        required=True),
    Key("secret", BOOLEAN, "true or false", False),
    Key("optional", BOOLEAN, "true or false", False),
), shorthand="path")
VALUES_ENTRY_EXPECTED = "a path (string) or a mapping {path, secret, optional}"

HOOK = Section("members.*.hooks[]", (
    Key("name", DNS_NAME, "a hook name (lowercase, digits, '-')", "", required=True),
    Key("after", one_of(STAGES), "one of " + ", ".join(STAGES), "", required=True),
    Key("argv", ARGV, "a list of strings: the command and its arguments", (), required=True),
    # runs of the hook before it fails the deploy (cd.yml's retried post-deploy tests), and
    # the seconds each run may take (killed after; a timed-out run counts as failed)
    Key("attempts", bounded_integer(1, MAX_ATTEMPTS), f"an integer from 1 to {MAX_ATTEMPTS}", 1),
    Key("timeout", SECONDS, SECONDS_EXPECTED),
))

RELEASE = Section("members.*.releases[]", (
    Key("name", HELM_RELEASE, f"a release name (lowercase, digits, '-'; at most "
        f"{HELM_RELEASE_MAX} characters, helm's limit)", "", required=True),
    # a name in the `charts:` table; or, pinned here, a chart name with repo, oci://...,
    # package:NAME, or a local chart directory ./DIR
    Key("chart", STRING, "a chart reference", "", required=True),
    Key("repo", STRING, "a chart repository URL"),
    # required unless the chart comes from the `charts:` table (then it overrides the pin) or
    # is a local directory (its Chart.yaml has the version); the loader also insists on an
    # exact, quoted version (EXACT_VERSION)
    Key("version", ANY_STRING, "an exact version", ""),
    Key("namespace", DNS_NAME, "a namespace", "", required=True),
    # the live helm release name, when it is not `name` (adopting keeps `prod` in `prod`)
    Key("release", HELM_RELEASE, f"a helm release name (lowercase, digits, '-'; at most "
        f"{HELM_RELEASE_MAX} characters, helm's limit)"),
    # CustomResourceDefinitions applied (kubectl apply --server-side) before the release
    Key("crds", STRING, "a URL or a file path relative to the config directory"),
    # whole values files for this release, in order (later wins); replaces the layers
    Key("values", LIST, "a list", each=VALUES_FILE),
))

# Written by the ramp in this order (ramp_state writes the block round-trip).
RAMP = Section("members.*.ramp", (
    Key("steps", STEPS, "a list of increasing percentages in (0, 100]", required=True),
    Key("step", STEP_INDEX, "an integer >= -1", required=True),
    Key("to_weight", POSITIVE_WEIGHT, POSITIVE_WEIGHT_EXPECTED, required=True),
    Key("hold", DURATION, DURATION_EXPECTED, "30m"),
    Key("started", OPTIONAL_STRING, "a timestamp"),
    Key("last_healthy", OPTIONAL_STRING, "a timestamp"),
    # a rollback pauses the ramp: when, from which step, why (`ramp MEMBER` restarts it)
    Key("rolled_back", OPTIONAL_STRING, "a sentence: when and why the ramp was rolled back"),
    # too little evidence for too long pauses the ramp at its step: when, where, why
    Key("inconclusive", OPTIONAL_STRING,
        "a sentence: when and why the ramp was paused for lack of evidence"),
    # the evidence gate's last verdict at the current step (launches, failure rate and launch
    # time vs the federation's, verdict), written by the ramp for people and the step summary
    Key("evidence", MAPPING, "a mapping"),
    # `rollout`: the ramp of a rollout's ring 1: `ramp` leaves it alone, `rollout --resume`
    # drives it (its last step is held and judged too; the rollout removes the block)
    Key("owner", OPTIONAL_STRING, "`rollout` (ring 1 of a rollout), or absent"),
))
RAMP_KEYS = RAMP.names

# Written by `traffic drain` in this order: why, since when (UTC), and the weight `traffic
# restore` gives back (a paused ramp's own step wins over it). The member's weight stays 0
# while this block is there (the loader refuses more).
DRAINED = Section("members.*.drained", (
    Key("reason", STRING, "a sentence saying why", "", required=True),
    Key("since", STRING, "a UTC timestamp like 2024-05-01T12:00:00Z", "", required=True),
    Key("previous_weight", WEIGHT, WEIGHT_EXPECTED, 0, required=True),
))
DRAINED_KEYS = DRAINED.names

MEMBER = Section("members.*", (
    Key("url", STRING, "a URL", "", required=True),
    Key("cloud", one_of(CLOUDS), "one of " + ", ".join(CLOUDS), "", required=True),
    # required for routed members (the loader says so); absent on staging
    Key("weight", WEIGHT, WEIGHT_EXPECTED),
    Key("prime", BOOLEAN, "true or false", False),
    Key("routed", BOOLEAN, "true or false", True),
    # the member's key in the redirector's hosts (default: its name). The redirector ranks
    # members by this name in rendezvous hashing, and it is the `member` label of its metrics:
    # an adopted federation keeps the name its redirector already used (mybinder's `gke`)
    Key("redirector_host", DNS_NAME, "a name like gke (lowercase letters, digits, dashes)"),
    # default: url + /health and url + /versions (the loader derives them)
    Key("health", STRING, "a URL"),
    Key("versions", STRING, "a URL"),
    Key("cluster", MAPPING, "a mapping"),  # keys by cloud: CLUSTER
    Key("kubernetes_version", KUBERNETES_PIN, 'a version like "1.29" (quoted)'),
    Key("terraform", MAPPING, "a mapping", nested=TERRAFORM_STACK),
    Key("releases", LIST, "a list", (), each=RELEASE),
    Key("target_weight", POSITIVE_WEIGHT, POSITIVE_WEIGHT_EXPECTED),
    Key("ramp", MAPPING, "a mapping", nested=RAMP),
    # out of rotation after an incident (`traffic drain`); a ramp in progress is paused
    Key("drained", MAPPING, "a mapping", nested=DRAINED),
    # values files keyed by release name, in order; replaces values/ and secrets/values/
    Key("values", LIST, "a list", each=VALUES_FILE),
    Key("hooks", LIST, "a list", each=HOOK),
))

SECRETS = Section("secrets", (
    # replaces the secret layers with --without-secrets (forks' pull requests have no key)
    Key("stand_in", STRING, "a file path relative to the config directory"),
))

CI = Section("ci", (
    # the CD order: ci-matrix lists these members first, in this order
    Key("order", NAMES, "a list of member names"),
    # the staging tier: deployed (and checked) before every other member; default: the
    # members that are not routed and do not run the redirector
    Key("staging", NAMES, "a list of member names"),
    # members CD does not deploy: ci-matrix (and so the workflow) leaves them out; `deploy M`
    # by hand still deploys them (adopt: those deploy.py knows but cd.yml does not deploy)
    Key("manual", NAMES, "a list of member names"),
))

# Written by `sandbox up` and `sandbox demo` into the sandbox's own copy of federation.yaml: this
# federation is a local sandbox. Its weights are published to its own redirector (never with
# helm), its terraform runs against its moto_server, and no cloud credential is ever fetched.
SANDBOX = Section("sandbox", (
    # the config.json the sandbox's redirector hot-reloads (relative to the config directory,
    # or absolute): what traffic drain|restore|set, ramp and deploy publish to by default
    Key("redirector_config", STRING, "the path of the sandbox redirector's config.json", "",
        required=True),
    Key("redirector_url", STRING, "a URL on 127.0.0.1 (the sandbox's redirector)"),
    Key("aws_endpoint", STRING, "a URL on 127.0.0.1 (the sandbox's moto_server)"),
))

# Version rings (`federation-deploy rollout CHART VERSION`): how a new chart version goes
# through the federation. Ring 0 = `staging` (deployed and verified first), ring 1 = `canary`
# (one routed member, or `smallest`: the smallest healthy routed one) moved through `shares`
# of launches with a `hold` at each, judged on the ramp's evidence; ring 2 = every other
# deployable member, in CD order.
RINGS = Section("rings", (
    # default: ci.staging, else the members that are not routed
    Key("staging", NAMES, "a list of member names"),
    Key("canary", STRING, "a member name, or `smallest` (the smallest healthy routed member)",
        "smallest"),
    Key("shares", STEPS, "a list of increasing percentages in (0, 100]", [5.0, 25.0]),
    Key("hold", STRING, "a duration like 30m", "30m"),
    # the key of a member's /versions that reports the chart's version (default: the chart's
    # name, as BinderHub's /versions reports `binderhub`)
    Key("versions_key", STRING, "a key of the members' /versions answer"),
))

# Written by `rollout` in this order while a new chart version goes through the rings: the
# chart, the version every member had (`from`) and gets (`to`), the ring running, the members
# that run `to` already (the others are deployed `from` meanwhile), the ring 1 member and its
# weight before, and, after a failed ring, when and why it was rolled back (paused).
ROLLOUT = Section("rollout", (
    Key("chart", STRING, "a name of the charts: table", "", required=True),
    Key("from", STRING, "an exact version", "", required=True),
    Key("to", STRING, "an exact version", "", required=True),
    Key("ring", STEP_INDEX, "an integer from -1 to 2", -1, required=True),
    Key("upgraded", NAMES, "a list of member names", []),
    Key("canary", OPTIONAL_STRING, "a member name"),
    Key("canary_weight", WEIGHT, WEIGHT_EXPECTED),
    Key("started", OPTIONAL_STRING, "a timestamp"),
    Key("rolled_back", OPTIONAL_STRING, "a sentence: when and why the rollout was rolled back"),
    # written before a member's deploy, removed once it is in `upgraded`: an abort after a
    # crash in between rolls it back too
    Key("upgrading", OPTIONAL_STRING, "a member name"),
    # when ring 1's last share passed its hold and gate: ring 1 is over only then
    Key("ring1_passed_at", OPTIONAL_STRING, "a timestamp"),
    # routed members this tool does not deploy, with the version of the chart they reported:
    # the redirector keeps accepting it until they report the new one
    Key("external", MAPPING, "a mapping of member name to the version it reports"),
))
ROLLOUT_KEYS = ROLLOUT.names

# Written by `federation-deploy freeze` (and removed by `unfreeze`): while `until` is in the
# future, deploy, ramp (start and --advance) and `traffic set` refuse (exit 2) with the reason,
# who and the expiry; drain, restore and a ramp's --abort still run (an incident never waits).
# An expired freeze is ignored, and every command that would have respected it says so.
FREEZE = Section("freeze", (
    Key("reason", STRING, "a sentence saying why", "", required=True),
    Key("who", STRING, "who froze it (a name or GitHub login)", "", required=True),
    Key("until", STRING, "an ISO 8601 time with a zone, like 2024-05-03T12:00:00Z", "",
        required=True),
    Key("since", OPTIONAL_STRING, "a UTC timestamp like 2024-05-01T12:00:00Z"),
))
FREEZE_KEYS = FREEZE.names

# Where deploys and weight changes are announced besides Grafana (whose URL and token are the
# environment's: GRAFANA_URL, GRAFANA_API_KEY). The webhook URL carries its own secret: config
# names the environment variable that holds it, never the URL.
WEBHOOK_FORMATS = ("matrix", "slack")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
NOTIFICATIONS = Section("notifications", (
    Key("webhook_env", Rule(_matches(ENV_NAME), {"type": "string", "pattern": ENV_NAME.pattern}),
        "the name of an environment variable holding the webhook URL, like "
        "FEDERATION_WEBHOOK_URL"),
    Key("format", one_of(WEBHOOK_FORMATS), "one of " + ", ".join(WEBHOOK_FORMATS), "matrix"),
    # Grafana annotation tags added to the tool's own (federation-deploy, the kind, the member)
    Key("tags", NAMES, "a list of strings", []),
    # seconds each HTTP call (Grafana, the webhook) may take in all; a slow one is a warning
    Key("timeout", SECONDS, SECONDS_EXPECTED, 5.0),
))

FEDERATION = Section("", (
    Key("terraform", MAPPING, "a mapping", nested=TERRAFORM),
    Key("charts", MAPPING, "a mapping of chart names", {}, each=CHART),
    Key("secrets", MAPPING, "a mapping", nested=SECRETS),
    Key("ci", MAPPING, "a mapping", nested=CI),
    Key("redirector", MAPPING, "a mapping", required=True, nested=REDIRECTOR),
    # the weights' generation: every weight change adds one, and the published redirector
    # config carries it too, so that a publish can be a compare-and-swap (traffic/weights.py)
    # (at most 2**53 - 1: helm reads values as float64, exact only up to there)
    Key("generation", GENERATION, f"an integer from 0 to {MAX_GENERATION}", 0),
    Key("freeze", MAPPING, "a mapping", nested=FREEZE),
    Key("notifications", MAPPING, "a mapping", nested=NOTIFICATIONS),
    Key("members", MAPPING, "a mapping", required=True, each=MEMBER),
    Key("sandbox", MAPPING, "a mapping", nested=SANDBOX),
    Key("rings", MAPPING, "a mapping", nested=RINGS),
    Key("rollout", MAPPING, "a mapping", nested=ROLLOUT),
))
