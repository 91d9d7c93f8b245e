"""deploy.py's control flow, read for one member: which branches it takes, what it runs."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from federation_deploy.adopt.sources import DeployScript

# the names deploy.py's functions use for the member (release), its cluster and release name
MEMBER_NAMES = ("release",)
CLUSTER_NAMES = ("cluster",)
NAMESPACE_NAMES = ("name",)
# calls that run an argv in deploy.py (check_call(cmd, dry_run), subprocess.check_call(cmd))
RUNNERS = {"check_call", "check_output", "run", "call", "Popen"}


@dataclass(frozen=True)
class Target:
    """The member deploy.py is run for: `deploy.py MEMBER CLUSTER --name NAME` (cd.yml)."""

    member: str
    cluster: str
    tables: Mapping[str, Mapping[str, object]]

    def value_of(self, name: str) -> str | None:
        if name in MEMBER_NAMES:
            return self.member
        if name in CLUSTER_NAMES:
            return self.cluster
        return None


def _literal_set(node: ast.expr, target: Target) -> set[str] | None:
    if isinstance(node, ast.Name) and node.id in target.tables:
        return set(target.tables[node.id])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == "keys":
        return _literal_set(node.func.value, target)
    if isinstance(node, ast.Set | ast.List | ast.Tuple):
        items = [e.value for e in node.elts if isinstance(e, ast.Constant)]
        return {str(i) for i in items}
    return None


def _subject(node: ast.expr, target: Target) -> str | None:
    if isinstance(node, ast.Name):
        return target.value_of(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
            and node.value.id == "args":
        return target.value_of(node.attr)
    return None


def evaluate(test: ast.expr, target: Target) -> bool | None:
    """A condition of deploy.py for one member: True, False, or None when it depends on
    something else (a command-line flag, the environment)."""
    if isinstance(test, ast.BoolOp):
        results = [evaluate(v, target) for v in test.values]
        if isinstance(test.op, ast.And):
            return False if False in results else (None if None in results else True)
        return True if True in results else (None if None in results else False)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        inner = evaluate(test.operand, target)
        return None if inner is None else not inner
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        subject = _subject(test.left, target)
        right = test.comparators[0]
        if subject is None:
            return None
        if isinstance(test.ops[0], ast.In | ast.NotIn):
            members = _literal_set(right, target)
            if members is None:
                return None
            inside = subject in members
            return inside if isinstance(test.ops[0], ast.In) else not inside
        if isinstance(test.ops[0], ast.Eq | ast.NotEq) and isinstance(right, ast.Constant):
            equal = subject == right.value
            return equal if isinstance(test.ops[0], ast.Eq) else not equal
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Attribute) \
            and test.func.attr == "startswith" and test.args \
            and isinstance(test.args[0], ast.Constant):
        subject = _subject(test.func.value, target)
        return None if subject is None else subject.startswith(str(test.args[0].value))
    return None


def calls_in_order(script: DeployScript, function: str, target: Target) -> Iterator[str]:
    """The top-level functions a function of deploy.py calls for target, in order, following
    them in (main -> deploy -> setup_certmanager); a branch that cannot be decided (a flag)
    is taken, except a `--local`/`localhost`-only one."""
    seen: set[str] = set()

    def visit(statements: list[ast.stmt]) -> Iterator[str]:
        for statement in statements:
            if isinstance(statement, ast.If):
                result = evaluate(statement.test, target)
                if result is not False:
                    yield from visit(statement.body)
                if result is not True:
                    yield from visit(statement.orelse)
                continue
            for node in ast.walk(statement):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                        and node.func.id in script.functions and node.func.id not in seen:
                    seen.add(node.func.id)
                    yield node.func.id
                    yield from visit(script.functions[node.func.id].body)

    main = script.functions.get(function)
    if main is not None:
        yield from visit(main.body)


def _word(node: ast.expr, target: Target) -> str | None:
    """One argv element for target: member and cluster filled in, the release name as
    {namespace}, sys.executable as python3 (hooks run with our PATH)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int):
        return str(node.value)
    if isinstance(node, ast.Attribute) and node.attr == "executable":
        return "python3"
    if isinstance(node, ast.Name):
        if node.id in NAMESPACE_NAMES:
            return "{namespace}"
        return target.value_of(node.id) or f"{{{node.id}}}"
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        # AWS_DEPLOYMENTS[cluster]: the table's entry; azure["sp-app-id"]: a placeholder
        key = _word(node.slice, target)
        table = target.tables.get(node.value.id)
        if table is not None and key is not None and key in table:
            return str(table[key])
        return f"{{{node.value.id}[{key}]}}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == "str" and node.args:
        return _word(node.args[0], target)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                part = _word(value.value, target)
                if part is None:
                    return None
                parts.append(part)
            else:
                return None
        return "".join(parts)
    return None


def _argv(node: ast.expr, lists: Mapping[str, list[str]], target: Target) -> list[str] | None:
    if isinstance(node, ast.Name) and node.id in lists:
        return list(lists[node.id])
    if isinstance(node, ast.List):
        words = [_word(e, target) for e in node.elts]
        return None if any(w is None for w in words) else [w for w in words if w is not None]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _argv(node.left, lists, target), _argv(node.right, lists, target)
        return None if left is None or right is None else left + right
    return None


def commands_run(function: ast.FunctionDef, target: Target) -> list[list[str]]:
    """The argvs a (simple) deploy.py function runs for target, in order: lists assigned to
    names, appended to under conditions (`if cluster in {...}: cmd.append(cluster)`), and
    passed to check_call/run. A command built from something else is left out."""
    lists: dict[str, list[str]] = {}
    found: list[list[str]] = []

    def visit(statements: list[ast.stmt]) -> None:
        for statement in statements:
            if isinstance(statement, ast.If):
                result = evaluate(statement.test, target)
                if result is not False:
                    visit(statement.body)
                if result is not True:
                    visit(statement.orelse)
                continue
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                    and isinstance(statement.targets[0], ast.Name):
                argv = _argv(statement.value, lists, target)
                if argv is not None:
                    lists[statement.targets[0].id] = argv
                    continue
            call = statement.value if isinstance(statement, ast.Expr | ast.Assign) else None
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                    and func.value.id in lists and func.attr in ("append", "extend") \
                    and call.args:
                if func.attr == "append":
                    word = _word(call.args[0], target)
                    if word is not None:
                        lists[func.value.id].append(word)
                else:
                    more = _argv(call.args[0], lists, target)
                    lists[func.value.id] += more or []
                continue
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in RUNNERS and call.args:
                argv = _argv(call.args[0], lists, target)
                if argv:
                    found.append(argv)

    visit(function.body)
    return found


def env_names(function: ast.FunctionDef) -> list[str]:
    """Environment variables a function reads: os.environ["X"], os.getenv("X"),
    os.environ.get("X")."""
    names = []
    for node in ast.walk(function):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "environ":
            key = node.slice
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                and (node.func.attr == "getenv" or (node.func.attr == "get" and isinstance(
                    node.func.value, ast.Attribute) and node.func.value.attr == "environ")):
            key = node.args[0]
        if isinstance(key, ast.Constant) and isinstance(key.value, str):
            names.append(key.value)
    return names


def helm_words(argv: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """(--option=value options, positional words) of a `helm upgrade --install` argv."""
    options: dict[str, list[str]] = {}
    words = []
    for word in argv[1:]:
        if word.startswith("--") and "=" in word:
            name, value = word.split("=", 1)
            options.setdefault(name, []).append(value)
        elif not word.startswith("-") and word not in ("upgrade", "diff"):
            words.append(word)
    return options, words
