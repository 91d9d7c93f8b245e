"""Load config/ once, driven by the schema tables; a Checker collects every problem with
file:line:key, and nothing is returned from invalid config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from federation_deploy.config import repository, schema
from federation_deploy.config.advice import chart_lock_notes, redirector_warnings
from federation_deploy.config.aws_names import cluster_name, iam_conflicts
from federation_deploy.config.charts import (
    ChartTable,
    ResolvedChart,
    check_exact_version,
    load_chart_table,
    release_chart_names,
    resolve_release_chart,
    unused_chart_warnings,
)
from federation_deploy.config.freeze import read_freeze, read_notifications
from federation_deploy.config.gitcrypt import is_git_crypt_locked
from federation_deploy.config.model import (
    CheckSettings,
    Cluster,
    DrainState,
    Federation,
    Location,
    Member,
    RampState,
    RedirectorSettings,
    Release,
    TerraformStack,
)
from federation_deploy.config.problems import (
    Checker,
    confined,
    display_path,
    kind_of,
    one_resolution,
)
from federation_deploy.config.rings import read_rings, read_rollout, versions_during_rollout
from federation_deploy.config.schema import FEDERATION_FILE, NAME, shown_url, url_problem
from federation_deploy.config.values import check_listed_files, check_values_files
from federation_deploy.errors import CONFIG_DIR_NOT_FOUND, ConfigError, Problem
from federation_deploy.redirector.config import same_urls
from federation_deploy.yamlio import LocatedMap, line_of, load_located


@one_resolution
def load_federation(config_dir: Path | str) -> Federation:
    """Load config_dir/federation.yaml and every values file; raise ConfigError listing all
    problems. Nothing is returned from invalid config."""
    config_dir = Path(config_dir)
    path = config_dir / FEDERATION_FILE
    display = display_path(path)
    if not config_dir.is_dir():
        raise ConfigError.single(
            str(config_dir), None, "", CONFIG_DIR_NOT_FOUND
        )
    root = load_located(path, display)
    check = Checker(display)
    if not isinstance(root, LocatedMap):
        raise ConfigError.single(display, 1, "", f"expected a mapping, got {kind_of(root)}")
    check.keys(root, "", schema.FEDERATION)

    tf_version, tf_root = _load_terraform_settings(check, root, path.parent)
    charts = load_chart_table(check, root)
    stand_in = repository.read_stand_in(check, root, path.parent)
    members = _load_members(check, root, path.parent, tf_root, charts)
    declared = root.get("members") if isinstance(root.get("members"), LocatedMap) else {}
    complete = len(members) == len(declared or {})
    redirector = _load_redirector(check, root, members, set(declared or {}))
    ci_order, ci_staging, ci_manual = repository.read_ci(check, root, members,
                                                         set(declared or {}))
    generation = check.value(root, "", schema.FEDERATION["generation"])
    rings = read_rings(check, root, members, set(declared or {}), ci_staging)
    rollout = read_rollout(check, root, set(declared or {}), charts, rings)
    members = versions_during_rollout(members, rollout)
    sandbox = repository.read_sandbox(check, root, path.parent)
    # a malformed `freeze:` is no load error (an incident never waits for a freeze): kept
    # apart, refused by what a freeze refuses (commands/freeze.py) and by validate
    freeze_check = Checker(check.file)
    freeze, notifications = read_freeze(freeze_check, root), read_notifications(check, root)
    if freeze_check.problems:
        freeze = None  # not known: fed.freeze_problems says why
    if complete:
        # cross-member rules only make sense once every member loaded; otherwise they would
        # report the consequences of a problem already listed
        _check_federation(check, root, members)
    for member in members.values():
        _check_kubeconfig_path(check, member, root["members"][member.name], config_dir / "secrets")
    warnings = unused_chart_warnings(charts, display, release_chart_names(root))
    for member in members.values():
        if member.terraform and not (member.terraform.directory / ".terraform.lock.hcl").exists():
            warnings.append(
                f"member {member.name}: terraform stack {member.terraform.path} has no "
                ".terraform.lock.hcl (make one with `federation-deploy terraform lock "
                f"{member.name}` where the registry is reachable); plan and apply will refuse it"
            )
    problems = list(check.problems)
    documents: dict[Path, Any] = {}
    locked: set[Path] = set()
    if not problems:
        problems += check_values_files(config_dir, members, documents, locked, warnings)
        listed = check_listed_files(config_dir, members, documents, display_path)
        problems += listed.problems
        warnings += listed.warnings
        locked |= listed.locked
        if stand_in is not None:
            problems += _check_stand_in(stand_in, documents)
    if problems:
        raise ConfigError(problems)
    if locked:
        # one line for them all (it was one per file, on every validate of a locked clone)
        shown = ", ".join(sorted(display_path(p) for p in locked))
        warnings.append(f"{len(locked)} file(s) locked with git-crypt, never read: {shown}; a "
                        "render or deploy that needs one stops (run git-crypt unlock), "
                        "--without-secrets skips them")
    warnings += chart_lock_notes(members, display_path)
    fed = Federation(
        config_dir=config_dir,
        path=path,
        terraform_version=tf_version,
        terraform_root=tf_root,
        redirector=redirector,
        members=members,
        warnings=tuple(warnings),
        secrets_stand_in=stand_in,
        ci_order=ci_order,
        ci_staging=ci_staging,
        ci_manual=ci_manual,
        locked_files=frozenset(locked),
        generation=int(generation),
        values_documents=documents,
        charts=charts.pins,
        sandbox=sandbox,
        rings=rings,
        rollout=rollout,
        freeze=freeze,
        notifications=notifications,
        freeze_problems=tuple(freeze_check.problems),
    )
    leftovers = redirector_warnings(fed, display_path)
    return replace(fed, warnings=(*fed.warnings, *leftovers)) if leftovers else fed


def _check_stand_in(path: Path, documents: dict[Path, Any]) -> list[Problem]:
    shown = display_path(path)
    if is_git_crypt_locked(path):
        return [Problem(shown, None, "", "the secrets stand-in is locked with git-crypt: it "
                        "must be a plain file of made-up values")]
    try:
        data = documents[path] = load_located(path, shown)
    except ConfigError as exc:
        return list(exc.problems)
    if data is not None and not isinstance(data, LocatedMap):
        return [Problem(shown, 1, "", "expected a mapping of Helm values")]
    return []


def _load_terraform_settings(check: Checker, root: LocatedMap, base: Path) -> tuple[str, Path]:
    section = schema.TERRAFORM
    version, tf_root = section["version"].default, (base / ".." / "terraform").resolve()
    node = root.get("terraform")
    if "terraform" in root:
        tf = check.mapping(node, root, "terraform", "terraform")
        if tf is not None:
            check.keys(tf, "terraform", section)
            version = check.value(tf, "terraform", section["version"])
            rel = check.value(tf, "terraform", section["root"])
            if rel:
                tf_root = (base / rel).resolve()
    return version, tf_root


def _load_redirector(
    check: Checker, root: LocatedMap, members: Mapping[str, Member], declared: set[str]
) -> RedirectorSettings:
    section = schema.REDIRECTOR
    node = check.mapping(root.get("redirector"), root, "redirector", "redirector")
    if node is None:
        return _redirector_settings(section.defaults(), _check_settings(schema.CHECK.defaults()))
    kp = "redirector"
    check.keys(node, kp, section)
    read = {name: check.value(node, kp, section[name]) for name in ("host", "member", "release")}
    member, release = read["member"], read["release"]
    if member and member not in declared:
        check.add(node, "member", f"{kp}.member", f"unknown member {member!r}")
    elif member not in members:
        pass  # the member itself is invalid and already reported
    elif member and release and release not in {r.name for r in members[member].releases}:
        check.add(node, "release", f"{kp}.release",
                  f"member {member!r} has no release {release!r}")
    elif member and members[member].cloud == "external":
        check.add(node, "member", f"{kp}.member", "the redirector cannot run on an external member")
    for name in ("load_balancer", "pod_headroom", "host_cookie_age_hours", "ramp_policy",
                 "ramp_probe", "ramp_preflight", "prometheus_url", "prime_fallback_after"):
        read[name] = check.value(node, kp, section[name])
    prometheus = read["prometheus_url"]
    if prometheus and (problem := url_problem(prometheus)):
        check.add(node, "prometheus_url", f"{kp}.prometheus_url",
                  f"{problem}, got {shown_url(prometheus)!r}")
        read["prometheus_url"] = None
    settings = schema.CHECK.defaults()
    if "check" in node:
        ckp = f"{kp}.check"
        cnode = check.mapping(node["check"], node, "check", ckp)
        if cnode is not None:
            check.keys(cnode, ckp, schema.CHECK)
            settings = {key.name: check.value(cnode, ckp, key) for key in schema.CHECK.keys}
    return _redirector_settings(read, _check_settings(settings))


def _check_settings(read: Mapping[str, Any]) -> CheckSettings:
    return CheckSettings(
        period=float(read["period"]), jitter=float(read["jitter"]), retries=int(read["retries"]),
        timeout=float(read["timeout"]), failed_period=float(read["failed_period"]),
    )


def _redirector_settings(read: Mapping[str, Any], check: CheckSettings) -> RedirectorSettings:
    return RedirectorSettings(
        host=read["host"], member=read["member"], release=read["release"],
        load_balancer=read["load_balancer"], check=check, pod_headroom=read["pod_headroom"],
        host_cookie_age_hours=float(read["host_cookie_age_hours"]),
        ramp_policy=read["ramp_policy"], ramp_probe=read["ramp_probe"],
        ramp_preflight=read["ramp_preflight"],
        prometheus_url=(read["prometheus_url"] or "").rstrip("/") or None,
        prime_fallback_after=float(read["prime_fallback_after"]),
    )


def _load_members(
    check: Checker, root: LocatedMap, base: Path, tf_root: Path, charts: ChartTable
) -> dict[str, Member]:
    members: dict[str, Member] = {}
    node = check.mapping(root.get("members"), root, "members", "members")
    if node is None:
        return members
    for name, mnode in node.items():
        kp = f"members.{name}"
        if check.retyped_name(node, name, "members", "the member name"):
            continue
        if not isinstance(name, str) or not NAME.match(name):
            check.add(node, name, kp, "member names are lowercase letters, digits and '-'")
            continue
        m = check.mapping(mnode, node, name, kp)
        if m is None:
            continue
        member = _load_member(check, name, m, kp, tf_root, base, charts)
        if member is not None:
            members[name] = member
    return members


def _check_kubeconfig_path(check: Checker, member: Member, m: LocatedMap,
                           secrets_dir: Path) -> None:
    """A kubeconfig member's file must be under secrets/ (never ../../etc/passwd)."""
    kubeconfig, key_file = member.cluster.kubeconfig, member.cluster.key_file
    if kubeconfig and not confined(secrets_dir, kubeconfig):
        check.add(m["cluster"], "kubeconfig", f"members.{member.name}.cluster.kubeconfig",
                  f"expected a path under {secrets_dir.name}/, got {kubeconfig!r}")
    if key_file and not confined(secrets_dir.parent, key_file):
        check.add(m["cluster"], "key_file", f"members.{member.name}.cluster.key_file",
                  f"expected a path inside the config directory, got {key_file!r}")


def _load_member(
    check: Checker, name: str, m: LocatedMap, kp: str, tf_root: Path, base: Path,
    charts: ChartTable,
) -> Member | None:
    section = schema.MEMBER
    n_before = len(check.problems)
    check.keys(m, kp, section)
    cloud = check.value(m, kp, section["cloud"])
    url = check.value(m, kp, section["url"])
    if url and (problem := url_problem(url)):
        check.add(m, "url", f"{kp}.url", f"{problem}, got {shown_url(url)!r}")
    url = url.rstrip("/")
    routed = check.value(m, kp, section["routed"])
    weight = check.value(m, kp, section["weight"])
    if routed and weight is None and "weight" not in m:
        check.add(m, None, f"{kp}.weight", "required key is missing (routed members need a weight)")
    prime = check.value(m, kp, section["prime"])
    redirector_host = check.value(m, kp, section["redirector_host"])
    health = check.value(m, kp, section["health"], f"{url}/health")
    versions = check.value(m, kp, section["versions"], f"{url}/versions")
    for key, value in (("health", health), ("versions", versions)):
        if key in m and value and (problem := url_problem(value)):
            check.add(m, key, f"{kp}.{key}", f"{problem}, got {shown_url(value)!r}")
    k8s = check.value(m, kp, section["kubernetes_version"])
    target = check.value(m, kp, section["target_weight"])

    cluster = Cluster()
    if cloud:
        cluster_section = schema.CLUSTER[cloud]
        if cloud == "external":
            if "cluster" in m:
                check.add(m, "cluster", f"{kp}.cluster",
                          "an external member is run by a partner: it has no cluster here")
        elif "cluster" not in m:
            needs = ", ".join(sorted(cluster_section.required))
            check.add(m, None, f"{kp}.cluster",
                      f"required key is missing ({cloud} members need {needs})")
        else:
            cnode = check.mapping(m["cluster"], m, "cluster", f"{kp}.cluster")
            if cnode is not None:
                check.keys(cnode, f"{kp}.cluster", cluster_section)
                fields = {key.name: check.value(cnode, f"{kp}.cluster", key)
                          for key in cluster_section.keys}
                cluster = Cluster(**fields)

    terraform = None
    if "terraform" in m:
        terraform = _load_terraform_stack(check, m, kp, tf_root)

    releases: list[Release] = []
    # names of every listed release, also those that failed to load (already reported)
    listed: set[str] = set()
    if "releases" in m:
        rnode = m["releases"]
        if cloud == "external":
            check.add(m, "releases", f"{kp}.releases",
                      "an external member is never deployed: it has no releases")
        elif not isinstance(rnode, list):
            check.add(m, "releases", f"{kp}.releases", f"expected a list, got {kind_of(rnode)}")
        else:
            seen: set[str] = set()
            live: dict[tuple[str, str], str] = {}
            for i, item in enumerate(rnode):
                if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                    listed.add(item["name"])
                release = _load_release(check, rnode, i, item, f"{kp}.releases[{i}]", base,
                                        charts)
                if release is None:
                    continue
                if release.name in seen:
                    check.add(rnode, i, f"{kp}.releases[{i}].name",
                              f"release {release.name!r} is listed twice")
                # helm names a release per namespace: the same name twice in one is one release
                where = (release.helm_name, release.namespace)
                if where in live:
                    check.add(rnode, i, f"{kp}.releases[{i}].release",
                              f"helm release {where[0]!r} in namespace {where[1]!r} is also "
                              f"release {live[where]!r}")
                seen.add(release.name)
                live[where] = release.name
                releases.append(release)
    if terraform is not None:
        for out, target_path in terraform.outputs.items():
            rel = target_path.split(".", 1)[0]
            if rel not in listed:
                check.add(m["terraform"]["outputs"], out, f"{kp}.terraform.outputs.{out}",
                          f"{target_path!r} must start with one of the member's releases")

    ramp = None
    if "ramp" in m and m["ramp"] is not None:
        ramp = _load_ramp(check, m, kp)
    drained = None
    if "drained" in m and m["drained"] is not None:
        drained = _load_drained(check, m, kp, weight, routed)
    values = repository.read_values_entries(check, m, kp, release_level=False)
    hooks = repository.read_hooks(check, m, kp)
    if cloud == "external" and (values is not None or hooks):
        check.add(m, "hooks" if hooks else "values", kp,
                  "an external member is never deployed: it has no values or hooks")
    if len(check.problems) > n_before:
        return None
    return Member(
        name=name, url=url, cloud=cloud, weight=float(weight or 0), prime=bool(prime),
        routed=bool(routed), health_url=health.rstrip("/"), versions_url=versions.rstrip("/"),
        cluster=cluster, kubernetes_version=k8s, terraform=terraform, releases=tuple(releases),
        target_weight=None if target is None else float(target), ramp=ramp, drained=drained,
        location=Location(check.file, line_of(m)), values=values, hooks=hooks,
        redirector_host=redirector_host,
    )


def _load_terraform_stack(
    check: Checker, m: LocatedMap, kp: str, tf_root: Path
) -> TerraformStack | None:
    section = schema.TERRAFORM_STACK
    tnode = check.mapping(m["terraform"], m, "terraform", f"{kp}.terraform")
    if tnode is None:
        return None
    tkp = f"{kp}.terraform"
    check.keys(tnode, tkp, section)
    stack = check.value(tnode, tkp, section["stack"])
    outputs: dict[str, str] = {}
    if "outputs" in tnode:
        onode = check.mapping(tnode["outputs"], tnode, "outputs", f"{tkp}.outputs")
        if onode is not None:
            for out, target in onode.items():
                if not schema.TERRAFORM_OUTPUT.ok(target):
                    check.add(onode, out, f"{tkp}.outputs.{out}",
                              f"expected {schema.TERRAFORM_OUTPUT_EXPECTED}")
                else:
                    outputs[str(out)] = str(target)
    if not stack:
        return None
    if not confined(tf_root, stack):
        check.add(tnode, "stack", f"{tkp}.stack",
                  f"expected a path under the terraform root ({tf_root}), got {stack!r}")
        return None
    directory = (tf_root / stack).resolve()
    if not directory.is_dir() or not any(directory.glob("*.tf")):
        check.add(tnode, "stack", f"{tkp}.stack",
                  f"terraform stack {stack!r} not found (looked in {directory})")
        return None
    return TerraformStack(path=stack, directory=directory, outputs=outputs)


def _load_release(
    check: Checker, parent: Any, index: int, item: Any, kp: str, base: Path, charts: ChartTable
) -> Release | None:
    section = schema.RELEASE
    node = check.mapping(item, parent, index, kp)
    if node is None:
        return None
    n_before = len(check.problems)
    check.keys(node, kp, section)
    name, chart, repo, version, namespace, live, crds = (
        check.value(node, kp, section[key])
        for key in ("name", "chart", "repo", "version", "namespace", "release", "crds")
    )
    values = repository.read_values_entries(check, node, kp, release_level=True)
    if crds:
        repository.check_crds(check, node, kp, crds, base)
    local_chart = None
    resolved: ResolvedChart | None
    if repository.is_local_chart(chart):
        # a chart directory: its Chart.yaml has the version (a pin here must agree)
        check_exact_version(check, node, kp)
        local_chart = repository.check_local_chart(check, node, kp, chart, version, base)
        if repo:
            check.add(node, "repo", f"{kp}.repo", "a chart directory takes no repo")
        resolved = ResolvedChart(chart, None, version, None, False)
    else:
        resolved = resolve_release_chart(check, node, kp, charts, chart, repo, version)
    if resolved is None or len(check.problems) > n_before:
        return None
    return Release(name=name, chart=resolved.chart, version=resolved.version,
                   namespace=namespace, repo=resolved.repo,
                   location=Location(check.file, line_of(node)), pin=resolved.pin,
                   overrides_pin=resolved.overrides_pin, helm_release=live, crds=crds,
                   values=values, local_chart=local_chart)


def _load_ramp(check: Checker, m: LocatedMap, kp: str) -> RampState | None:
    section = schema.RAMP
    rkp = f"{kp}.ramp"
    node = check.mapping(m["ramp"], m, "ramp", rkp)
    if node is None:
        return None
    check.keys(node, rkp, section)
    read = {key.name: check.value(node, rkp, key) for key in section.keys}
    steps, step, to_weight = read["steps"], read["step"], read["to_weight"]
    if steps is None or step is None or to_weight is None:
        return None
    if step >= len(steps):
        check.add(node, "step", f"{rkp}.step",
                  f"step {step} is past the last of {len(steps)} steps")
        return None
    return RampState(steps=tuple(float(s) for s in steps), step=step, to_weight=float(to_weight),
                     hold=read["hold"], started=read["started"],
                     last_healthy=read["last_healthy"], rolled_back=read["rolled_back"],
                     inconclusive=read["inconclusive"],
                     evidence=dict(read["evidence"]) if read["evidence"] else None,
                     owner=read["owner"])


def _load_drained(check: Checker, m: LocatedMap, kp: str, weight: Any,
                  routed: Any) -> DrainState | None:
    section = schema.DRAINED
    dkp = f"{kp}.drained"
    node = check.mapping(m["drained"], m, "drained", dkp)
    if node is None:
        return None
    check.keys(node, dkp, section)
    read = {key.name: check.value(node, dkp, key) for key in section.keys}
    if not routed:
        check.add(m, "drained", dkp, "a member that is not routed gets no launches: it cannot "
                  "be drained")
    # the drain is the reason for weight 0: a weight typed back in by hand would send
    # launches to a member the file still calls drained
    if isinstance(weight, int | float) and weight > 0:
        check.add(m, "weight", f"{kp}.weight",
                  f"a drained member's weight stays 0 (drained since {read['since']}: "
                  f"{read['reason']}); give it back with `traffic restore {kp.split('.')[-1]}`")
    if not read["reason"] or not read["since"]:
        return None
    return DrainState(reason=read["reason"], since=read["since"],
                      previous_weight=float(read["previous_weight"]))


def _check_federation(check: Checker, root: LocatedMap, members: Mapping[str, Member]) -> None:
    mnode = root.get("members")
    if not isinstance(mnode, LocatedMap) or not members:
        if isinstance(mnode, LocatedMap) and not mnode:
            check.add(root, "members", "members", "the federation needs at least one member")
        return
    routed_primes = [m.name for m in members.values() if m.routed and m.prime]
    if len(routed_primes) != 1:
        names = ", ".join(routed_primes) or "none"
        message = f"exactly one routed member must be prime (found: {names})"
        if len(routed_primes) > 1:
            # point at the `prime:` that broke the rule: the second one
            second = routed_primes[1]
            check.add(mnode[second], "prime", f"members.{second}.prime", message)
        else:
            check.add(root, "members", "members", message)
    hosts: dict[str, Member] = {}
    for m in members.values():
        other = hosts.setdefault(m.host_name, m)
        if other is not m:
            # said at the `redirector_host:` that takes the name
            at, owner = (m, other) if m.redirector_host else (other, m)
            check.add(mnode[at.name], "redirector_host", f"members.{at.name}.redirector_host",
                      f"redirector host name {m.host_name!r} is already member {owner.name}'s: "
                      "each member needs its own name in the redirector")
    # the redirector's own check (one function): it refuses a config with two such hosts
    for twin, first in same_urls({m.name: m.url for m in members.values() if m.routed}):
        check.add(mnode[twin], "url", f"members.{twin}.url",
                  f"{members[twin].url} is member {first}'s url too (trailing slashes and the "
                  "host's case aside): the redirector refuses such a config")
    for m in members.values():
        if m.prime and not m.routed:
            check.add(mnode[m.name], "prime", f"members.{m.name}.prime",
                      "a member that is not routed cannot be prime")
        if m.ramp is not None and m.cloud == "external":
            check.add(mnode[m.name], "ramp", f"members.{m.name}.ramp",
                      "external members cannot be ramped")
    for earlier, later in iam_conflicts(members):
        check.add(mnode[later.name], "cluster", f"members.{later.name}.cluster.name",
                  f"cluster name {cluster_name(later)!r} overlaps member {earlier.name}'s "
                  f"{cluster_name(earlier)!r}: IAM roles are named <cluster name>-* in the "
                  "account; give each AWS member its own name (not one plus a dash)")

