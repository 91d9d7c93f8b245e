"""Layered Helm values per release, with provenance for --explain and secret redaction."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from federation_deploy.config import (
    Federation,
    Location,
    Member,
    Release,
    ValuesLayer,
    locked_error,
    values_layers,
)
from federation_deploy.config.gitcrypt import is_git_crypt_locked
from federation_deploy.errors import ConfigError, UsageError
from federation_deploy.values.redirector_config import redirector_config
from federation_deploy.values.secrets import SHORT_SECRET, contains_secret
from federation_deploy.yamlio import LocatedMap, line_of, load_located, read_config_text, to_plain

# What a secret value prints as: in rendered values, manifests and terraform outputs alike.
REDACTED = "<redacted>"
KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Origin:
    """One layer setting (or deleting) one key."""

    layer: str
    location: Location
    value: Any
    secret: bool
    deleted: bool = False

    def describe(self) -> str:
        what = "deleted (null)" if self.deleted else "set"
        return f"{self.location} ({self.layer}): {what}"


@dataclass(frozen=True)
class Layer:
    name: str
    file: str
    data: Any  # a LocatedMap (with line numbers) or a plain dict for generated values
    secret: bool


@dataclass
class RenderedRelease:
    member: str
    release: Release
    values: dict[str, Any]
    origins: dict[KeyPath, list[Origin]] = field(default_factory=dict)
    # --without-secrets: the secret files left out, and the stand-in used in their place
    skipped: tuple[str, ...] = ()
    stand_in: str | None = None

    @property
    def secret_paths(self) -> set[KeyPath]:
        """The key paths whose final value a secret layer set: leaves (scalars, lists) only.
        A secret file that sets binderhub.registry.password touches `binderhub` and
        `binderhub.registry` too, but the plain values beside the password are not secret."""
        return {path for path, origins in self.origins.items()
                if origins and origins[-1].secret and not origins[-1].deleted
                and not isinstance(origins[-1].value, dict)
                and _get(self.values, path) is not _MISSING}

    def secret_strings(self) -> set[str]:
        """The scalars secret layers set (by key path), as strings, for censoring tool output
        and echoed commands. A short one (below SHORT_SECRET characters: a count, a flag, a
        size) that a plain layer or the chart also sets is no secret and is left out: it
        would star every `1` or `0` in helm's output and in versions."""
        return self.secret_strings_in(self.values)

    def secret_strings_in(self, values: Any) -> set[str]:
        """The scalars that values (these, or a deployed release's: `helm get values`) hold at
        the key paths the secret layers set here: a rotated secret's old live value is a
        secret too, on the deployed side of a diff."""
        if not isinstance(values, dict):
            return set()
        plain = {str(leaf) for path, leaf in _leaf_items(values)
                 if path not in self.secret_paths}
        found: set[str] = set()
        for path in self.secret_paths:
            for leaf in _leaves(_get(values, path)):
                if leaf is None or isinstance(leaf, bool) or not str(leaf).strip():
                    continue
                text = str(leaf)
                # every length otherwise: short ones are censored as whole tokens
                # (values/secrets.py)
                if len(text) < SHORT_SECRET and text in plain:
                    continue
                found.add(text)
        return found

    def redacted(self) -> dict[str, Any]:
        """The values with every key whose final value came from a secrets file redacted."""
        out = copy.deepcopy(self.values)
        for path in sorted(self.secret_paths, key=len):
            parent = _get(out, path[:-1]) if len(path) > 1 else out
            if (isinstance(parent, dict) and path[-1] in parent
                    and not isinstance(parent[path[-1]], dict)):
                parent[path[-1]] = REDACTED
        return _redact_keys(out, frozenset(self.secret_strings()))

    def explain(self, keypath: str, show_secrets: bool = False) -> list[str]:
        """The final value of keypath and every layer that set it (file:line)."""
        path = split_keypath(keypath)
        final = _get(self.values, path)
        secret = path in self.secret_paths or any(
            p[: len(path)] == path for p in self.secret_paths
        )
        lines: list[str] = []
        keypath = f"{self.release.name}.{keypath}"
        if final is _MISSING:
            lines.append(f"{keypath}: not set in the values of {self.member}/{self.release.name}")
        elif final is None:
            lines.append(f"{keypath} = null (passed to helm, which deletes the chart's default)")
        else:
            # a parent of secret keys shows with only those keys redacted
            shown = final if show_secrets or not secret else _get(self.redacted(), path)
            lines.append(f"{keypath} = {json.dumps(shown, default=str)}")
        origins = [o for p, os in self.origins.items() if p == path or p[: len(path)] == path
                   for o in os]
        exact = self.origins.get(path, [])
        for prefix_len in range(len(path) - 1, 0, -1):
            # a layer that set a parent to a scalar/list or deleted it also decides this key
            for o in self.origins.get(path[:prefix_len], []):
                if o.deleted or not isinstance(o.value, dict):
                    exact = [o, *exact]
        seen = {id(o) for o in exact}
        others = [o for o in origins if id(o) not in seen]
        if not exact and not others:
            lines.append("  no layer sets it (the chart's default applies)")
        for o in exact:
            lines.append(f"  {o.describe()}")
        for o in others:
            lines.append(f"  {o.describe()} (below it)")
        return lines


def _redact_keys(value: Any, secrets: frozenset[str]) -> Any:
    """value with every mapping key that carries a secret string hidden (a secret used as a
    key: a token as a users map's key)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if contains_secret(key, secrets):
                key = f"{REDACTED} key {sum(k.startswith(REDACTED) for k in out) + 1}"
            out[key] = _redact_keys(item, secrets)
        return out
    if isinstance(value, list):
        return [_redact_keys(item, secrets) for item in value]
    return value


class _Missing:
    pass


_MISSING: Any = _Missing()


def _get(data: Any, path: KeyPath) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return _MISSING
        data = data[key]
    return data


def _leaf_items(value: Any, prefix: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """(key path, scalar) of every leaf of a mapping; a list counts as one leaf of its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaf_items(item, (*prefix, str(key)))
    elif isinstance(value, list):
        for item in _leaves(value):
            yield prefix, item
    else:
        yield prefix, value


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def split_keypath(keypath: str) -> KeyPath:
    """Split a.b.c into keys; `\\.` keeps a literal dot (eks\\.amazonaws\\.com/role-arn)."""
    parts: list[str] = []
    current: list[str] = []
    chars = iter(keypath)
    for ch in chars:
        if ch == "\\":
            current.append(next(chars, "\\"))
        elif ch == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    if any(p == "" for p in parts):
        raise UsageError(f"invalid key path {keypath!r}: empty key")
    return tuple(parts)


def merge_layer(
    target: dict[str, Any],
    layer_data: Any,
    layer: Layer,
    origins: dict[KeyPath, list[Origin]],
    prefix: KeyPath = (),
) -> None:
    """Merge like Helm merges -f files: dicts merge deeply, lists and scalars replace, and a
    null replaces too. The null stays in the merged values (unless a later layer sets the key
    again): helm deletes the chart's default for a user value that is null, which it could
    not do if the key were simply left out."""
    for key, value in layer_data.items():
        key = str(key)
        path = (*prefix, key)
        line = line_of(layer_data, key) if isinstance(layer_data, LocatedMap) else None
        loc = Location(layer.file, line)
        if value is None:
            target[key] = None
            origins.setdefault(path, []).append(Origin(layer.name, loc, None, layer.secret, True))
            continue
        if isinstance(value, dict):
            existing = target.get(key)
            if not isinstance(existing, dict):
                existing = {}
                target[key] = existing
            origins.setdefault(path, []).append(Origin(layer.name, loc, {}, layer.secret))
            merge_layer(existing, value, layer, origins, path)
            continue
        plain = to_plain(value)
        target[key] = plain
        origins.setdefault(path, []).append(Origin(layer.name, loc, plain, layer.secret))


def _copy_tree(value: Any) -> Any:
    """A copy of merged values: new dicts and lists, the scalars shared."""
    if isinstance(value, dict):
        return {key: _copy_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_tree(item) for item in value]
    return value


def set_path(data: dict[str, Any], path: KeyPath, value: Any) -> dict[str, Any]:
    """A nested dict holding value at path (for generated layers)."""
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return data


def _file_layer(layer: ValuesLayer, release: str, fed: Federation, secret: bool,
                name: str | None = None, reread: bool = False) -> Layer | None:
    """A values file as a layer of one release: the whole file, or its section for release.
    reread: the file as it is now on disk, not as the loader parsed it (a hook rewrote it)."""
    path = layer.path
    display = _relative(path, fed)
    if path in fed.values_documents and not reread:
        data = fed.values_documents[path]
    elif not path.exists():
        return None
    else:
        data = load_located(path, display)
    if not isinstance(data, LocatedMap):
        return None
    section = data if layer.whole else data.get(release)
    if section is None:
        return None
    return Layer(name=name or layer.name, file=display, data=section, secret=secret)


def _relative(path: Path, fed: Federation) -> str:
    """path.relative_to(fed.config_dir) as a string, else path: with strings (both paths
    are normalised), as it runs for every layer of every release."""
    text, base = str(path), str(fed.config_dir)
    if base == ".":  # a relative path is relative to "." already; an absolute one is not
        return text
    prefix = base if base.endswith("/") else base + "/"
    return text[len(prefix):] if text.startswith(prefix) and len(text) > len(prefix) else text


def load_terraform_outputs(fed: Federation, member: Member) -> dict[str, Any] | None:
    """Saved `terraform output -json` of the member (config/generated/), or None if absent."""
    path = fed.generated_outputs_file(member.name)
    if not path.exists():
        return None
    display = _relative(path, fed)
    try:
        raw = json.loads(read_config_text(path, display))
    except json.JSONDecodeError as exc:
        raise ConfigError.single(display, exc.lineno, "", f"invalid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise ConfigError.single(display, 1, "", "expected terraform's `output -json` object")
    out: dict[str, Any] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise ConfigError.single(display, None, name, "expected {value, type, sensitive}")
        out[name] = entry["value"]
    return out


def missing_terraform_outputs(fed: Federation, member: Member,
                              releases: Sequence[str] | None = None) -> str | None:
    """What is missing when member maps terraform outputs into the values of its releases (or
    the named ones) but they were never saved: the chart's placeholder would be deployed.
    None when nothing is missing. render warns with it; deploy refuses with it."""
    if member.terraform is None or not member.terraform.outputs:
        return None
    wanted = {out: target for out, target in member.terraform.outputs.items()
              if releases is None or target.split(".", 1)[0] in releases}
    if not wanted:
        return None
    file = _relative(fed.generated_outputs_file(member.name), fed)
    outputs = load_terraform_outputs(fed, member)
    absent = sorted(wanted) if outputs is None else sorted(set(wanted) - set(outputs))
    if not absent:
        return None
    keys = ", ".join(wanted[out] for out in absent)
    what = "is missing" if outputs is None else f"lacks {', '.join(absent)}"
    return (f"{fed.config_dir.name}/{file} {what}: {keys} of member {member.name} "
            f"come from terraform; run `federation-deploy terraform apply {member.name}` "
            "(it saves the outputs there)")


def generated_layers(fed: Federation, member: Member, release: Release,
                     stale_hosts: Sequence[str] = ()) -> list[Layer]:
    """Values the tool generates: terraform outputs, and the redirector config (whose hosts
    replace the lower layers' ones: stale_hosts are set to null, which Helm deletes)."""
    layers: list[Layer] = []
    if member.terraform and member.terraform.outputs:
        outputs = load_terraform_outputs(fed, member)
        data: dict[str, Any] = {}
        if outputs is not None:
            for out_name, target in member.terraform.outputs.items():
                path = split_keypath(target)
                if path[0] == release.name and out_name in outputs:
                    set_path(data, path[1:], outputs[out_name])
        if data:
            file = _relative(fed.generated_outputs_file(member.name), fed)
            layers.append(Layer("terraform outputs", file, data, False))
    if is_redirector_release(fed, member, release):
        config = redirector_config(fed)
        config["hosts"] = {**config["hosts"], **dict.fromkeys(stale_hosts)}
        if release.package_chart is not None:
            data = {"federationRedirect": config, "ingress": {"hosts": [fed.redirector.host]}}
        else:
            # an umbrella chart like mybinder's takes the host inside federationRedirect
            data = {"federationRedirect": {**config, "host": fed.redirector.host}}
        layers.append(Layer("generated redirector config", fed.path.name, data, False))
    return layers


def is_redirector_release(fed: Federation, member: Member, release: Release) -> bool:
    return member.name == fed.redirector.member and release.name == fed.redirector.release


def chart_default_values(release: Release) -> Any:
    """The values.yaml of a chart on disk (plain data), or None."""
    directory = release.chart_dir
    path = None if directory is None else directory / "values.yaml"
    if path is None or not path.is_file():
        return None
    return to_plain(load_located(path, str(path)))


def stale_redirector_hosts(fed: Federation, values: Any) -> list[str]:
    """Redirector hosts that values (the files below the generated block, or a chart's own
    values.yaml) define but federation.yaml does not route to: the generated block replaces
    them (a merge would keep sending launches to a host taken out of federation.yaml)."""
    routed = {m.host_name for m in fed.routed}
    block = values.get("federationRedirect") if isinstance(values, dict) else None
    hosts = block.get("hosts") if isinstance(block, dict) else None
    return [str(n) for n in hosts if str(n) not in routed] if isinstance(hosts, dict) else []


# The merge of a layer every release of that name starts with (values/common.yaml's section),
# kept by its (name, file, data) for the next release that starts with it: (data, values,
# origins). validate renders every member, and merging the common layer anew for each was
# most of its rendering.
SharedMerges = dict[tuple[str, str, int, bool], tuple[Any, dict[str, Any],
                                                      dict[KeyPath, list[Origin]]]]


def render_release(fed: Federation, member: Member, release: Release, *,
                   without_secrets: bool = False, skip_locked: bool = False,
                   reread: bool = False, shared: SharedMerges | None = None) -> RenderedRelease:
    """Merge the layers of one release (config.values_layers: common < common secrets <
    member < member secrets, or the files listed in federation.yaml), then the generated
    ones (terraform outputs, redirector config).

    A git-crypt-locked file is never read: ConfigError naming it, unless skip_locked
    (validate, which warned already). without_secrets leaves the secret files out and puts
    the stand-in (secrets.stand_in) where the first of them was. reread reads every file
    from disk again (the globs are expanded anew in any case): deploy renders again after
    the hooks that run after auth, which write values files (network bans)."""
    values: dict[str, Any] = {}
    origins: dict[KeyPath, list[Origin]] = {}
    layers: list[Layer] = []
    skipped: list[str] = []
    stand_in = None
    for source in values_layers(fed, member, release):
        if source.secret and without_secrets:
            if source.path.exists():
                skipped.append(_relative(source.path, fed))
            if stand_in is None and fed.secrets_stand_in is not None:
                stand_in = _relative(fed.secrets_stand_in, fed)
                replacement = ValuesLayer(source.name, fed.secrets_stand_in, False, source.whole)
                layer = _file_layer(replacement, release.name, fed, False, "secrets stand-in")
                if layer is not None:
                    layers.append(layer)
            continue
        if source.missing is not None:
            raise source.missing
        if source.path in fed.locked_files or (reread and is_git_crypt_locked(source.path)):
            if skip_locked:
                continue
            raise locked_error(_relative(source.path, fed))
        layer = _file_layer(source, release.name, fed, source.secret, reread=reread)
        if layer is not None:
            layers.append(layer)
    start = 0
    if shared is not None and layers:
        first = layers[0]
        key = (first.name, first.file, id(first.data), first.secret)
        if key not in shared:
            merged: dict[str, Any] = {}
            merged_origins: dict[KeyPath, list[Origin]] = {}
            merge_layer(merged, first.data, first, merged_origins)
            shared[key] = (first.data, merged, merged_origins)  # data kept: its id stays its
        _data, merged, merged_origins = shared[key]
        values = _copy_tree(merged)
        origins = {path: list(found) for path, found in merged_origins.items()}
        start = 1
    for layer in layers[start:]:
        merge_layer(values, layer.data, layer, origins)
    stale: list[str] = []
    defaults: list[str] = []
    if is_redirector_release(fed, member, release):
        # the files' hosts are merged here, and deleted by the null; the chart's own defaults
        # are merged by helm, so for those the null must reach helm (which deletes a null
        # only where the chart has the key, and would keep any other as a null host)
        defaults = stale_redirector_hosts(fed, chart_default_values(release))
        stale = list(dict.fromkeys([*stale_redirector_hosts(fed, values), *defaults]))
        block = values.get("federationRedirect")
        if isinstance(block, dict):
            block.pop("hosts", None)  # replaced whole: no key of a file's host is left over
    for layer in generated_layers(fed, member, release, stale):
        merge_layer(values, layer.data, layer, origins)
    if stale:
        # a stale host of the files is gone with the files' block; only the chart's own
        # defaults need the null (a null host helm does not delete would reach the redirector)
        hosts = values["federationRedirect"]["hosts"]
        for name in stale:
            if name not in defaults:
                hosts.pop(name, None)
    return RenderedRelease(member=member.name, release=release, values=values, origins=origins,
                           skipped=tuple(skipped), stand_in=stand_in)


def describe_chart(release: Release) -> str:
    """A release's chart for messages: `name version`, and `from repo` for a remote one."""
    if release.local_chart is not None:
        return f"{release.chart} (chart directory)"
    if release.package_chart is not None:
        return f"{release.chart} {release.version}"
    if release.repo:
        return f"{release.chart} {release.version} from {release.repo}"
    return f"{release.chart} {release.version}"


def require_deployable(fed: Federation, member_name: str) -> Member:
    """The member called member_name, if federation-deploy may render and deploy it: the one
    place that says no to an external member (commands call it once, at their edge)."""
    member = fed.member(member_name)
    if not member.deployable:
        raise UsageError(
            f"member {member.name!r} is external (cloud: external, run by a partner): "
            "federation-deploy only routes traffic to it and never deploys it"
        )
    return member


def render_member(
    fed: Federation, member_name: str, releases: list[str] | None = None, *,
    without_secrets: bool = False, skip_locked: bool = False,
    shared: SharedMerges | None = None,
) -> list[RenderedRelease]:
    """Every release of a member (or the named ones), in deploy order. shared: see
    SharedMerges (one dict across the members of one federation)."""
    return render_releases(fed, require_deployable(fed, member_name), releases,
                           without_secrets=without_secrets, skip_locked=skip_locked,
                           shared=shared)


def render_releases(
    fed: Federation, member: Member, releases: Sequence[str] | None = None, *,
    without_secrets: bool = False, skip_locked: bool = False, reread: bool = False,
    shared: SharedMerges | None = None,
) -> list[RenderedRelease]:
    """Every release of an already resolved, deployable member (or the named ones)."""
    chosen = [member.release(r) for r in releases] if releases else list(member.releases)
    return [render_release(fed, member, r, without_secrets=without_secrets,
                           skip_locked=skip_locked, reread=reread, shared=shared)
            for r in chosen]


def secrets_note(rendered: Sequence[RenderedRelease]) -> str | None:
    """What --without-secrets left out, for stderr; None when it left nothing out."""
    skipped = list(dict.fromkeys(f for r in rendered for f in r.skipped))
    stand_in = next((r.stand_in for r in rendered if r.stand_in), None)
    if not skipped and stand_in is None:
        return None
    members = ", ".join(dict.fromkeys(r.member for r in rendered))
    text = (f"{members} without secrets: skipped "
            f"{', '.join(skipped) or 'no secret file (none found)'}")
    return text + (f"; the stand-in {stand_in} in their place" if stand_in else "")
