"""A JSON Schema of federation.yaml for editors (yaml-language-server), generated from the
schema tables in schema.py: never written by hand, so a row added there appears here."""

from __future__ import annotations

import json
from typing import Any

from federation_deploy.config.schema import CLOUDS, CLUSTER, FEDERATION, NAME, Key, Section

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Where the package ships the generated schema (package data), for the
# `# yaml-language-server: $schema=...` comment of a federation.yaml.
SHIPPED = "schemas/federation.schema.json"

# Names the loader requires of the items of a mapping-of-names section (its `each`).
_ITEM_NAMES = {"members.*": NAME.pattern}
_PLAIN_DEFAULT = (str, int, float, bool)


def section_schema(section: Section) -> dict[str, Any]:
    """A section as a closed JSON object: its keys, the required ones, nothing else."""
    out: dict[str, Any] = {
        "type": "object",
        "properties": {key.name: key_schema(key) for key in section.keys},
        "additionalProperties": False,
    }
    if section.required:
        out["required"] = sorted(section.required)
    return out


def key_schema(key: Key) -> dict[str, Any]:
    """One row: its rule's JSON, what an error would say it expects, its default, and the
    section below it (nested mapping, or each item of a list or mapping of names)."""
    out: dict[str, Any] = dict(key.rule.json)
    out["description"] = f"Expected: {key.expected}."
    if (not key.required and isinstance(key.default, _PLAIN_DEFAULT)
            and key.default != ""):
        out["default"] = key.default
    if key.nested is not None:
        out.update({k: v for k, v in section_schema(key.nested).items() if k != "type"})
    if key.each is not None:
        item = section_schema(key.each)
        if key.each.shorthand is not None:
            short = section_schema(key.each)["properties"][key.each.shorthand]
            item = {"anyOf": [{k: v for k, v in short.items() if k != "description"}, item]}
        if out.get("type") == "array":
            out["items"] = item
        else:
            out["additionalProperties"] = item
            if key.each.path in _ITEM_NAMES:
                out["propertyNames"] = {"pattern": _ITEM_NAMES[key.each.path]}
    return out


def _cluster_by_cloud() -> list[dict[str, Any]]:
    """The cluster keys each cloud takes (schema.CLUSTER), as if/then on the member."""
    rules: list[dict[str, Any]] = []
    for cloud in CLOUDS:
        section = CLUSTER[cloud]
        then: dict[str, Any]
        if not section.keys:
            then = {"not": {"required": ["cluster"]}}
        else:
            then = {"properties": {"cluster": section_schema(section)}}
            if section.required:
                then["required"] = ["cluster"]
        rules.append({"if": {"properties": {"cloud": {"const": cloud}}, "required": ["cloud"]},
                      "then": then})
    return rules


def federation_schema() -> dict[str, Any]:
    """The JSON Schema of federation.yaml, from schema.FEDERATION down."""
    out: dict[str, Any] = {
        "$schema": DRAFT,
        "title": "federation.yaml (federation-deploy)",
        "description": "The registry of a BinderHub federation: terraform pin, redirector "
                       "settings, members. Generated from federation_deploy/config/schema.py; "
                       "`federation-deploy validate` checks what this schema cannot say.",
        **section_schema(FEDERATION),
    }
    members = out["properties"]["members"]["additionalProperties"]
    members["allOf"] = _cluster_by_cloud()
    return out


def federation_schema_text() -> str:
    """The schema as the package ships it and `federation-deploy schema` prints it."""
    return json.dumps(federation_schema(), indent=2, ensure_ascii=False) + "\n"
