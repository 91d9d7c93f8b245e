"""Kubernetes manifests as data: parse (YAML 1.1), name, validate, redact Secrets, diff."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from federation_deploy.errors import FederationDeployError, MissingToolError
from federation_deploy.values.render import REDACTED
from federation_deploy.values.secrets import censor, contains_secret
from federation_deploy.yamlio import dump_plain


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no output"


_ManifestBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _ManifestLoader(_ManifestBase):
    """YAML 1.1 like Kubernetes (PyYAML, libyaml when present), with plain strings where YAML
    would build dates or the `=` value type: Kubernetes (Go, via JSON) keeps them strings, and
    pyhelm3's own loader does the same for `=`."""


def _construct_str(loader: Any, node: Any) -> str:
    return str(loader.construct_scalar(node))


_ManifestLoader.add_constructor("tag:yaml.org,2002:value", _construct_str)
_ManifestLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_str)


def parse_manifests(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document manifest (empty documents dropped)."""
    try:
        docs = list(yaml.load_all(text, Loader=_ManifestLoader))  # noqa: S506 - safe subclass
    except yaml.YAMLError as exc:
        raise FederationDeployError(
            f"helm produced invalid YAML: {_first_line(str(exc))}") from None
    return [doc for doc in docs if isinstance(doc, dict) and doc]


def resource_name(doc: Mapping[str, Any], default_namespace: str | None = None) -> str:
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    namespace = meta.get("namespace") or default_namespace
    name = meta.get("name", "?")
    kind = doc.get("kind", "?")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


@dataclass(frozen=True)
class ManifestProblem:
    resource: str
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.message}"


@dataclass
class ValidationReport:
    schema_version: str
    valid: int = 0
    invalid: list[ManifestProblem] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)  # custom kinds: no schema shipped


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        raise MissingToolError(
            "kubernetes-validate is not installed: pip install 'kubernetes-validate==1.37.0'"
        ) from None
    return kubernetes_validate


def schema_version_for(kubernetes_version: str | None) -> tuple[str, str | None]:
    """The shipped Kubernetes schema version to validate against, and a note when it is not
    the member's own (kubernetes-validate ships its schemas: no network needed)."""
    kv = _kubernetes_validate()
    from kubernetes_validate.utils import all_versions

    minors = sorted({int(v.split(".")[1]) for v in all_versions()})
    newest = f"1.{minors[-1]}"
    package = f"kubernetes-validate {kv.__version__}"
    if kubernetes_version is None:
        return newest, (f"member has no kubernetes_version: validated against the newest "
                        f"schemas of {package} ({newest})")
    want = int(kubernetes_version.split(".")[1])
    if want in minors:
        return kubernetes_version, None
    nearest = min(minors, key=lambda m: (abs(m - want), -m))
    return f"1.{nearest}", (f"{package} has no schemas for Kubernetes {kubernetes_version}: "
                            f"validated against the nearest, 1.{nearest}")


def validate_manifests(
    docs: Iterable[Mapping[str, Any]], schema_version: str, default_namespace: str | None = None,
    secrets: Iterable[str] = (),
) -> ValidationReport:
    """Validate each object (strict: unknown fields are errors) against the shipped schemas.
    A message about a value that carries a secret says "a secret value" instead of it."""
    kv = _kubernetes_validate()
    secrets = frozenset(secrets)
    report = ValidationReport(schema_version)
    for doc in docs:
        name = resource_name(doc, default_namespace)
        if not isinstance(doc.get("apiVersion"), str) or not isinstance(doc.get("kind"), str):
            report.invalid.append(ManifestProblem(name, "not a Kubernetes object "
                                                        "(apiVersion and kind are required)"))
            continue
        try:
            kv.validate(dict(doc), schema_version, strict=True)
        except kv.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) or "(top level)"
            report.invalid.append(ManifestProblem(name, f"{path}: {_safe_message(exc, secrets)}"))
        except (kv.SchemaNotFoundError, kv.InvalidSchemaError):
            report.unchecked.append(name)
        else:
            report.valid += 1
    return report


def _safe_message(exc: Any, secrets: frozenset[str]) -> str:
    """A validator's message without secret values: jsonschema quotes the offending instance
    (re-quoted by repr, so a text search of the original spelling can miss it)."""
    message = str(exc.message)
    instance = getattr(exc, "instance", None)
    if secrets and contains_secret(instance, secrets):
        message = message.replace(repr(instance), "a secret value")
    return censor(message, secrets)


def redact_secret_values(doc: dict[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    """An object for people: a Secret's data/stringData always redacted, and in every other
    object (ConfigMaps, env values, args...) each scalar, and each mapping key, that carries a
    secret value, found in the parsed data so helm's re-indenting, quoting or folding cannot
    hide it."""
    shown, _ = _hide_pair(doc, _ABSENT, _carrier(frozenset(secrets)), doc.get("kind") == "Secret")
    assert isinstance(shown, dict)
    return shown


# What a hidden value shows in a diff: that it changed, never what it was or is (not even a
# digest: a short unsalted hash of a short secret is brute-forced in seconds).
CHANGED = f"{REDACTED} (changed)"


class _Absent:
    pass


_ABSENT: Any = _Absent()


def _carrier(secrets: frozenset[str]) -> Callable[[Any], bool]:
    def carries(value: Any) -> bool:
        return (value is not None and not isinstance(value, bool)
                and contains_secret(value, secrets))

    return carries


def _hide_pair(old: Any, new: Any, carries: Callable[[Any], bool], secret_object: bool = False,
               data: bool = False) -> tuple[Any, Any]:
    """old and new (either _ABSENT) with every secret hidden, side by side, so a diff of the
    two says "changed" where a hidden value changed and nothing where it did not: a Secret's
    data/stringData by key (data), and every scalar or key that carries a secret string of
    either side (a rotated secret's old live value as well as the new one)."""
    if isinstance(old, dict | _Absent) and isinstance(new, dict | _Absent) \
            and not (old is _ABSENT and new is _ABSENT):
        return _hide_dicts(old, new, carries, secret_object, data)
    if isinstance(old, list | _Absent) and isinstance(new, list | _Absent) \
            and not (old is _ABSENT and new is _ABSENT):
        o = old if isinstance(old, list) else []
        n = new if isinstance(new, list) else []
        pairs = [_hide_pair(o[i] if i < len(o) else _ABSENT, n[i] if i < len(n) else _ABSENT,
                            carries, False, data) for i in range(max(len(o), len(n)))]
        return (_ABSENT if old is _ABSENT else [a for a, _ in pairs if a is not _ABSENT],
                _ABSENT if new is _ABSENT else [b for _, b in pairs if b is not _ABSENT])
    if isinstance(old, dict | list) or isinstance(new, dict | list):
        # a value that changed its kind (a mapping became a string): each side on its own
        return (_hide_pair(old, _ABSENT, carries, False, data)[0],
                _hide_pair(_ABSENT, new, carries, False, data)[1])
    old_hidden = old is not _ABSENT and (data or carries(old))
    new_hidden = new is not _ABSENT and (data or carries(new))
    if old_hidden and new_hidden:
        return REDACTED, (REDACTED if old == new else CHANGED)
    return (REDACTED if old_hidden else old), (REDACTED if new_hidden else new)


def _hide_dicts(old: Any, new: Any, carries: Callable[[Any], bool], secret_object: bool,
                data: bool) -> tuple[Any, Any]:
    o = old if isinstance(old, dict) else {}
    n = new if isinstance(new, dict) else {}
    o_secret = sorted((k for k in o if carries(k)), key=str)
    n_secret = sorted((k for k in n if carries(k)), key=str)
    suffix = " (changed)" if old is not _ABSENT and o_secret != n_secret else ""

    def shown(key: Any, secret_keys: list[Any], tail: str) -> Any:
        if key in secret_keys:  # a secret used as a key is hidden like a value
            return f"{REDACTED} key {secret_keys.index(key) + 1}{tail}"
        return key

    o_by = {shown(k, o_secret, ""): k for k in o}
    n_by = {shown(k, n_secret, suffix): k for k in n}
    o_out: dict[Any, Any] = {}
    n_out: dict[Any, Any] = {}
    for key in dict.fromkeys([*o_by, *n_by]):
        below = data or (secret_object and key in ("data", "stringData"))
        a, b = _hide_pair(o[o_by[key]] if key in o_by else _ABSENT,
                          n[n_by[key]] if key in n_by else _ABSENT, carries, False, below)
        if a is not _ABSENT:
            o_out[key] = a
        if b is not _ABSENT:
            n_out[key] = b
    return (_ABSENT if old is _ABSENT else o_out), (_ABSENT if new is _ABSENT else n_out)


def displayable_manifests(text: str, secrets: Iterable[str]) -> str:
    """helm's output for people: each Secret's values redacted (keeping helm's `# Source:`
    lines) and every secret string of the values censored."""
    secrets = frozenset(secrets)
    chunks = re.split(r"(?m)^---[ \t]*$\n?", text)
    shown: list[str] = []
    for chunk in chunks:
        if not chunk.strip():
            continue
        docs = parse_manifests(chunk)
        if docs and (docs[0].get("kind") == "Secret" or contains_secret(docs[0], secrets)):
            comments = "".join(line + "\n" for line in chunk.splitlines()
                               if line.startswith("#"))
            chunk = comments + dump_plain(redact_secret_values(docs[0], secrets))
        shown.append(chunk if chunk.endswith("\n") else chunk + "\n")
    return censor("".join("---\n" + c for c in shown), secrets)


def _sorted(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _sorted(data[k]) for k in sorted(data, key=str)}
    if isinstance(data, list):
        return [_sorted(v) for v in data]
    return data


def manifest_diff(deployed: str, rendered: str, namespace: str, secrets: Iterable[str] = (),
                  deployed_secrets: Iterable[str] = ()) -> str:
    """A unified diff, object by object, of what is deployed against what would be: empty when
    they are the same. On both sides, a Secret's values and every value carrying a secret
    string (secrets: the new values' at the secret key paths; deployed_secrets: the deployed
    values' at the same key paths, a rotated secret's old value) show as <redacted>, and
    `<redacted> (changed)` where they changed; secret strings are censored."""

    every = frozenset(secrets) | frozenset(deployed_secrets)
    carries = _carrier(every)

    def index(text: str) -> dict[str, dict[str, Any]]:
        return {resource_name(doc, namespace): doc for doc in parse_manifests(text)}

    before, after = index(deployed), index(rendered)
    parts: list[str] = []
    for name in sorted(set(before) | set(after)):
        old_doc, new_doc = before.get(name, _ABSENT), after.get(name, _ABSENT)
        secret_object = any(isinstance(d, dict) and d.get("kind") == "Secret"
                            for d in (old_doc, new_doc))
        hidden_old, hidden_new = _hide_pair(old_doc, new_doc, carries, secret_object)
        old = "" if hidden_old is _ABSENT else dump_plain(_sorted(hidden_old))
        new = "" if hidden_new is _ABSENT else dump_plain(_sorted(hidden_new))
        if old == new:
            continue
        parts += difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True),
            fromfile=f"deployed: {name}" if old else "deployed: (none)",
            tofile=f"rendered: {name}" if new else "rendered: (removed)",
        )
    return censor("".join(parts), every)
