"""The keys with which federation.yaml drives an existing deploy repository as it is: values
lists, hooks, local chart directories, crds, the secrets stand-in, the CD order and staging tier."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from federation_deploy.config import schema
from federation_deploy.config.gitcrypt import is_git_crypt_locked
from federation_deploy.config.model import (
    HOOK_PLACEHOLDERS,
    Hook,
    Location,
    Member,
    SandboxSettings,
    ValuesFile,
    unknown_hook_placeholders,
)
from federation_deploy.config.problems import confined
from federation_deploy.config.values import is_secret_file, unknown_placeholders
from federation_deploy.yamlio import LocatedMap, line_of

if TYPE_CHECKING:
    from federation_deploy.config.problems import Checker

LOCAL_CHART_PREFIXES = ("./", "../")


def is_local_chart(chart: str) -> bool:
    """`chart: ./mybinder`: a chart directory relative to the config directory."""
    return chart.startswith(LOCAL_CHART_PREFIXES)


def is_url(text: str) -> bool:
    return text.startswith(("https://", "http://"))


def read_values_entries(check: Checker, node: LocatedMap, kp: str,
                        release_level: bool) -> tuple[ValuesFile, ...] | None:
    """A `values:` list: paths (strings) or {path, secret, optional} mappings."""
    if "values" not in node:
        return None
    items = node["values"]
    if not isinstance(items, list):
        check.value(node, kp, schema.RELEASE["values"])  # reports the wrong type
        return None
    section = schema.VALUES_FILE
    entries: list[ValuesFile] = []
    for index, item in enumerate(items):
        ikp = f"{kp}.values[{index}]"
        location = Location(check.file, line_of(items, index))
        if isinstance(item, str) and item:
            entry = ValuesFile(item, location=location)
        elif isinstance(item, LocatedMap):
            check.keys(item, ikp, section)
            read = {key.name: check.value(item, ikp, key) for key in section.keys}
            if not read["path"]:
                continue
            entry = ValuesFile(read["path"], bool(read["secret"]), bool(read["optional"]),
                               Location(check.file, line_of(item, "path")))
        else:
            check.add(items, index, ikp,
                      f"expected {schema.VALUES_ENTRY_EXPECTED}, got {item!r}")
            continue
        if Path(entry.pattern).is_absolute() or ".." in Path(entry.pattern).parts:
            check.add(items, index, ikp, "expected a path relative to the config directory, "
                      f"inside it (no absolute path, no '..'), got {entry.pattern!r}")
            continue
        unknown = unknown_placeholders(entry.pattern, release_level)
        if unknown:
            known = "{member}, {namespace}" if release_level else "{member}"
            check.add(items, index, ikp,
                      f"unknown placeholder {{{unknown[0]}}} (known here: {known})")
            continue
        entries.append(entry)
    return tuple(entries)


def read_hooks(check: Checker, m: LocatedMap, kp: str) -> tuple[Hook, ...]:
    if "hooks" not in m:
        return ()
    items = m["hooks"]
    if not isinstance(items, list):
        check.value(m, kp, schema.MEMBER["hooks"])
        return ()
    section = schema.HOOK
    hooks: list[Hook] = []
    for index, item in enumerate(items):
        hkp = f"{kp}.hooks[{index}]"
        node = check.mapping(item, items, index, hkp)
        if node is None:
            continue
        before = len(check.problems)
        check.keys(node, hkp, section)
        read = {key.name: check.value(node, hkp, key) for key in section.keys}
        if read["name"] in {h.name for h in hooks}:
            check.add(node, "name", f"{hkp}.name", f"hook {read['name']!r} is listed twice")
        elif read["name"] in schema.STAGES or read["name"] == "hooks":
            check.add(node, "name", f"{hkp}.name",
                      "a hook cannot be called like a stage (deploy --stage selects both)")
        for i, part in enumerate(read["argv"] or ()):
            for name in unknown_hook_placeholders(part):
                check.add(node["argv"], i, f"{hkp}.argv[{i}]",
                          f"unknown placeholder {{{name}}} (known: "
                          f"{', '.join('{' + p + '}' for p in HOOK_PLACEHOLDERS)})")
        if len(check.problems) == before:
            timeout = read["timeout"]
            hooks.append(Hook(read["name"], read["after"], tuple(read["argv"]),
                              Location(check.file, line_of(node)), int(read["attempts"]),
                              None if timeout is None else float(timeout)))
    return tuple(hooks)


def check_local_chart(check: Checker, node: LocatedMap, kp: str, chart: str, version: str,
                      base: Path) -> Path | None:
    """The chart directory of a `chart: ./DIR` release, when it holds a readable Chart.yaml
    (and its version equals `version`, when one is pinned)."""
    directory = (base / chart).resolve()
    chart_yaml = directory / "Chart.yaml"
    if not confined(base, chart):
        check.add(node, "chart", f"{kp}.chart", f"expected a chart directory inside the config "
                  f"directory, got {chart!r}")
        return None
    if not directory.is_dir():
        check.add(node, "chart", f"{kp}.chart", f"chart directory {chart} not found "
                  f"(looked in {directory})")
        return None
    if not chart_yaml.is_file():
        check.add(node, "chart", f"{kp}.chart", f"{chart} has no Chart.yaml: not a chart")
        return None
    shown = f"{chart.rstrip('/')}/Chart.yaml"
    if is_git_crypt_locked(chart_yaml):
        check.add(node, "chart", f"{kp}.chart", f"{shown} is locked with git-crypt")
        return None
    try:
        meta = yaml.safe_load(chart_yaml.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        check.add(node, "chart", f"{kp}.chart", f"{shown}{line}: YAML syntax error")
        return None
    if not isinstance(meta, dict):
        check.add(node, "chart", f"{kp}.chart", f"{shown}: expected a mapping")
        return None
    missing = [key for key in ("apiVersion", "name", "version") if not meta.get(key)]
    if missing:
        check.add(node, "chart", f"{kp}.chart", f"{shown}: missing {', '.join(missing)}")
        return None
    for i, dep in enumerate(meta.get("dependencies") or []):
        if not isinstance(dep, dict) or not dep.get("name") or not dep.get("version"):
            check.add(node, "chart", f"{kp}.chart",
                      f"{shown}: dependencies[{i}] needs a name and a version")
        elif str(dep.get("repository", "")).startswith(("@", "alias:")):
            check.add(node, "chart", f"{kp}.chart",
                      f"{shown}: dependency {dep['name']} names a repository of your helm "
                      f"config ({dep['repository']}); write its URL (federation-deploy never "
                      "reads or changes your helm repositories)")
    if version and str(meta["version"]) != version:
        check.add(node, "version", f"{kp}.version",
                  f"{shown} says version {meta['version']}, config pins {version!r}")
    return directory


def check_crds(check: Checker, node: LocatedMap, kp: str, crds: str, base: Path) -> None:
    if is_url(crds):
        return
    if not confined(base, crds):
        check.add(node, "crds", f"{kp}.crds",
                  f"expected a URL or a file inside the config directory, got {crds!r}")
    elif not (base / crds).is_file():
        check.add(node, "crds", f"{kp}.crds",
                  f"expected a URL or a file relative to the config directory; {crds} not found")


def read_stand_in(check: Checker, root: LocatedMap, base: Path) -> Path | None:
    if "secrets" not in root:
        return None
    node = check.mapping(root["secrets"], root, "secrets", "secrets")
    if node is None:
        return None
    check.keys(node, "secrets", schema.SECRETS)
    relative = check.value(node, "secrets", schema.SECRETS["stand_in"])
    if not relative:
        return None
    path = base / relative
    if not confined(base, relative):
        check.add(node, "stand_in", "secrets.stand_in",
                  f"expected a file inside the config directory, got {relative!r}")
        return None
    if not path.is_file():
        check.add(node, "stand_in", "secrets.stand_in", f"{relative} not found")
        return None
    if is_secret_file(base, path, frozenset()):
        # the stand-in is read as plain values in place of the secrets: never a real one
        check.add(node, "stand_in", "secrets.stand_in",
                  f"{relative} is (links resolved) a file under secrets/: the stand-in holds "
                  "made-up values, shown unredacted")
        return None
    return path


def read_sandbox(check: Checker, root: LocatedMap, base: Path) -> SandboxSettings | None:
    """The `sandbox:` block `sandbox up` writes; its URLs must be on this machine (a sandbox
    that named a real redirector or AWS endpoint would not be one)."""
    from urllib.parse import urlsplit

    if "sandbox" not in root:
        return None
    node = check.mapping(root["sandbox"], root, "sandbox", "sandbox")
    if node is None:
        return None
    check.keys(node, "sandbox", schema.SANDBOX)
    urls: dict[str, str | None] = {}
    for key in ("redirector_url", "aws_endpoint"):
        url = check.value(node, "sandbox", schema.SANDBOX[key])
        if url is not None and (urlsplit(url).hostname not in ("127.0.0.1", "localhost")
                                or urlsplit(url).scheme != "http"):
            check.add(node, key, f"sandbox.{key}",
                      f"expected an http URL on 127.0.0.1 (a sandbox stays on this machine), "
                      f"got {url!r}")
            url = None
        urls[key] = url
    config = check.value(node, "sandbox", schema.SANDBOX["redirector_config"])
    return SandboxSettings(
        redirector_config=base / config, redirector_url=urls["redirector_url"],
        aws_endpoint=urls["aws_endpoint"], location=Location(check.file, line_of(root, "sandbox")))


def read_ci(check: Checker, root: LocatedMap, members: Mapping[str, Member], declared: set[str]
            ) -> tuple[tuple[str, ...], tuple[str, ...] | None, tuple[str, ...]]:
    """`ci.order` (the CD order), `ci.staging` (the staging tier; None when not given) and
    `ci.manual` (members CD does not deploy)."""
    if "ci" not in root:
        return (), None, ()
    node = check.mapping(root["ci"], root, "ci", "ci")
    if node is None:
        return (), None, ()
    check.keys(node, "ci", schema.CI)
    order = _member_names(check, node, "order", members, declared)
    staging = _member_names(check, node, "staging", members, declared)
    manual = _member_names(check, node, "manual", members, declared) or []
    for key, listed in (("order", order), ("staging", staging)):
        for index, name in enumerate(listed or []):
            if name in manual:
                check.add(node[key], index, f"ci.{key}[{index}]",
                          f"{name} is in ci.manual: CD does not deploy it")
    return tuple(order or ()), None if staging is None else tuple(staging), tuple(manual)


def _member_names(check: Checker, node: LocatedMap, key: str, members: Mapping[str, Member],
                  declared: set[str]) -> list[str] | None:
    """A list of deployable members' names under ci (None when absent or not a list)."""
    names: list[str] | None = check.value(node, "ci", schema.CI[key])
    if names is None:
        return None
    items = node[key]
    for index, name in enumerate(names):
        where = f"ci.{key}[{index}]"
        if name not in declared:
            check.add(items, index, where, f"unknown member {name!r}")
        elif name in names[:index]:
            check.add(items, index, where, f"{name} is listed twice")
        elif name in members and not members[name].deployable:
            check.add(items, index, where, f"{name} is external: CD never deploys it")
    return names
