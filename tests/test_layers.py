"""The package's layers, read from its imports with ast: data flows down, never back up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "federation_deploy"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MAX_LINES = 600

# Modules that plan and describe, and so never run tools: config (with the CI matrix, chart
# versions and the terraform files read as text), rendering, manifests, the health verdict and
# probe, ramp planning and shares.
PURE = ("config", "values.render", "values.manifests", "health", "traffic.ramp", "traffic.shares",
        "review")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(name: str) -> set[str]:
    """Every module name `name` imports, absolute, also inside functions (lazy imports count:
    they are a dependency all the same). `from . import x` yields both the package and the
    possible submodule x."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_package_is_found() -> None:
    # the rules below would pass vacuously on an empty list
    assert "federation_deploy.cli.main" in MODULES and "federation_deploy.config" in MODULES


def test_imports_resolve_relative_imports() -> None:
    found = imports("federation_deploy.commands.ci_matrix")
    assert "federation_deploy.actions.git" in found
    assert "federation_deploy.config.ci_matrix" in found


@pytest.mark.parametrize("name", [n for n in MODULES if not within(n, f"{PACKAGE}.cli")])
def test_only_the_cli_imports_click(name: str) -> None:
    assert not any(within(m, "click") for m in imports(name))


@pytest.mark.parametrize("name", [n for n in MODULES if within(n, f"{PACKAGE}.actions")])
def test_actions_know_no_commands_and_no_cli(name: str) -> None:
    bad = {m for m in imports(name)
           if within(m, f"{PACKAGE}.commands") or within(m, f"{PACKAGE}.cli")}
    assert not bad


PURE_MODULES = [n for n in MODULES if any(within(n, f"{PACKAGE}.{p}") for p in PURE)]


def test_the_pure_modules_are_found() -> None:
    for required in ("config", "config.schema", "values.render", "traffic.shares",
                     "config.ci_matrix", "traffic.ramp.plan", "health.verdict"):
        assert f"{PACKAGE}.{required}" in PURE_MODULES


@pytest.mark.parametrize("name", PURE_MODULES)
def test_planning_modules_run_no_tools(name: str) -> None:
    bad = {m for m in imports(name)
           if within(m, f"{PACKAGE}.actions") or within(m, f"{PACKAGE}.runner")}
    assert not bad


@pytest.mark.parametrize("name", [n for n in MODULES if within(n, f"{PACKAGE}.redirector")])
def test_the_redirector_imports_nothing_of_the_deploy_side(name: str) -> None:
    bad = {m for m in imports(name)
           if within(m, PACKAGE) and not within(m, f"{PACKAGE}.redirector")}
    assert not bad


@pytest.mark.parametrize("name", list(MODULES))
def test_no_module_is_over_600_lines(name: str) -> None:
    lines = len(MODULES[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[name]} has {lines} lines"


def test_a_violation_is_seen(tmp_path: Path) -> None:
    # the checker itself: a module importing the runner from config would be caught
    source = "from ..runner import Runner\nimport click\n"
    fake = ROOT / "config" / "_layers_probe.py"
    assert not fake.exists()
    MODULES["federation_deploy.config._layers_probe"] = tmp_path / "probe.py"
    try:
        (tmp_path / "probe.py").write_text(source)
        found = imports("federation_deploy.config._layers_probe")
    finally:
        del MODULES["federation_deploy.config._layers_probe"]
    assert "federation_deploy.runner" in found and "click" in found


# --------------------------------------------------------------------------------------------
# The floor plan: a few shared modules at the root, the CLI reaching only commands/, and every
# command returning the one result type.

# at most 8 modules: progress holds the one Progress type every room talks through
ROOT_MODULES = {"__init__", "errors", "runner", "signals", "yamlio", "durations", "progress"}
# What the CLI may import of the package: its own modules, the commands, config (the model and
# the schema's limits for option ranges) and the shared root modules.
CLI_MAY_IMPORT = ("cli", "commands", "config", *sorted(ROOT_MODULES - {"__init__"}))
# cli modules that serve every command rather than one; and `completion`, which prints Click's
# own completion script (nothing below the CLI has anything to do with it)
CLI_SHARED = {"__init__", "main", "context", "params", "output", "github", "completion"}


def test_the_package_root_keeps_only_the_shared_modules() -> None:
    at_root = {p.stem for p in ROOT.glob("*.py")}
    assert at_root <= ROOT_MODULES, f"modules at the package root: {sorted(at_root - ROOT_MODULES)}"
    assert len(at_root) <= 8


@pytest.mark.parametrize("name", [n for n in MODULES if within(n, f"{PACKAGE}.cli")])
def test_the_cli_reaches_nothing_below_commands(name: str) -> None:
    bad = {m for m in imports(name) if within(m, PACKAGE) and m != PACKAGE
           and not any(within(m, f"{PACKAGE}.{allowed}") for allowed in CLI_MAY_IMPORT)}
    assert not bad, f"{name} imports {sorted(bad)}"


def _commands_called(name: str) -> dict[str, set[str]]:
    """The functions of commands/ modules a cli module calls: {commands module: {function}}."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == f"{PACKAGE}.commands":
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{PACKAGE}.commands.{alias.name}"
    called: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id in aliases):
            called.setdefault(aliases[node.func.value.id], set()).add(node.func.attr)
    return called


def _returns(module: str, function: str) -> str | None:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function and node.returns:
            return ast.unparse(node.returns)
    return None


CLI_COMMAND_MODULES = [n for n in MODULES if within(n, f"{PACKAGE}.cli") and n != f"{PACKAGE}.cli"
                       and n.rpartition(".")[2] not in CLI_SHARED]


@pytest.mark.parametrize("name", CLI_COMMAND_MODULES)
def test_each_cli_module_has_its_command_module_and_prints_through_emit(name: str) -> None:
    command = f"{PACKAGE}.commands.{name.rpartition('.')[2]}"
    assert command in MODULES, f"{name} has no {command}"
    called = _commands_called(name)
    assert command in called, f"{name} never calls {command}"
    source = MODULES[name].read_text(encoding="utf-8")
    assert "emit(obj," in source


@pytest.mark.parametrize("name", CLI_COMMAND_MODULES)
def test_the_commands_the_cli_calls_return_the_result_type(name: str) -> None:
    for module, functions in _commands_called(name).items():
        for function in functions:
            returns = _returns(module, function)
            if returns is None:  # a class (a request), a constant or a re-export
                continue
            assert returns == "CommandResult" or function in QUESTIONS, \
                f"{module}.{function} returns {returns}, not CommandResult"


# commands/ functions the CLI asks before or after the command proper: the plans of a deploy and
# of a shadow run (which the CLI confirms with the user) and what an interrupted ramp says (the
# interrupt handler's)
QUESTIONS = {"plan_deploy", "prepare", "interrupted"}
