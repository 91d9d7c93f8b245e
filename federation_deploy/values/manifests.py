"""Kubernetes manifests as data: parse (YAML 1.1), name, validate, redact Secrets, diff."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from federation_deploy.errors import FederationDeployError, MissingToolError
from federation_deploy.values.render import REDACTED
from federation_deploy.values.secrets import censor, contains_secret, redact_leaves
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


def redact_secret_values(doc: dict[str, Any], secrets: Iterable[str],
                         digest: bool = False) -> dict[str, Any]:
    """An object for people: a Secret's data/stringData always redacted, and in every other
    object (ConfigMaps, env values, args...) each scalar that carries a secret value, found in
    the parsed data so helm's re-indenting, quoting or folding cannot hide it."""
    if doc.get("kind") == "Secret":
        doc = _redact_secret(doc, digest=digest)
    replaced, _ = redact_leaves(doc, secrets, _digest if digest else (lambda _v: REDACTED))
    assert isinstance(replaced, dict)
    return replaced


def _redact_secret(doc: dict[str, Any], digest: bool = False) -> dict[str, Any]:
    """A Secret with every data/stringData value replaced (by a short digest when asked, so a
    diff still shows that a value changed without showing it)."""
    out = dict(doc)
    for key in ("data", "stringData"):
        if isinstance(out.get(key), dict):
            out[key] = {k: (_digest(v) if digest else REDACTED) for k, v in out[key].items()}
    return out


def _digest(value: Any) -> str:
    return f"{REDACTED} sha256:{hashlib.sha256(str(value).encode()).hexdigest()[:12]}"


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


def manifest_diff(deployed: str, rendered: str, namespace: str, secrets: Iterable[str] = ()
                  ) -> str:
    """A unified diff, object by object, of what is deployed against what would be: empty when
    they are the same. Secret values show as digests; secret strings are censored."""

    secrets = frozenset(secrets)

    def index(text: str) -> dict[str, str]:
        objects: dict[str, str] = {}
        for doc in parse_manifests(text):
            doc = redact_secret_values(doc, secrets, digest=True)
            objects[resource_name(doc, namespace)] = dump_plain(_sorted(doc))
        return objects

    before, after = index(deployed), index(rendered)
    parts: list[str] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, ""), after.get(name, "")
        if old == new:
            continue
        parts += difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True),
            fromfile=f"deployed: {name}" if old else "deployed: (none)",
            tofile=f"rendered: {name}" if new else "rendered: (removed)",
        )
    return censor("".join(parts), secrets)
