"""Load and validate config/ once, into frozen dataclasses; every error names file, line, key."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, Problem, UsageError
from .yamlio import LocatedMap, line_of, load_located, to_plain

CLOUDS = ("gcp", "aws", "kubeconfig", "external")
LOAD_BALANCERS = ("rendezvous", "random")
FEDERATION_FILE = "federation.yaml"
PACKAGE_CHART_PREFIX = "package:"
CHARTS_DIR = Path(__file__).parent / "charts"

# An exact chart version: semver with optional v, pre-release and build; no ranges.
EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
TERRAFORM_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
KUBERNETES_VERSION = re.compile(r"^1\.\d+$")
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Location:
    """Where a piece of config came from, for error messages and --explain."""

    file: str
    line: int | None

    def __str__(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Release:
    name: str
    chart: str
    version: str
    namespace: str
    repo: str | None = None
    location: Location = Location("", None)

    @property
    def package_chart(self) -> Path | None:
        """The chart directory shipped with this package, for `package:NAME` charts."""
        if self.chart.startswith(PACKAGE_CHART_PREFIX):
            return CHARTS_DIR / self.chart[len(PACKAGE_CHART_PREFIX) :]
        return None


@dataclass(frozen=True)
class Cluster:
    """Cluster coordinates; which fields are set depends on the member's cloud."""

    name: str | None = None
    project: str | None = None  # gcp
    location: str | None = None  # gcp zone or region
    region: str | None = None  # aws
    role_arn: str | None = None  # aws, optional role to assume
    kubeconfig: str | None = None  # kubeconfig: file under config/secrets/
    context: str | None = None  # kubeconfig: context to use


@dataclass(frozen=True)
class TerraformStack:
    path: str  # relative to the terraform root, e.g. aws/curvenote
    directory: Path
    # terraform output name -> "<release>.<key.path>" in the member's values
    outputs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RampState:
    """A ramp in progress, kept in federation.yaml so it resumes and every step is a diff."""

    steps: tuple[float, ...]
    step: int  # index of the step currently published; -1 = not started
    to_weight: float
    hold: str
    started: str | None = None
    last_healthy: str | None = None

    @property
    def current_share(self) -> float:
        return 0.0 if self.step < 0 else self.steps[self.step]


@dataclass(frozen=True)
class Member:
    name: str
    url: str
    cloud: str
    weight: float
    prime: bool
    routed: bool
    health_url: str
    versions_url: str
    cluster: Cluster
    kubernetes_version: str | None
    terraform: TerraformStack | None
    releases: tuple[Release, ...]
    target_weight: float | None = None
    ramp: RampState | None = None
    location: Location = Location("", None)

    @property
    def deployable(self) -> bool:
        return self.cloud != "external"

    def release(self, name: str) -> Release:
        for release in self.releases:
            if release.name == name:
                return release
        known = ", ".join(r.name for r in self.releases) or "none"
        raise UsageError(f"member {self.name!r} has no release {name!r} (releases: {known})")


@dataclass(frozen=True)
class CheckSettings:
    period: float = 10.0
    jitter: float = 0.1
    retries: int = 5
    timeout: float = 2.0
    failed_period: float = 300.0


@dataclass(frozen=True)
class RedirectorSettings:
    host: str
    member: str
    release: str
    load_balancer: str = "rendezvous"
    check: CheckSettings = CheckSettings()
    pod_headroom: int = 10
    host_cookie_age_hours: float = 4.0


@dataclass(frozen=True)
class Federation:
    config_dir: Path
    path: Path
    terraform_version: str
    terraform_root: Path
    redirector: RedirectorSettings
    members: Mapping[str, Member]
    warnings: tuple[str, ...] = ()
    # values files parsed once at load (validation reads them all anyway); render reuses them
    values_documents: Mapping[Path, Any] = field(default_factory=dict, compare=False, repr=False)

    def member(self, name: str) -> Member:
        try:
            return self.members[name]
        except KeyError:
            known = ", ".join(self.members)
            raise UsageError(f"unknown member {name!r} (members: {known})") from None

    @property
    def routed(self) -> list[Member]:
        return [m for m in self.members.values() if m.routed]

    def values_file(self, member: str | None, secret: bool = False) -> Path:
        base = self.config_dir / "secrets" / "values" if secret else self.config_dir / "values"
        return base / f"{member or 'common'}.yaml"

    def generated_outputs_file(self, member: str) -> Path:
        return self.config_dir / "generated" / f"{member}.terraform.json"

    def secrets_path(self, relative: str) -> Path:
        return self.config_dir / "secrets" / relative


# --------------------------------------------------------------------------------------------
# Validation helpers: a Checker collects every problem instead of stopping at the first.


class Checker:
    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, node: Any, key: Any, keypath: str, message: str) -> None:
        self.problems.append(Problem(self.file, line_of(node, key), keypath, message))

    def mapping(self, node: Any, parent: Any, key: Any, keypath: str) -> LocatedMap | None:
        if isinstance(node, LocatedMap):
            return node
        self.add(parent, key, keypath, f"expected a mapping, got {_kind(node)}")
        return None

    def keys(
        self,
        node: LocatedMap,
        keypath: str,
        allowed: set[str],
        required: frozenset[str] | set[str] = frozenset(),
    ) -> None:
        for key in node:
            if key not in allowed:
                hint = ", ".join(sorted(allowed))
                self.add(node, key, _join(keypath, str(key)), f"unknown key (allowed: {hint})")
        for key in sorted(required - set(node)):
            self.add(node, None, _join(keypath, key), "required key is missing")

    def value(
        self,
        node: LocatedMap,
        key: str,
        keypath: str,
        expected: str,
        ok: Callable[[Any], bool],
        default: Any = None,
    ) -> Any:
        if key not in node:
            return default
        value = node[key]
        if not ok(value):
            self.add(node, key, _join(keypath, key), f"expected {expected}, got {_show(value)}")
            return default
        return to_plain(value)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _show(value: Any) -> str:
    return _kind(value)


def is_str(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def is_nonneg(v: Any) -> bool:
    return is_number(v) and v >= 0


def is_positive(v: Any) -> bool:
    return is_number(v) and v > 0


def is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def url_problem(url: str) -> str | None:
    """None when url is acceptable: https, or http(s) on 127.0.0.1/localhost (tests, sandbox)."""
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


# --------------------------------------------------------------------------------------------


def load_federation(config_dir: Path | str) -> Federation:
    """Load config_dir/federation.yaml and every values file; raise ConfigError listing all
    problems. Nothing is returned from invalid config."""
    config_dir = Path(config_dir)
    path = config_dir / FEDERATION_FILE
    display = display_path(path)
    if not config_dir.is_dir():
        raise ConfigError.single(
            str(config_dir), None, "", "config directory not found (use --config-dir)"
        )
    root = load_located(path, display)
    check = Checker(display)
    if not isinstance(root, LocatedMap):
        raise ConfigError.single(display, 1, "", f"expected a mapping, got {_kind(root)}")
    check.keys(root, "", {"terraform", "redirector", "members"}, {"members", "redirector"})

    tf_version, tf_root = _load_terraform_settings(check, root, path.parent)
    members = _load_members(check, root, path.parent, tf_root)
    declared = root.get("members") if isinstance(root.get("members"), LocatedMap) else {}
    complete = len(members) == len(declared or {})
    redirector = _load_redirector(check, root, members, set(declared or {}))
    if complete:
        # cross-member rules only make sense once every member loaded; otherwise they would
        # report the consequences of a problem already listed
        _check_federation(check, root, members)
    warnings: list[str] = []
    for member in members.values():
        if member.terraform and not (member.terraform.directory / ".terraform.lock.hcl").exists():
            warnings.append(
                f"member {member.name}: terraform stack {member.terraform.path} has no "
                ".terraform.lock.hcl (make one with `federation-deploy terraform lock "
                f"{member.name}` where the registry is reachable); plan and apply will refuse it"
            )
    problems = list(check.problems)
    documents: dict[Path, Any] = {}
    if not problems:
        problems += _check_values_files(config_dir, members, documents)
    if problems:
        raise ConfigError(problems)
    return Federation(
        config_dir=config_dir,
        path=path,
        terraform_version=tf_version,
        terraform_root=tf_root,
        redirector=redirector,
        members=members,
        warnings=tuple(warnings),
        values_documents=documents,
    )


def display_path(path: Path) -> str:
    """path relative to the working directory when below it, for messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _load_terraform_settings(check: Checker, root: LocatedMap, base: Path) -> tuple[str, Path]:
    version, tf_root = "", (base / ".." / "terraform").resolve()
    node = root.get("terraform")
    if "terraform" in root:
        tf = check.mapping(node, root, "terraform", "terraform")
        if tf is not None:
            check.keys(tf, "terraform", {"version", "root"}, {"version"})
            version = check.value(
                tf, "version", "terraform", "an exact version like 1.11.4",
                lambda v: isinstance(v, str) and bool(TERRAFORM_VERSION.match(v)), "",
            )
            rel = check.value(tf, "root", "terraform", "a directory path", is_str, None)
            if rel:
                tf_root = (base / rel).resolve()
    return version, tf_root


def _load_redirector(
    check: Checker, root: LocatedMap, members: Mapping[str, Member], declared: set[str]
) -> RedirectorSettings:
    node = check.mapping(root.get("redirector"), root, "redirector", "redirector")
    if node is None:
        return RedirectorSettings(host="", member="", release="")
    kp = "redirector"
    check.keys(
        node, kp,
        {"host", "member", "release", "load_balancer", "check", "pod_headroom",
         "host_cookie_age_hours"},
        {"host", "member", "release"},
    )
    host = check.value(node, "host", kp, "a host name like mybinder.org", is_str, "")
    member = check.value(node, "member", kp, "a member name", is_str, "")
    release = check.value(node, "release", kp, "a release name", is_str, "")
    if member and member not in declared:
        check.add(node, "member", f"{kp}.member", f"unknown member {member!r}")
    elif member not in members:
        pass  # the member itself is invalid and already reported
    elif member and release and release not in {r.name for r in members[member].releases}:
        check.add(node, "release", f"{kp}.release",
                  f"member {member!r} has no release {release!r}")
    elif member and members[member].cloud == "external":
        check.add(node, "member", f"{kp}.member", "the redirector cannot run on an external member")
    lb = check.value(
        node, "load_balancer", kp, "one of " + ", ".join(LOAD_BALANCERS),
        lambda v: v in LOAD_BALANCERS, "rendezvous",
    )
    headroom = check.value(node, "pod_headroom", kp, "an integer >= 0",
                           lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, 10)
    cookie = check.value(node, "host_cookie_age_hours", kp, "a number > 0", is_positive, 4.0)
    settings = CheckSettings()
    if "check" in node:
        cnode = check.mapping(node["check"], node, "check", f"{kp}.check")
        if cnode is not None:
            ckp = f"{kp}.check"
            check.keys(cnode, ckp, {"period", "jitter", "retries", "timeout", "failed_period"})
            settings = CheckSettings(
                period=float(check.value(cnode, "period", ckp, "a number > 0", is_positive, 10)),
                jitter=float(check.value(cnode, "jitter", ckp, "a number between 0 and 1",
                                         lambda v: is_number(v) and 0 <= v <= 1, 0.1)),
                retries=int(check.value(cnode, "retries", ckp, "an integer >= 0",
                                        lambda v: isinstance(v, int) and v >= 0, 5)),
                timeout=float(check.value(cnode, "timeout", ckp, "a number > 0", is_positive, 2)),
                failed_period=float(check.value(cnode, "failed_period", ckp, "a number > 0",
                                                is_positive, 300)),
            )
    return RedirectorSettings(
        host=host, member=member, release=release, load_balancer=lb, check=settings,
        pod_headroom=headroom, host_cookie_age_hours=float(cookie),
    )


MEMBER_KEYS = {
    "url", "cloud", "weight", "prime", "routed", "health", "versions", "cluster",
    "kubernetes_version", "terraform", "releases", "target_weight", "ramp",
}
CLUSTER_KEYS = {
    "gcp": ({"name", "project", "location"}, {"name", "project", "location"}),
    "aws": ({"name", "region", "role_arn"}, {"name", "region"}),
    "kubeconfig": ({"kubeconfig", "context"}, {"kubeconfig"}),
    "external": (set(), set()),
}


def _load_members(
    check: Checker, root: LocatedMap, base: Path, tf_root: Path
) -> dict[str, Member]:
    members: dict[str, Member] = {}
    node = check.mapping(root.get("members"), root, "members", "members")
    if node is None:
        return members
    for name, mnode in node.items():
        kp = f"members.{name}"
        if not isinstance(name, str) or not NAME.match(name):
            check.add(node, name, kp, "member names are lowercase letters, digits and '-'")
            continue
        m = check.mapping(mnode, node, name, kp)
        if m is None:
            continue
        member = _load_member(check, name, m, kp, tf_root)
        if member is not None:
            members[name] = member
    return members


def _load_member(
    check: Checker, name: str, m: LocatedMap, kp: str, tf_root: Path
) -> Member | None:
    n_before = len(check.problems)
    check.keys(m, kp, MEMBER_KEYS, {"url", "cloud"})
    cloud = check.value(m, "cloud", kp, "one of " + ", ".join(CLOUDS), lambda v: v in CLOUDS, "")
    url = check.value(m, "url", kp, "a URL", is_str, "")
    if url and (problem := url_problem(url)):
        check.add(m, "url", f"{kp}.url", f"{problem}, got {url!r}")
    url = url.rstrip("/")
    routed = check.value(m, "routed", kp, "true or false", is_bool, True)
    weight = check.value(m, "weight", kp, "a number >= 0", is_nonneg, None)
    if routed and weight is None and "weight" not in m:
        check.add(m, None, f"{kp}.weight", "required key is missing (routed members need a weight)")
    prime = check.value(m, "prime", kp, "true or false", is_bool, False)
    health = check.value(m, "health", kp, "a URL", is_str, f"{url}/health")
    versions = check.value(m, "versions", kp, "a URL", is_str, f"{url}/versions")
    for key, value in (("health", health), ("versions", versions)):
        if key in m and value and (problem := url_problem(value)):
            check.add(m, key, f"{kp}.{key}", f"{problem}, got {value!r}")
    k8s = check.value(m, "kubernetes_version", kp, "a version like \"1.29\" (quoted)",
                      lambda v: isinstance(v, str) and bool(KUBERNETES_VERSION.match(v)), None)
    target = check.value(m, "target_weight", kp, "a number > 0", is_positive, None)

    cluster = Cluster()
    if cloud:
        allowed, required = CLUSTER_KEYS[cloud]
        if cloud == "external":
            if "cluster" in m:
                check.add(m, "cluster", f"{kp}.cluster",
                          "an external member is run by a partner: it has no cluster here")
        elif "cluster" not in m:
            needs = ", ".join(sorted(required))
            check.add(m, None, f"{kp}.cluster",
                      f"required key is missing ({cloud} members need {needs})")
        else:
            cnode = check.mapping(m["cluster"], m, "cluster", f"{kp}.cluster")
            if cnode is not None:
                check.keys(cnode, f"{kp}.cluster", allowed, required)
                fields = {k: check.value(cnode, k, f"{kp}.cluster", "a string", is_str)
                          for k in allowed}
                cluster = Cluster(**fields)

    terraform = None
    if "terraform" in m:
        terraform = _load_terraform_stack(check, m, kp, tf_root, name)

    releases: list[Release] = []
    if "releases" in m:
        rnode = m["releases"]
        if cloud == "external":
            check.add(m, "releases", f"{kp}.releases",
                      "an external member is never deployed: it has no releases")
        elif not isinstance(rnode, list):
            check.add(m, "releases", f"{kp}.releases", f"expected a list, got {_kind(rnode)}")
        else:
            seen: set[str] = set()
            for i, item in enumerate(rnode):
                release = _load_release(check, rnode, i, item, f"{kp}.releases[{i}]")
                if release is None:
                    continue
                if release.name in seen:
                    check.add(rnode, i, f"{kp}.releases[{i}].name",
                              f"release {release.name!r} is listed twice")
                seen.add(release.name)
                releases.append(release)
    if terraform is not None:
        for out, target_path in terraform.outputs.items():
            rel = target_path.split(".", 1)[0]
            if rel not in {r.name for r in releases}:
                check.add(m["terraform"]["outputs"], out, f"{kp}.terraform.outputs.{out}",
                          f"{target_path!r} must start with one of the member's releases")

    ramp = None
    if "ramp" in m and m["ramp"] is not None:
        ramp = _load_ramp(check, m, kp)
    if len(check.problems) > n_before:
        return None
    return Member(
        name=name, url=url, cloud=cloud, weight=float(weight or 0), prime=bool(prime),
        routed=bool(routed), health_url=health.rstrip("/"), versions_url=versions.rstrip("/"),
        cluster=cluster, kubernetes_version=k8s, terraform=terraform, releases=tuple(releases),
        target_weight=None if target is None else float(target), ramp=ramp,
        location=Location(check.file, line_of(m)),
    )


def _load_terraform_stack(
    check: Checker, m: LocatedMap, kp: str, tf_root: Path, member: str
) -> TerraformStack | None:
    tnode = check.mapping(m["terraform"], m, "terraform", f"{kp}.terraform")
    if tnode is None:
        return None
    tkp = f"{kp}.terraform"
    check.keys(tnode, tkp, {"stack", "outputs"}, {"stack"})
    stack = check.value(tnode, "stack", tkp, "a path under terraform/, like aws/curvenote", is_str)
    outputs: dict[str, str] = {}
    if "outputs" in tnode:
        onode = check.mapping(tnode["outputs"], tnode, "outputs", f"{tkp}.outputs")
        if onode is not None:
            for out, target in onode.items():
                if not is_str(target) or "." not in str(target):
                    check.add(onode, out, f"{tkp}.outputs.{out}",
                              "expected a values path like binderhub.registry.url")
                else:
                    outputs[str(out)] = str(target)
    if not stack:
        return None
    directory = (tf_root / stack).resolve()
    if not directory.is_dir() or not any(directory.glob("*.tf")):
        check.add(tnode, "stack", f"{tkp}.stack",
                  f"terraform stack {stack!r} not found (looked in {directory})")
        return None
    return TerraformStack(path=stack, directory=directory, outputs=outputs)


def _load_release(
    check: Checker, parent: Any, index: int, item: Any, kp: str
) -> Release | None:
    node = check.mapping(item, parent, index, kp)
    if node is None:
        return None
    n_before = len(check.problems)
    check.keys(node, kp, {"name", "chart", "repo", "version", "namespace"},
               {"name", "chart", "version", "namespace"})
    name = check.value(node, "name", kp, "a release name (lowercase, digits, '-')",
                       lambda v: isinstance(v, str) and bool(NAME.match(v)), "")
    chart = check.value(node, "chart", kp, "a chart reference", is_str, "")
    repo = check.value(node, "repo", kp, "a chart repository URL", is_str, None)
    version = check.value(node, "version", kp, "an exact version", lambda v: isinstance(v, str), "")
    namespace = check.value(node, "namespace", kp, "a namespace",
                            lambda v: isinstance(v, str) and bool(NAME.match(v)), "")
    if "version" in node and isinstance(node["version"], int | float):
        check.add(node, "version", f"{kp}.version",
                  f"expected an exact version as a quoted string, got {node['version']!r}")
    elif version and not EXACT_VERSION.match(version):
        check.add(node, "version", f"{kp}.version",
                  f"chart versions must be pinned exactly (like 1.2.3), got {version!r}")
    if chart.startswith(PACKAGE_CHART_PREFIX):
        chart_dir = CHARTS_DIR / chart[len(PACKAGE_CHART_PREFIX):]
        chart_yaml = chart_dir / "Chart.yaml"
        if not chart_yaml.exists():
            check.add(node, "chart", f"{kp}.chart", f"no chart {chart!r} ships with this package")
        elif version:
            shipped = _chart_version(chart_yaml)
            if shipped != version:
                check.add(node, "version", f"{kp}.version",
                          f"{chart} ships version {shipped}, config pins {version!r}")
        if repo:
            check.add(node, "repo", f"{kp}.repo", "a package: chart takes no repo")
    elif chart.startswith("oci://"):
        if repo:
            check.add(node, "repo", f"{kp}.repo", "an oci:// chart takes no repo")
    elif chart and not repo:
        check.add(node, None, f"{kp}.repo",
                  "required key is missing (charts by name need their repository URL; "
                  "or use oci://... or package:NAME)")
    elif repo and (problem := url_problem(repo)):
        check.add(node, "repo", f"{kp}.repo", f"{problem}, got {repo!r}")
    if len(check.problems) > n_before:
        return None
    return Release(name=name, chart=chart, version=version, namespace=namespace, repo=repo,
                   location=Location(check.file, line_of(node)))


def _chart_version(chart_yaml: Path) -> str:
    for line in chart_yaml.read_text(encoding="utf-8").splitlines():
        if line.startswith("version:"):
            return line.split(":", 1)[1].strip().strip("\"'")
    return ""


def _load_ramp(check: Checker, m: LocatedMap, kp: str) -> RampState | None:
    rkp = f"{kp}.ramp"
    node = check.mapping(m["ramp"], m, "ramp", rkp)
    if node is None:
        return None
    check.keys(node, rkp, {"steps", "step", "to_weight", "hold", "started", "last_healthy"},
               {"steps", "step", "to_weight"})
    steps = check.value(node, "steps", rkp, "a list of increasing percentages in (0, 100]",
                        lambda v: isinstance(v, list) and bool(v)
                        and all(is_positive(s) and s <= 100 for s in v)
                        and all(a < b for a, b in zip(v, v[1:], strict=False)), None)
    step = check.value(node, "step", rkp, "an integer >= -1",
                       lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= -1, None)
    to_weight = check.value(node, "to_weight", rkp, "a number > 0", is_positive, None)
    hold = check.value(node, "hold", rkp, "a duration like 30m", is_str, "30m")
    started = check.value(node, "started", rkp, "a timestamp", lambda v: v is None or is_str(v))
    healthy = check.value(node, "last_healthy", rkp, "a timestamp",
                          lambda v: v is None or is_str(v))
    if steps is None or step is None or to_weight is None:
        return None
    if step >= len(steps):
        check.add(node, "step", f"{rkp}.step",
                  f"step {step} is past the last of {len(steps)} steps")
        return None
    return RampState(steps=tuple(float(s) for s in steps), step=step, to_weight=float(to_weight),
                     hold=hold, started=started, last_healthy=healthy)


def _check_federation(check: Checker, root: LocatedMap, members: Mapping[str, Member]) -> None:
    mnode = root.get("members")
    if not isinstance(mnode, LocatedMap) or not members:
        if isinstance(mnode, LocatedMap) and not mnode:
            check.add(root, "members", "members", "the federation needs at least one member")
        return
    routed_primes = [m.name for m in members.values() if m.routed and m.prime]
    if len(routed_primes) != 1:
        names = ", ".join(routed_primes) or "none"
        check.add(root, "members", "members",
                  f"exactly one routed member must be prime (found: {names})")
    for m in members.values():
        if m.prime and not m.routed:
            check.add(mnode[m.name], "prime", f"members.{m.name}.prime",
                      "a member that is not routed cannot be prime")
        if m.ramp is not None and m.cloud == "external":
            check.add(mnode[m.name], "ramp", f"members.{m.name}.ramp",
                      "external members cannot be ramped")


def _check_values_files(
    config_dir: Path, members: Mapping[str, Member], documents: dict[Path, Any]
) -> list[Problem]:
    """Values files are keyed by release name; an unknown member file or release key is an
    error (a typo there would otherwise silently deploy nothing)."""
    problems: list[Problem] = []
    all_releases = {r.name for m in members.values() for r in m.releases}
    for secret in (False, True):
        base = config_dir / "secrets" / "values" if secret else config_dir / "values"
        if not base.is_dir():
            continue
        for path in sorted(base.glob("*.yaml")):
            if path.name.endswith(".example.yaml"):
                continue
            stem = path.stem
            display = display_path(path)
            if stem != "common" and stem not in members:
                problems.append(Problem(display, None, "",
                                        f"no member named {stem!r} in {FEDERATION_FILE}"))
                continue
            allowed = all_releases if stem == "common" else {r.name for r in members[stem].releases}
            try:
                data = load_located(path, display)
            except ConfigError as exc:
                problems += exc.problems
                continue
            documents[path] = data
            if data is None:
                continue
            if not isinstance(data, LocatedMap):
                problems.append(Problem(display, 1, "", f"expected a mapping of release names "
                                        f"to values, got {_kind(data)}"))
                continue
            for key, value in data.items():
                if key not in allowed:
                    owner = "any member" if stem == "common" else f"member {stem!r}"
                    problems.append(Problem(
                        display, line_of(data, key), str(key),
                        f"not a release of {owner} (releases: {', '.join(sorted(allowed))})"))
                elif value is not None and not isinstance(value, LocatedMap):
                    problems.append(Problem(
                        display, line_of(data, key), str(key),
                        f"expected a mapping of Helm values, got {_kind(value)}"))
    return problems


def iter_values_files(fed: Federation, member: str) -> Iterator[tuple[str, Path, bool]]:
    """The values layers of a member in precedence order (lowest first): name, path, secret."""
    yield "config common", fed.values_file(None), False
    yield "config member", fed.values_file(member), False
    yield "secrets common", fed.values_file(None, secret=True), True
    yield "secrets member", fed.values_file(member, secret=True), True
