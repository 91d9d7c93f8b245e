"""The values files of a release in precedence order: the layered default, or the files listed
in federation.yaml (globs sorted, {member}/{namespace} substituted, optional files skipped)."""

from __future__ import annotations

import glob
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation_deploy.config.gitcrypt import UNLOCK_HINT, is_git_crypt_locked
from federation_deploy.config.model import Federation, Member, Release, ValuesFile
from federation_deploy.config.problems import (
    below,
    display_path,
    inside,
    join_keypath,
    kind_of,
    one_resolution,
    real_path,
)
from federation_deploy.config.schema import FEDERATION_FILE
from federation_deploy.errors import ConfigError, Problem
from federation_deploy.yamlio import LocatedMap, line_of, load_located, retyped_key

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


def secret_files(config_dir: Path, members: Mapping[str, Member]) -> frozenset[Path]:
    """The real paths (links resolved) of every file a secret entry of any member lists: such
    a file is secret wherever it is listed, and whatever link it is reached by."""
    found: set[Path] = set()
    for member in members.values():
        for entries, namespace in _entry_lists(member):
            for entry in entries:
                if entry.secret:
                    for path in expand(config_dir, substitute(entry.pattern, member.name,
                                                              namespace)):
                        real = real_path(path)
                        if real is not None:
                            found.add(real)
    return frozenset(found)


def _entry_lists(member: Member) -> list[tuple[tuple[ValuesFile, ...], str | None]]:
    lists: list[tuple[tuple[ValuesFile, ...], str | None]] = []
    if member.values is not None:
        lists.append((member.values, None))
    lists += [(r.values, r.namespace) for r in member.releases if r.values is not None]
    return lists


def is_secret_file(config_dir: Path, path: Path, secret: frozenset[Path]) -> bool:
    """Whether path's real path is a secret location: under the config's secrets/ directory,
    or a file that a secret entry lists (secret_files)."""
    real, secrets_dir = real_path(path), real_path(config_dir / "secrets")
    if real is None:
        return False
    return real in secret or (secrets_dir is not None and below(real, secrets_dir))


def link_problem(config_dir: Path, path: Path, listed_secret: bool,
                 secret: frozenset[Path]) -> str | None:
    """Why a values file may not be read as listed: its real path is outside the config
    directory (a link, or a glob through a linked directory, to /etc), or it is a secret
    file listed as a plain one (a link from config/ into secrets/). None when it may."""
    if not inside(config_dir, path):
        real = real_path(path)
        where = f"reaches {real}" if real is not None else "is a link loop"
        return (f"{_shown(config_dir, path)} {where}, outside the config directory (links are "
                "resolved): refused, never read")
    if not listed_secret and is_secret_file(config_dir, path, secret):
        real = real_path(path)
        assert real is not None
        return (f"{_shown(config_dir, path)} is a secret file ({_shown(config_dir, real)}, "
                "links resolved) listed as plain values: its values would be shown unredacted; "
                "list it as a secret (`secret: true`, or under secrets/)")
    return None


def _shown(config_dir: Path, path: Path) -> str:
    for base in (config_dir, real_path(config_dir)):
        if base is not None and path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return str(path)


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
    layers = [("config common", fed.values_file(None), False),
              ("secrets common", fed.values_file(None, secret=True), True),
              ("config member", fed.values_file(member), False),
              ("secrets member", fed.values_file(member, secret=True), True)]
    for name, path, secret in layers:
        if path.is_file() or path.is_symlink():
            problem = link_problem(fed.config_dir, path, secret, frozenset())
            if problem is not None:
                raise ConfigError.single(_shown(fed.config_dir, path), None, "", problem)
        yield ValuesLayer(name, path, secret or is_secret_file(fed.config_dir, path, frozenset()),
                          False)


def _listed_layers(fed: Federation, member: Member, entries: tuple[ValuesFile, ...],
                   namespace: str | None, secret: frozenset[Path]) -> Iterator[ValuesLayer]:
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
            if not inside(fed.config_dir, path):
                raise ConfigError.single(entry.location.file, entry.location.line,
                                         f"values[{index}]",
                                         str(link_problem(fed.config_dir, path, True, secret)))
            # secret wherever it is listed: a link to a secret file is censored like it
            yield ValuesLayer(f"values[{index}]", path,
                              entry.secret or is_secret_file(fed.config_dir, path, secret), whole)


@one_resolution
def values_layers(fed: Federation, member: Member, release: Release) -> list[ValuesLayer]:
    """The values files of one release, lowest precedence first: the release's own list
    (whole files), else the member's list (sections per release), else the default layers
    values/common < secrets/values/common < values/MEMBER < secrets/values/MEMBER."""
    if release.values is not None:
        return list(_listed_layers(fed, member, release.values, release.namespace,
                                   secret_files(fed.config_dir, fed.members)))
    if member.values is not None:
        return list(_listed_layers(fed, member, member.values, None,
                                   secret_files(fed.config_dir, fed.members)))
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
    secret = secret_files(config_dir, members)
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
                    problem = link_problem(config_dir, path, entry.secret, secret)
                    if problem is not None:
                        result.problems.append(Problem(entry.location.file, entry.location.line,
                                                       f"values[{index}]", problem))
                        continue  # never read: neither parsed nor shown
                    _check_file(path, member, release, documents, result, display)
    return result


def _retyped_release(data: LocatedMap, key: str, shown: str) -> Problem | None:
    """A release key YAML read as a boolean or a number (`on:` is "true"): not the name meant."""
    written = retyped_key(data, key)
    if written is None:
        return None
    return Problem(shown, line_of(data, key), written,
                   f"the release name {written!r} is read by YAML as {key!r}, not as a name: "
                   f"quote it (\"{written}\":)")


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
        if (problem := _retyped_release(data, key, shown)) is not None:
            result.problems.append(problem)
        elif key not in allowed:
            result.problems.append(Problem(
                shown, line_of(data, key), str(key),
                f"not a release of member {member.name!r} (releases: "
                f"{', '.join(sorted(allowed))}); files listed for a member hold a section per "
                "release (list a file under a release to pass it whole)"))
        elif value is not None and not isinstance(value, LocatedMap):
            result.problems.append(Problem(shown, line_of(data, key), str(key),
                                           "expected a mapping of Helm values"))


def check_values_files(
    config_dir: Path, members: Mapping[str, Member], documents: dict[Path, Any],
    locked: set[Path], warnings: list[str],
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
            link = link_problem(config_dir, path, secret, frozenset())
            if link is not None:  # a link out of the repository, or into secrets/
                problems.append(Problem(display, None, "", link))
                continue
            if is_git_crypt_locked(path):
                locked.add(path)  # never parsed (a render that needs it stops); warned once
                continue
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
                                        f"to values, got {kind_of(data, secret)}"))
                continue
            problems += non_finite_numbers(data, display, "", secret)
            for key, value in data.items():
                if (problem := _retyped_release(data, key, display)) is not None:
                    problems.append(problem)
                elif key not in allowed:
                    owner = "any member" if stem == "common" else f"member {stem!r}"
                    known = (f"releases: {', '.join(sorted(allowed))}" if allowed
                             else "it has no releases")
                    problems.append(Problem(display, line_of(data, key), str(key),
                                            f"not a release of {owner} ({known})"))
                elif value is not None and not isinstance(value, LocatedMap):
                    problems.append(Problem(
                        display, line_of(data, key), str(key),
                        f"expected a mapping of Helm values, got {kind_of(value, secret)}"))
    return problems


def non_finite_numbers(node: Any, display: str, keypath: str, secret: bool) -> list[Problem]:
    """.inf and .nan in values: helm's JSON cannot carry them (and nothing means them)."""
    problems: list[Problem] = []
    items: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        items = list(node.items())
    elif isinstance(node, list):
        items = list(enumerate(node))
    for key, value in items:
        path = f"{keypath}[{key}]" if isinstance(node, list) else join_keypath(keypath, str(key))
        if isinstance(value, float) and not math.isfinite(value):
            shown = "a secret value" if secret else repr(value)
            problems.append(Problem(display, line_of(node, key), path,
                                    f"expected a finite number, got {shown}"))
        elif isinstance(value, dict | list):
            problems += non_finite_numbers(value, display, path, secret)
    return problems
