"""Packaging: every third-party import declared once in pyproject, metadata without deprecations."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
# our own top-level modules and directories, imported by tests, scripts and benchmarks
FIRST_PARTY = {"federation_deploy", "tests", "benchmarks", "scripts", "conftest"}


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (PyYAML is pyyaml, ruamel.yaml ruamel-yaml)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return normalize(match.group(0))


def declared(requirements: Iterable[str]) -> set[str]:
    return {requirement_name(r) for r in requirements}


def top_level_imports(paths: Iterable[Path]) -> dict[str, list[str]]:
    """Top-level module name -> the files importing it (absolute imports, at any depth)."""
    found: dict[str, list[str]] = {}
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                found.setdefault(name.split(".")[0], []).append(str(where))
    return found


def python_files(*directories: str) -> Iterator[Path]:
    for directory in directories:
        yield from (p for p in (REPO / directory).rglob("*.py") if "__pycache__" not in p.parts)


def third_party(imports: dict[str, list[str]]) -> dict[str, list[str]]:
    return {name: files for name, files in imports.items()
            if name not in sys.stdlib_module_names and name not in FIRST_PARTY}


def distributions_of(imports: dict[str, list[str]]) -> dict[str, set[str]]:
    """Distribution -> modules it provides that are imported; an unknown module fails here."""
    providers = packages_distributions()
    result: dict[str, set[str]] = {}
    unknown = {name: files for name, files in imports.items() if name not in providers}
    assert not unknown, f"imported but installed by no distribution: {unknown}"
    for name in imports:
        for dist in providers[name]:
            result.setdefault(normalize(dist), set()).add(name)
    return result


def undeclared(imports: dict[str, list[str]], allowed: set[str]) -> dict[str, list[str]]:
    providers = packages_distributions()
    return {name: files for name, files in imports.items()
            if not {normalize(d) for d in providers.get(name, [])} & allowed}


# --- imports against dependencies -----------------------------------------------------------


@pytest.mark.slow  # reads every installed distribution's metadata
def test_every_import_of_the_package_is_a_declared_dependency() -> None:
    imports = third_party(top_level_imports(python_files("federation_deploy")))
    distributions_of(imports)  # every module resolves to an installed distribution
    missing = undeclared(imports, declared(PROJECT["dependencies"]))
    assert not missing, f"imported by the package, not in [project].dependencies: {missing}"


@pytest.mark.slow  # reads every installed distribution's metadata
def test_every_dependency_is_imported_by_the_package() -> None:
    imports = third_party(top_level_imports(python_files("federation_deploy")))
    used = set(distributions_of(imports))
    unused = declared(PROJECT["dependencies"]) - used
    assert not unused, f"declared but never imported by federation_deploy: {unused}"


@pytest.mark.slow  # reads every installed distribution's metadata
def test_tests_scripts_and_benchmarks_import_only_what_is_declared() -> None:
    imports = third_party(top_level_imports(python_files("tests", "scripts", "benchmarks")))
    distributions_of(imports)
    allowed = declared(PROJECT["dependencies"]) | declared(PROJECT["optional-dependencies"]["test"])
    missing = undeclared(imports, allowed)
    assert not missing, f"imported, in neither dependencies nor the test extras: {missing}"


def test_no_requirement_is_listed_twice() -> None:
    groups = {"dependencies": PROJECT["dependencies"],
              **{f"extra {k}": v for k, v in PROJECT["optional-dependencies"].items()}}
    seen: dict[str, str] = {}
    for group, requirements in groups.items():
        for requirement in requirements:
            name = requirement_name(requirement)
            assert name not in seen, f"{name} listed in {seen[name]} and in {group}"
            seen[name] = group


def test_the_import_scan_sees_nested_and_aliased_imports(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text("import os\ndef f():\n    import yaml as y\n"
                      "    from ruamel.yaml import YAML\nfrom . import sibling\n")
    found = third_party(top_level_imports([module]))
    assert sorted(found) == ["ruamel", "yaml"]
    # named as the scan names files: relative to the checkout when inside it (make test keeps
    # its temporary directories there)
    where = module.relative_to(REPO) if module.is_relative_to(REPO) else module
    assert undeclared(found, {"pyyaml"}) == {"ruamel": [str(where)]}


# --- metadata -------------------------------------------------------------------------------

# Builds the wheel metadata with the installed setuptools (the one the build-system table asks
# for) and prints every warning raised meanwhile, as JSON.
METADATA_PROBE = """
import json, sys, warnings
import setuptools.build_meta as backend
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    backend.prepare_metadata_for_build_wheel(sys.argv[1])
print(json.dumps([f"{w.category.__name__}: {str(w.message).strip().splitlines()[0]}"
                  for w in caught]))
"""


def metadata_warnings(tree: Path) -> list[str]:
    out = tree / "metadata-out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", METADATA_PROBE, str(out)], cwd=tree,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result: list[str] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """What a build reads: pyproject, README and the package, copied (builds write egg-info)."""
    tree = tmp_path / "src"
    tree.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, tree / name)
    shutil.copytree(REPO / "federation_deploy", tree / "federation_deploy",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return tree


@pytest.mark.slow  # builds the metadata with setuptools in a subprocess
def test_metadata_builds_without_deprecation_warnings(source_tree: Path) -> None:
    warnings = metadata_warnings(source_tree)
    assert not [w for w in warnings if "Deprecat" in w], warnings


@pytest.mark.slow  # builds the metadata with setuptools in a subprocess
def test_the_metadata_probe_sees_a_deprecated_license_table(source_tree: Path) -> None:
    pyproject = source_tree / "pyproject.toml"
    text = pyproject.read_text()
    assert 'license = "BSD-3-Clause"' in text
    pyproject.write_text(text.replace('license = "BSD-3-Clause"',
                                      'license = { text = "BSD-3-Clause" }'))
    warnings = metadata_warnings(source_tree)
    assert any("SetuptoolsDeprecationWarning" in w and "license" in w for w in warnings), warnings
