"""Compare the commands a deploy repository's own `deploy.py --dry-run` prints with our plan."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation_deploy.adopt.sources import coalesce_values, load_plain_yaml, merge_values
from federation_deploy.config import Federation, Member, Release, values_layers
from federation_deploy.values.render import (
    RenderedRelease,
    chart_default_values,
    is_redirector_release,
)

DRY_RUN_PREFIX = "dry-run:"
# helm and kubectl options that take a value as the next word (when not written --opt=value)
_VALUE_OPTIONS = {"-f", "--values", "-n", "--namespace", "--version", "--repo", "--set",
                  "--set-string", "--timeout", "--context", "--kube-context", "--output", "-o"}
# what deploy.py's helm flags become here, said once (README "What changes compared with
# deploy.py"): every difference of this kind is intended
INTENDED_FLAGS = {
    "--cleanup-on-fail": "federation-deploy upgrades with --atomic --wait instead: a failed "
                         "upgrade is rolled back (helm's --atomic also cleans up what it made)",
    "--create-namespace": "federation-deploy creates the namespace with --create-namespace too",
}
ROLLOUT_NOTE = ("deploy.py waits with `kubectl rollout status` after each release but "
                "cert-manager; federation-deploy waits within each upgrade (helm --wait, "
                "--atomic rolls back) and then with `kubectl rollout status` for the "
                "namespaces of all releases (its rollout stage)")
VALUES_STDIN_NOTE = ("federation-deploy passes the merged values on stdin (pyhelm3), not the "
                     "files with -f: the files and the merge are compared instead")


@dataclass(frozen=True)
class HelmRelease:
    """One `helm upgrade --install` deploy.py printed."""

    name: str
    namespace: str
    chart: str
    version: str | None
    repo: str | None
    values: tuple[str, ...]
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Step:
    """One step of a deploy, for comparing order: its kind and what identifies it."""

    kind: str  # auth, command, crds, release, rollout
    key: str

    def describe(self) -> str:
        return f"{self.kind} {self.key}"


@dataclass
class DryRun:
    """What deploy.py's dry run printed, read."""

    steps: list[Step] = field(default_factory=list)
    releases: list[HelmRelease] = field(default_factory=list)


@dataclass(frozen=True)
class Difference:
    what: str
    intended: bool
    why: str = ""

    def render(self) -> str:
        mark = "intended" if self.intended else "NOT INTENDED"
        return f"- [{mark}] {self.what}" + (f": {self.why}" if self.why else "")


@dataclass
class ShadowReport:
    member: str
    differences: list[Difference] = field(default_factory=list)
    compared: list[str] = field(default_factory=list)  # what was compared, for the summary

    @property
    def unintended(self) -> list[Difference]:
        return [d for d in self.differences if not d.intended]


# --------------------------------------------------------------------------------------------
# deploy.py's output


def normalize_argv(argv: Sequence[str]) -> tuple[str, ...]:
    """Interpreters by one name (deploy.py's sys.executable is a full path; a hook names
    python3), so that the same script run the same way compares equal."""
    out = list(argv)
    if out and re.fullmatch(r"python[0-9.]*", Path(out[0]).name):
        out[0] = "python"
        if out[1:3] == ["-m", "pytest"]:
            out[1:3] = ["pytest"]
            out = out[1:]
    return tuple(out)


def _options(argv: Sequence[str]) -> tuple[dict[str, list[str]], list[str], list[str]]:
    """(options with values, positional words, flags) of a helm or kubectl command line."""
    values: dict[str, list[str]] = {}
    positional: list[str] = []
    flags: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word.startswith("-") and "=" in word:
            name, value = word.split("=", 1)
            values.setdefault(name, []).append(value)
        elif word in _VALUE_OPTIONS and i + 1 < len(argv):
            values.setdefault(word, []).append(argv[i + 1])
            i += 1
        elif word.startswith("-"):
            flags.append(word)
        else:
            positional.append(word)
        i += 1
    return values, positional, flags


def _helm_release(argv: Sequence[str]) -> HelmRelease | None:
    values, positional, flags = _options(argv[1:])
    words = [w for w in positional if w not in ("upgrade", "diff")]
    if "upgrade" not in positional or len(words) < 2:
        return None
    namespace = (values.get("--namespace") or values.get("-n") or ["default"])[-1]
    files = [*values.get("-f", []), *values.get("--values", [])]
    # -f and --values interleave on one command line: keep the printed order
    ordered = [v for i, w in enumerate(argv) for v in _value_at(argv, i, w) if v in files]
    return HelmRelease(name=words[0], namespace=namespace, chart=words[1],
                       version=_last(values, "--version"), repo=_last(values, "--repo"),
                       values=tuple(ordered),
                       flags=tuple(f for f in flags if f != "--install"))


def _last(values: Mapping[str, list[str]], option: str) -> str | None:
    given = values.get(option)
    return given[-1] if given else None


def _value_at(argv: Sequence[str], i: int, word: str) -> Iterator[str]:
    if word in ("-f", "--values") and i + 1 < len(argv):
        yield argv[i + 1]
    elif word.startswith("--values="):
        yield word.split("=", 1)[1]


def parse_dry_run(text: str) -> DryRun:
    """The `dry-run: ARGV` lines of deploy.py's output as steps and helm releases.

    deploy.py prints each command space-joined; its arguments have no spaces (paths, flags),
    so splitting on whitespace gives the argv back."""
    run = DryRun()
    for line in text.splitlines():
        if not line.startswith(DRY_RUN_PREFIX):
            continue
        argv = line[len(DRY_RUN_PREFIX):].split()
        if not argv:
            continue
        tool = Path(argv[0]).name
        if tool in ("gcloud", "aws", "az") or argv[:3] == ["kubectl", "config", "use-context"]:
            run.steps.append(Step("auth", " ".join(argv[:3])))
        elif tool == "helm":
            release = _helm_release(argv)
            if release is None:
                run.steps.append(Step("command", " ".join(argv)))
                continue
            run.releases.append(release)
            run.steps.append(Step("release", f"{release.namespace}/{release.name}"))
        elif tool == "kubectl" and argv[1:2] in (["apply"], ["create"], ["replace"]):
            values, _, _ = _options(argv[1:])
            for source in values.get("-f", []):
                run.steps.append(Step("crds", source))
        elif tool == "kubectl" and argv[1:3] == ["rollout", "status"]:
            values, _, _ = _options(argv[1:])
            key = (values.get("--namespace") or values.get("-n") or ["default"])[-1]
            if run.steps[-1:] != [Step("rollout", key)]:
                run.steps.append(Step("rollout", key))
        elif tool == "kubectl" and argv[1:2] == ["get"]:
            continue  # the listing the rollout wait reads
        else:
            run.steps.append(Step("command", " ".join(normalize_argv(argv))))
    return run


# --------------------------------------------------------------------------------------------
# our plan


@dataclass(frozen=True)
class PlannedStep:
    step: Step
    after: str  # the stage a hook runs after; "" for releases


def planned_steps(fed: Federation, member: Member) -> list[PlannedStep]:
    """What `deploy MEMBER` runs, in order (auth itself left out: deploy.py runs as --local)."""
    placeholders = {**member.hook_placeholders(), "config_dir": str(fed.config_dir)}

    def hooks(after: str) -> list[PlannedStep]:
        return [PlannedStep(Step("command", " ".join(normalize_argv(
            h.filled_argv(placeholders)))), after) for h in member.hooks if h.after == after]

    steps = hooks("auth")
    for release in member.releases:
        if release.crds:
            steps.append(PlannedStep(Step("crds", release.crds), ""))
        steps.append(PlannedStep(Step("release", f"{release.namespace}/{release.helm_name}"), ""))
    for after in ("releases", "rollout", "verify"):
        steps += hooks(after)
    return steps


# --------------------------------------------------------------------------------------------
# the comparison


def _release_files(fed: Federation, member: Member, release: Release) -> list[tuple[str, bool]]:
    """(path relative to the config directory, secret) of each values file we read."""
    found = []
    for layer in values_layers(fed, member, release):
        if layer.missing is None and layer.path.exists():
            found.append((layer.path.relative_to(fed.config_dir).as_posix(), layer.secret))
    return found


def _chart_of(fed: Federation, release: Release) -> tuple[str, str | None]:
    if release.local_chart is not None:
        return Path(release.local_chart).resolve().as_posix(), None
    return release.chart, release.repo


def _their_chart(fed: Federation, theirs: HelmRelease) -> tuple[str, str | None]:
    local = fed.config_dir / theirs.chart
    if not theirs.chart.startswith("oci://") and (local / "Chart.yaml").is_file():
        return local.resolve().as_posix(), None
    return theirs.chart, theirs.repo


def _leaves(data: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(data, Mapping) and data:
        for key, value in data.items():
            yield from _leaves(value, (*prefix, str(key)))
    else:
        yield prefix


def value_differences(ours: Any, theirs: Any, path: tuple[str, ...] = ()
                      ) -> Iterator[tuple[str, ...]]:
    """Key paths where two merged values differ (a key only one side has counts)."""
    if isinstance(ours, Mapping) and isinstance(theirs, Mapping):
        for key in dict.fromkeys([*map(str, ours), *map(str, theirs)]):
            # a null reaches helm as "delete": the same as leaving the key out
            a, b = ours.get(key), theirs.get(key)
            yield from value_differences(a, b, (*path, key))
    elif ours != theirs:
        yield path


def _merge_files(fed: Federation, files: Sequence[str]) -> tuple[Any, set[tuple[str, ...]]]:
    """deploy.py's merge of its -f files (helm's: later wins, null deletes), and the key
    paths the secret files set (their values are compared, never shown)."""
    merged: Any = {}
    secret_keys: set[tuple[str, ...]] = set()
    for relative in files:
        data = load_plain_yaml(fed.config_dir / relative, relative) or {}
        if relative.startswith("secrets/"):
            secret_keys.update(_leaves(data))
        merged = merge_values(merged, data)
    return merged, secret_keys


def _is_secret(path: tuple[str, ...], secret_keys: set[tuple[str, ...]]) -> bool:
    return any(path[:len(k)] == k or k[:len(path)] == path for k in secret_keys)


class _Comparison:
    def __init__(self, fed: Federation, member: Member, rendered: Sequence[RenderedRelease],
                 without_secrets: bool) -> None:
        self.fed, self.member, self.without_secrets = fed, member, without_secrets
        self.rendered = {r.release.name: r for r in rendered}
        self.report = ShadowReport(member.name)

    def add(self, what: str, intended: bool, why: str = "") -> None:
        self.report.differences.append(Difference(what, intended, why))

    def releases(self, run: DryRun) -> None:
        theirs = {(r.namespace, r.name): r for r in run.releases}
        flags_seen: set[str] = set()
        for release in self.member.releases:
            key = (release.namespace, release.helm_name)
            label = f"release {release.helm_name} in {release.namespace}"
            their = theirs.pop(key, None)
            if their is None:
                self.add(f"{label}: deploy.py does not deploy it", False)
                continue
            self.report.compared.append(label)
            self.chart(label, release, their)
            for flag in their.flags:
                if flag not in flags_seen:
                    flags_seen.add(flag)
                    why = INTENDED_FLAGS.get(flag)
                    self.add(f"deploy.py's helm flag {flag}", why is not None,
                             why or "federation-deploy does not pass it")
            self.values(label, release, their)
        for namespace, name in theirs:
            self.add(f"release {name} in {namespace}: deploy.py deploys it, federation.yaml "
                     "has no such release", False)
        if run.releases:
            self.add("values files passed with -f", True, VALUES_STDIN_NOTE)

    def chart(self, label: str, release: Release, their: HelmRelease) -> None:
        ours_chart, their_chart = _chart_of(self.fed, release), _their_chart(self.fed, their)
        if ours_chart != their_chart:
            self.add(f"{label}: chart {describe(ours_chart)} here, {describe(their_chart)} in "
                     "deploy.py", False)
        if release.local_chart is None and (their.version or "") != release.version:
            self.add(f"{label}: version {release.version} here, {their.version} in deploy.py",
                     False)

    def values(self, label: str, release: Release, their: HelmRelease) -> None:
        ours_files = _release_files(self.fed, self.member, release)
        secret = {path for path, is_secret in ours_files if is_secret}
        their_files = [f.removeprefix("./") for f in their.values]
        if [p for p, _ in ours_files] != their_files:
            self.add(f"{label}: values files differ", False,
                     f"here {[p for p, _ in ours_files]}, deploy.py {their_files}")
            return
        rendered = self.rendered.get(release.name)
        if rendered is None:
            return
        files = list(their_files)
        if self.without_secrets:
            # secret files compared by path only (above); the stand-in where the first was,
            # as render --without-secrets does
            stand_in = rendered.stand_in
            kept: list[str] = []
            for path in files:
                if path in secret or path.startswith("secrets/"):
                    if stand_in is not None and stand_in not in kept:
                        kept.append(stand_in)
                    continue
                kept.append(path)
            files = kept
        merged, secret_keys = _merge_files(self.fed, files)
        secret_keys |= set(rendered.secret_paths)
        # both over the chart's own values.yaml, as helm merges them
        defaults = chart_default_values(release) or {}
        ours = coalesce_values(defaults, rendered.values)
        merged = coalesce_values(defaults, merged)
        redirector = is_redirector_release(self.fed, self.member, release)
        added: list[str] = []
        for keypath in value_differences(ours, merged):
            where = ".".join(keypath)
            if redirector and keypath[:2] == ("federationRedirect", "hosts"):
                continue  # said once below
            if redirector and keypath[:1] == ("federationRedirect",) \
                    and _get(merged, keypath) is None:
                added.append(where)  # a key of this package's redirector the chart lacks
                continue
            if _is_secret(keypath, secret_keys):
                self.add(f"{label}: value {where} differs (a secret value: not shown)", False)
            else:
                self.add(f"{label}: value {where} differs", False,
                         f"here {_get(rendered.values, keypath)!r}, deploy.py "
                         f"{_get(merged, keypath)!r}")
        if added:
            self.add(f"{label}: {', '.join(added)} set", True,
                     "keys of federation-deploy's redirector (generated from federation.yaml; "
                     "mybinder's federation-redirect image ignores them)")
        if redirector:
            self.host_names(label, ours, merged)
            self.add(f"{label}: federationRedirect.hosts", True,
                     "generated from federation.yaml's members (weights, prime, urls), "
                     "replacing the values files' block")

    def host_names(self, label: str, ours: Any, theirs: Any) -> None:
        """The redirector's host names must stay: it ranks members by them (rendezvous
        hashing: a renamed host moves repositories between members) and labels its metrics
        with them (members.NAME.redirector_host keeps a name that is not the member's)."""
        def names(values: Any) -> list[str]:
            hosts = _get(values, ("federationRedirect", "hosts"))
            return sorted(str(k) for k, v in (hosts or {}).items() if v is not None)
        here, there = names(ours), names(theirs)
        if here != there:
            self.add(f"{label}: redirector host names differ", False,
                     f"here {here}, deploy.py {there} (the redirector ranks members by host "
                     "name: set members.NAME.redirector_host to keep deploy.py's)")

    def steps(self, run: DryRun, planned: Sequence[PlannedStep], local: bool) -> None:
        theirs = [s for s in run.steps if s.kind not in ("rollout", "auth")]
        if any(s.kind == "rollout" for s in run.steps):
            self.add("rollout wait", True, ROLLOUT_NOTE)
        ours = [p.step for p in planned]
        for plan in planned:
            if plan.step in theirs:
                continue
            if plan.after == "verify":
                self.add(f"step {plan.step.describe()} (after verify)", True,
                         "deploy.py does not run it; the repository's CD runs it after "
                         "deploy.py (post-deploy tests)")
            elif plan.after == "auth" and local and plan.step.key.startswith("kubectl "):
                self.add(f"step {plan.step.describe()} (after auth)", True,
                         "deploy.py runs it in its auth branch, which --local skips")
            else:
                self.add(f"step {plan.step.describe()}: deploy.py does not run it", False)
        for step in theirs:
            if step not in ours:
                self.add(f"step {step.describe()}: deploy.py runs it, federation.yaml does "
                         "not", False)
        common_ours = [s for s in ours if s in theirs]
        common_theirs = [s for s in theirs if s in ours]
        if common_ours != common_theirs:
            self.add("order of steps", False,
                     f"here {[s.describe() for s in common_ours]}, deploy.py "
                     f"{[s.describe() for s in common_theirs]}")
        self.report.compared.append(f"{len(common_ours)} steps in order")


def describe(chart: tuple[str, str | None]) -> str:
    name, repo = chart
    return f"{name} from {repo}" if repo else name


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def compare(fed: Federation, member: Member, output: str,
            rendered: Sequence[RenderedRelease], *, without_secrets: bool = False,
            local: bool = True) -> ShadowReport:
    """Compare deploy.py's dry-run output for member with our plan and rendered values.

    Each difference is intended (documented: --atomic, values on stdin, the generated
    redirector hosts, ...) or not. A secret value that differs is named by its key only."""
    run = parse_dry_run(output)
    comparison = _Comparison(fed, member, rendered, without_secrets)
    comparison.releases(run)
    comparison.steps(run, planned_steps(fed, member), local)
    return comparison.report
