"""Commands `charts outdated` and `charts bump`: the `charts:` pins against their repositories,
and a pin rewritten in federation.yaml (comments, order and quoting kept)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ruamel.yaml import YAMLError
from ruamel.yaml.comments import CommentedMap

from federation_deploy.actions.chart_repo import (
    ChartRepositoryError,
    oci_chart_version,
    repository_index,
    repository_versions,
)
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import EXACT_VERSION, ChartPin, Federation, load_federation
from federation_deploy.config.chart_versions import (
    ChartStatus,
    is_dev,
    is_newer,
    newest_version,
    report_json,
    report_table,
)
from federation_deploy.errors import EXIT_FAILED, EXIT_OK, ConfigError, UsageError
from federation_deploy.runner import Runner
from federation_deploy.yamlio import atomic_write_text, dumps_round_trip, load_round_trip

SHIPPED = "shipped with federation-deploy"
# Finds the helm binary, only when an oci:// chart needs it (actions.helm.find_helm).
HelmFinder = Callable[[], str]


class _Lookup:
    """Asks each repository once per run: charts from one repository share its index."""

    def __init__(self, runner: Runner, find_helm: HelmFinder) -> None:
        self.runner = runner
        self.find_helm = find_helm
        self.indexes: dict[str, Any] = {}
        self.failures: dict[str, ChartRepositoryError] = {}
        self.helm: str | None = None

    def _index(self, repo: str) -> Any:
        if repo in self.failures:
            raise self.failures[repo]
        if repo not in self.indexes:
            try:
                self.indexes[repo] = repository_index(repo)
            except ChartRepositoryError as exc:
                self.failures[repo] = exc
                raise
        return self.indexes[repo]

    def _helm(self) -> str:
        if self.helm is None:
            self.helm = self.find_helm()
        return self.helm

    def newest(self, pin: ChartPin) -> tuple[str | None, str | None]:
        """(the newest version, a changelog link from the repository) of pin's chart."""
        if pin.chart.startswith("oci://"):
            return oci_chart_version(self.runner, self._helm(), pin.chart,
                                     devel=is_dev(pin.version)), None
        assert pin.repo is not None  # the loader insists on a repo for charts by name
        entries = repository_versions(pin.repo, pin.chart, self._index(pin.repo))
        newest = newest_version((e.version for e in entries), pin.version)
        entry = next((e for e in entries if e.version == newest), None)
        link = None if entry is None else (entry.sources[0] if entry.sources else entry.home)
        return newest, link

    def has_version(self, pin: ChartPin, version: str) -> bool:
        if pin.chart.startswith("oci://"):
            oci_chart_version(self.runner, self._helm(), pin.chart, version=version)
            return True
        assert pin.repo is not None
        entries = repository_versions(pin.repo, pin.chart, self._index(pin.repo))
        return any(e.version == version for e in entries)


def find_helm() -> str:
    """The helm binary (actions.helm.find_helm), imported only when an oci:// chart asks:
    pyhelm3 is not loaded for helm repositories."""
    from federation_deploy.actions.helm import find_helm as find

    return find()


def chart_statuses(fed: Federation, runner: Runner, find_helm: HelmFinder) -> list[ChartStatus]:
    """Every pin of the `charts:` table with the newest version its repository has; a
    repository that cannot be asked is that chart's error, and the others are still asked."""
    lookup = _Lookup(runner, find_helm)
    statuses = []
    for pin in fed.charts.values():
        overrides = {m.name: r.version for m, r in fed.releases_of_chart(pin.name)
                     if r.overrides_pin}
        base: dict[str, Any] = {
            "name": pin.name, "chart": pin.chart, "pinned": pin.version,
            "source": SHIPPED if pin.package_chart else (pin.repo or pin.chart),
            "changelog": pin.changelog, "overrides": overrides,
        }
        if pin.package_chart is not None:
            # its version is the package's own: a newer one comes with a newer federation-deploy
            statuses.append(ChartStatus(**base, newest=pin.version))
            continue
        try:
            newest, link = lookup.newest(pin)
        except ChartRepositoryError as exc:
            statuses.append(ChartStatus(**base, error=str(exc)))
            continue
        if newest is None:
            kind = "dev or stable" if is_dev(pin.version) else "stable"
            statuses.append(ChartStatus(**base, error=f"the repository has no {kind} version"))
            continue
        statuses.append(ChartStatus(**{**base, "changelog": pin.changelog or link},
                                    newest=newest))
    return statuses


def outdated(fed: Federation, runner: Runner, output: str,
             find_helm: HelmFinder = find_helm) -> CommandResult:
    """The report of chart_statuses, as a table or JSON; exit 1 when a repository failed."""
    statuses = chart_statuses(fed, runner, find_helm)
    text = report_json(statuses) if output == "json" else report_table(statuses)
    failed = [s for s in statuses if s.error is not None]
    messages = []
    if not fed.charts:
        messages.append("no charts: table in federation.yaml: nothing is pinned there")
    newer = [s.name for s in statuses if s.outdated]
    if newer:
        messages.append(f"{len(newer)} outdated: " + ", ".join(newer)
                        + " (federation-deploy charts bump NAME)")
    if failed:
        messages.append(f"{len(failed)} chart(s) could not be checked: "
                        + ", ".join(s.name for s in failed)
                        + ("" if output == "json" else " (the whole errors: -o json)"))
    return CommandResult(exit_code=EXIT_FAILED if failed else EXIT_OK, stdout=text,
                         messages=tuple(messages))


def bump(fed: Federation, name: str, version: str | None, runner: Runner,
         check: bool = True, find_helm: HelmFinder = find_helm) -> CommandResult:
    """Set charts.NAME.version to version (default: the newest the repository has), after
    checking the repository has it (unless not `check`: then version is required and written
    as given); members overriding the version are left alone."""
    pin = fed.chart(name)
    if pin.package_chart is not None:
        raise UsageError(f"chart {name!r} ({pin.chart}) ships with federation-deploy: its "
                         "version changes with the package, not in federation.yaml")
    if version is not None and not EXACT_VERSION.match(version):
        raise UsageError(f"{version!r} is not an exact chart version (like 1.2.3)")
    if not check and version is None:
        raise UsageError("--no-check needs a VERSION: the newest is known only by asking the "
                         "repository")
    if check:
        version = _checked_version(pin, version, _Lookup(runner, find_helm))
    assert version is not None
    notes = [f"{m.name} pins its own version {r.version} on release {r.name!r} "
             f"({r.location}): not changed" for m, r in fed.releases_of_chart(name)
             if r.overrides_pin]
    if version == pin.version:
        return CommandResult(messages=(f"charts.{name}.version is already {version}", *notes))
    if fed.rings is not None:
        # the bump goes through the rings: members keep the old version until `rollout`
        # (the workflow after this merges) takes them there, ring by ring
        notes.append(record_rollout(fed, name, version))
    else:
        write_chart_version(fed, name, version)
    older = is_newer(pin.version, version)
    unchecked = () if check else (
        f"not checked: the repository was not asked whether it has {pin.chart} {version} "
        "(--no-check); a deploy fails if it has not",)
    return CommandResult(messages=(
        f"charts.{name}.version: {pin.version} -> {version}"
        f"{' (a downgrade)' if older else ''} ({pin.version_location})",
        *unchecked, *notes,
    ))


def _checked_version(pin: ChartPin, version: str | None, lookup: _Lookup) -> str:
    """version (or the newest) once the repository confirms it has it. A repository that
    cannot be asked changes nothing, and says so."""
    try:
        if version is None:
            newest, _ = lookup.newest(pin)
            if newest is None:
                raise ChartRepositoryError(f"the repository of chart {pin.name!r} has no "
                                           "version to bump to")
            return newest
        if not lookup.has_version(pin, version):
            raise UsageError(f"{pin.repo} has no version {version!r} of chart {pin.chart!r}; "
                             "nothing was changed")
        return version
    except ChartRepositoryError as exc:
        raise ChartRepositoryError(
            f"{exc}: nothing was changed (charts.{pin.name}.version is still {pin.version}); "
            f"`federation-deploy charts bump {pin.name} VERSION --no-check` writes a version "
            "without asking the repository") from None


def write_chart_version(fed: Federation, name: str, version: str) -> Federation:
    """Rewrite charts.NAME.version in federation.yaml round-trip (comments, order and quoting
    kept), atomically; the result is loaded again and, if invalid, the old text put back."""
    path = fed.path
    before = path.read_text(encoding="utf-8")
    try:
        data = load_round_trip(path)
    except YAMLError as exc:
        raise ConfigError.single(str(path), None, "", f"YAML error: {exc}") from None
    charts = data.get("charts") if isinstance(data, CommentedMap) else None
    entry = charts.get(name) if isinstance(charts, CommentedMap) else None
    if not isinstance(entry, CommentedMap):
        raise ConfigError.single(str(path), None, f"charts.{name}",
                                 "chart not found while writing its version")
    current = entry.get("version")
    # keep the spelling people chose: a quoted version stays quoted the same way
    style = type(current) if isinstance(current, str) and type(current) is not str else str
    entry["version"] = style(version)
    atomic_write_text(path, dumps_round_trip(data))
    try:
        return load_federation(fed.config_dir)
    except ConfigError:
        atomic_write_text(path, before)
        raise


def record_rollout(fed: Federation, name: str, version: str) -> str:
    """The bump with a `rollout:` block (ring -1: recorded, not started), in one write through
    the one writer: every member keeps the old version until its ring. Refused while another
    rollout is in progress."""
    from federation_deploy.config import RolloutState
    from federation_deploy.traffic.rings import write_rollout
    from federation_deploy.traffic.weights import snapshot_of

    running = fed.rollout
    if running is not None:
        raise UsageError(f"a rollout of {running.chart} {running.to_version} is in progress "
                         f"(ring {running.ring}): one rollout at a time; finish or abort it "
                         "(`federation-deploy rollout --resume` / `--abort`) before this bump")
    assert fed.rings is not None
    state = RolloutState(chart=name, from_version=fed.chart(name).version, to_version=version,
                         ring=-1, versions_key=fed.rings.versions_key or name)
    write_rollout(snapshot_of(fed), state, pin=(name, version), bump=False)
    return (f"rings: in federation.yaml: a rollout: block records the move, and members keep "
            f"{state.from_version} until `federation-deploy rollout {name} {version}` (or "
            "--resume) takes them there ring by ring")
