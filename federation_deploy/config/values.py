"""The values files of a release in precedence order: the layered default, or the files listed
in federation.yaml (globs sorted, {member}/{namespace} substituted, optional files skipped)."""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation_deploy.config.gitcrypt import UNLOCK_HINT, is_git_crypt_locked
from federation_deploy.config.model import Federation, Member, Release, ValuesFile
from federation_deploy.errors import ConfigError, Problem
from federation_deploy.yamlio import LocatedMap, line_of, load_located

PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class ValuesLayer:
    """One values file of a release: `whole` files are the release's values as they are
    (listed for the release); the others hold a section per release name."""

    name: str
    path: Path
    secret: bool
    whole: bool
    # a required secret entry that matched nothing (a clone without the secrets): an error
    # when the layer is needed, nothing with --without-secrets
    missing: ConfigError | None = None


def substitute(pattern: str, member: str, namespace: str | None) -> str:
    """{member} and (for a release's own list) {namespace} in a values path."""
    text = pattern.replace("{member}", member)
    return text if namespace is None else text.replace("{namespace}", namespace)


def unknown_placeholders(pattern: str, release_level: bool) -> list[str]:
    known = {"member", "namespace"} if release_level else {"member"}
    return [name for name in PLACEHOLDER.findall(pattern) if name not in known]


def expand(config_dir: Path, pattern: str) -> list[Path]:
    """The files a path or glob names, relative to config_dir, sorted (as deploy.py sorts
    its globs); a plain path names its file when it exists."""
    if glob.has_magic(pattern):
        return sorted(p for p in config_dir.glob(pattern) if p.is_file())
    path = config_dir / pattern
    return [path] if path.is_file() else []


def _default_layers(fed: Federation, member: str) -> Iterator[ValuesLayer]:
    # mybinder.org-deploy's order: the more specific layer wins, a member's plain value over a
    # common secret (the first wave put both secret layers above the member's file)
    yield ValuesLayer("config common", fed.values_file(None), False, False)
    yield ValuesLayer("secrets common", fed.values_file(None, secret=True), True, False)
    yield ValuesLayer("config member", fed.values_file(member), False, False)
    yield ValuesLayer("secrets member", fed.values_file(member, secret=True), True, False)


def _listed_layers(fed: Federation, member: Member, entries: tuple[ValuesFile, ...],
                   namespace: str | None) -> Iterator[ValuesLayer]:
    whole = namespace is not None
    for index, entry in enumerate(entries):
        pattern = substitute(entry.pattern, member.name, namespace)
        found = expand(fed.config_dir, pattern)
        if not found and not entry.optional:
            error = ConfigError.single(
                entry.location.file, entry.location.line, f"values[{index}]",
                f"{pattern} matches no file (mark it `optional: true` if it may be absent)")
            if not entry.secret:
                raise error
            yield ValuesLayer(f"values[{index}]", fed.config_dir / pattern, True, whole, error)
        for path in found:
            yield ValuesLayer(f"values[{index}]", path, entry.secret, whole)


def values_layers(fed: Federation, member: Member, release: Release) -> list[ValuesLayer]:
    """The values files of one release, lowest precedence first: the release's own list
    (whole files), else the member's list (sections per release), else the default layers
    values/common < secrets/values/common < values/MEMBER < secrets/values/MEMBER."""
    if release.values is not None:
        return list(_listed_layers(fed, member, release.values, release.namespace))
    if member.values is not None:
        return list(_listed_layers(fed, member, member.values, None))
    return list(_default_layers(fed, member.name))


def values_patterns(fed: Federation, member: Member, release: Release) -> list[str]:
    """The paths and globs values_layers reads for one release, relative to the config
    directory, placeholders substituted, whether or not a file matches them today (ci-matrix
    matches changed files, which may be new or deleted, against them)."""
    if release.values is not None:
        return [substitute(e.pattern, member.name, release.namespace) for e in release.values]
    if member.values is not None:
        return [substitute(e.pattern, member.name, None) for e in member.values]
    return [layer.path.relative_to(fed.config_dir).as_posix()
            for layer in _default_layers(fed, member.name)]


def locked_error(display: str) -> ConfigError:
    return ConfigError.single(
        display, None, "",
        f"locked with git-crypt: {UNLOCK_HINT} (render, validate and deploy --dry-run can "
        "go without the secret layers: --without-secrets)")


# --------------------------------------------------------------------------------------------
# At load: every listed file found, parsed once (never a locked one), its shape checked


@dataclass
class ListedCheck:
    """What checking the listed values files found."""

    problems: list[Problem]
    warnings: list[str]
    locked: set[Path]


def check_listed_files(
    config_dir: Path,
    members: Mapping[str, Member],
    documents: dict[Path, Any],
    display: Any,
) -> ListedCheck:
    """Parse every file the members' and releases' values lists name (once each), into
    documents. A git-crypt-locked file is never parsed: it is recorded and warned about.
    Plain entries that match nothing are errors; secret ones a warning (a fork's clone may
    have no secrets at all, and --without-secrets does not need them)."""
    result = ListedCheck([], [], set())
    for member in members.values():
        lists: list[tuple[tuple[ValuesFile, ...], Release | None]] = []
        if member.values is not None:
            lists.append((member.values, None))
        lists += [(r.values, r) for r in member.releases if r.values is not None]
        for entries, release in lists:
            for index, entry in enumerate(entries):
                namespace = release.namespace if release is not None else None
                pattern = substitute(entry.pattern, member.name, namespace)
                found = expand(config_dir, pattern)
                if not found and not entry.optional:
                    where = (f"releases of {member.name}" if release is None
                             else f"release {release.name} of {member.name}")
                    message = f"{pattern} matches no file (values of the {where})"
                    if entry.secret:
                        result.warnings.append(
                            f"{entry.location}: {message}: render and deploy of "
                            f"{member.name} need it; --without-secrets goes without")
                    else:
                        result.problems.append(Problem(
                            entry.location.file, entry.location.line, f"values[{index}]",
                            message + " (mark it `optional: true` if it may be absent)"))
                for path in found:
                    _check_file(path, member, release, documents, result, display)
    return result


def _check_file(path: Path, member: Member, release: Release | None,
                documents: dict[Path, Any], result: ListedCheck, display: Any) -> None:
    shown = display(path)
    if is_git_crypt_locked(path):
        result.locked.add(path)  # never parsed; the loader warns once for every locked file
        return
    if path not in documents:
        try:
            documents[path] = load_located(path, shown)
        except ConfigError as exc:
            result.problems += exc.problems
            documents[path] = None
            return
    data = documents[path]
    if data is None:
        return
    if not isinstance(data, LocatedMap):
        result.problems.append(Problem(shown, 1, "", "expected a mapping of Helm values"))
        return
    if release is not None:
        return  # a whole file for one release: any Helm values
    allowed = {r.name for r in member.releases}
    for key, value in data.items():
        if key not in allowed:
            result.problems.append(Problem(
                shown, line_of(data, key), str(key),
                f"not a release of member {member.name!r} (releases: "
                f"{', '.join(sorted(allowed))}); files listed for a member hold a section per "
                "release (list a file under a release to pass it whole)"))
        elif value is not None and not isinstance(value, LocatedMap):
            result.problems.append(Problem(shown, line_of(data, key), str(key),
                                           "expected a mapping of Helm values"))
