"""The JSON Schema of federation.yaml: generated from the schema tables, shipped in the
package, referenced from config/federation.yaml, and in step with the loader."""

from __future__ import annotations

import copy
import functools
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from federation_deploy.config import load_federation
from federation_deploy.config.editor_schema import (
    SHIPPED,
    federation_schema,
    federation_schema_text,
)
from federation_deploy.errors import ConfigError
from tests.conftest import copy_federation

REPO = Path(__file__).resolve().parents[2]
FIXTURE_CONFIG = REPO / "tests" / "fixtures" / "federation" / "config"
REGENERATE = ("regenerate it: federation-deploy schema > "
              f"federation_deploy/{SHIPPED}")


@functools.cache  # the schema is pure data: checked against the metaschema once
def validator() -> jsonschema.protocols.Validator:
    schema = federation_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_shipped_schema_is_the_generated_one() -> None:
    # read as an installed package would be: the file the wheel ships
    shipped = resources.files("federation_deploy").joinpath(SHIPPED).read_text(encoding="utf-8")
    assert shipped == federation_schema_text(), REGENERATE


@pytest.mark.slow  # the CLI in a subprocess
def test_schema_command_prints_it() -> None:
    result = subprocess.run([sys.executable, "-m", "federation_deploy.cli.main", "schema"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == federation_schema()


def test_repo_config_points_editors_at_the_shipped_schema() -> None:
    config = REPO / "config" / "federation.yaml"
    first = config.read_text().splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, first
    target = (config.parent / match.group(1)).resolve()
    assert target == (REPO / "federation_deploy" / SHIPPED).resolve()
    assert target.read_text() == federation_schema_text()


def test_fixture_config_is_valid_for_schema_and_loader() -> None:
    data = yaml.safe_load((FIXTURE_CONFIG / "federation.yaml").read_text())
    errors = [e.message for e in validator().iter_errors(data)]
    assert errors == []
    load_federation(FIXTURE_CONFIG)


# --------------------------------------------------------------------------------------------
# In step with the loader: every way the schema says no, tried on the repo's config


def closed_objects(data: Any, schema: dict[str, Any],
                   path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Each mapping of data that the schema describes key by key, with its schema; the
    cluster of a member gets its cloud's keys (the schema's if/then)."""
    if not isinstance(data, dict) or schema.get("additionalProperties") is not False:
        if isinstance(data, dict) and isinstance(schema.get("additionalProperties"), dict):
            for name, item in data.items():
                yield from closed_objects(item, schema["additionalProperties"], (*path, name))
        return
    yield path, schema
    props = dict(schema.get("properties", {}))
    for rule in schema.get("allOf", []):
        cloud = rule["if"]["properties"]["cloud"]["const"]
        if data.get("cloud") == cloud:
            props.update(rule["then"].get("properties", {}))
    for key, value in data.items():
        sub = props.get(key, {})
        if isinstance(value, list) and isinstance(sub.get("items"), dict):
            for i, item in enumerate(value):
                yield from closed_objects(item, sub["items"], (*path, key, i))
        else:
            yield from closed_objects(value, sub, (*path, key))


def wrong_value(schema: dict[str, Any]) -> Any:
    """A value of the wrong kind for a key's schema."""
    kinds = schema.get("type")
    kinds = [kinds] if isinstance(kinds, str) else (kinds or [])
    if "enum" in schema:
        return "not-one-of-them"
    if "string" in kinds:
        return ["a", "list"]
    if "number" in kinds or "integer" in kinds:
        return "many"
    if "boolean" in kinds:
        return "maybe"
    return 42  # object or array


def at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def keypath(path: tuple[Any, ...], key: str) -> str:
    out = ""
    for part in (*path, key):
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def mutations() -> Iterator[tuple[str, str, Any]]:
    """(id, key path the loader must name, mutated config) for every closed mapping in the
    repo's config: an unknown key, each present key with a wrong value, each required key
    removed."""
    base = yaml.safe_load((FIXTURE_CONFIG / "federation.yaml").read_text())
    for path, schema in closed_objects(base, federation_schema()):
        data = copy.deepcopy(base)
        at(data, path)["zz_unknown"] = 1
        yield f"unknown {keypath(path, 'zz_unknown')}", keypath(path, "zz_unknown"), data
        props = dict(schema["properties"])
        node = at(base, path)
        for rule in schema.get("allOf", []):
            if node.get("cloud") == rule["if"]["properties"]["cloud"]["const"]:
                props.update(rule["then"].get("properties", {}))
        for key in node:
            data = copy.deepcopy(base)
            at(data, path)[key] = wrong_value(props[key])
            yield f"wrong {keypath(path, key)}", keypath(path, key), data
        for key in schema.get("required", []):
            data = copy.deepcopy(base)
            del at(data, path)[key]
            yield f"missing {keypath(path, key)}", keypath(path, key), data


MUTATIONS = list(mutations())


def test_mutations_cover_every_section() -> None:
    """The repo's config reaches the sections (members of every cloud, releases, ramp-free
    ones); a section added to the tables without an example here shows up as missing."""
    where = {re.sub(r"\[\d+\]", "[]", re.sub(r"^members\.[^.]+", "members.*", p))
             .rsplit(".", 1)[0] for kind, p, _ in MUTATIONS if kind.startswith("unknown")}
    assert {"redirector", "redirector.check", "terraform", "members.*",
            "members.*.cluster", "members.*.terraform", "members.*.releases[]"} <= where


@pytest.fixture(scope="module")
def shared_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the config for all the mutations: each writes the whole federation.yaml
    and only loads it, so no test sees another's change."""
    return copy_federation(tmp_path_factory.mktemp("mutations"))


@pytest.mark.parametrize(("name", "key", "data"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_what_the_schema_rejects_the_loader_rejects(name: str, key: str, data: Any,
                                                    shared_config: Path) -> None:
    config_dir = shared_config
    assert list(validator().iter_errors(data)), f"schema accepts: {name}"
    (config_dir / "federation.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as info:
        load_federation(config_dir)
    assert any(p.key == key or p.key.startswith(key + ".") for p in info.value.problems), \
        f"{name}: {info.value.render()}"
