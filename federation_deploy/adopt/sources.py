"""Read a deploy repository's own files for adopt: deploy.py (with ast, never run) and cd.yml."""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from federation_deploy.config.gitcrypt import is_git_crypt_locked
from federation_deploy.errors import ConfigError, UsageError
from federation_deploy.yamlio import load_located

TABLES = ("GCP_PROJECTS", "GCP_ZONES", "KUBECONFIG_CLUSTERS", "AWS_DEPLOYMENTS", "AZURE_RGs")
# names an f-string argument may use in deploy.py, as the placeholders of a hook's argv
PLACEHOLDERS = {"release": "{member}", "cluster": "{member}", "name": "{namespace}"}
MATRIX_MEMBER = re.compile(r"\$\{\{\s*matrix\.federation_member\s*\}\}")


@dataclass(frozen=True)
class Unmapped:
    """Something the repository does that federation.yaml does not say (yet), and how to."""

    what: str
    where: str  # file:line in the repository
    how: str    # how to express it
    blocking: bool = False  # validate refuses federation.yaml until a person says it

    def render(self) -> str:
        how = "\n".join(f"    {line}" for line in self.how.splitlines())
        return f"- {self.what} ({self.where})\n{how}"


# --------------------------------------------------------------------------------------------
# deploy.py, read with ast


@dataclass
class DeployScript:
    """The module-level tables and functions of deploy.py; nothing of it is executed."""

    display: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    table_lines: dict[str, int] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)
    problems: list[Unmapped] = field(default_factory=list)

    def where(self, line: int | None) -> str:
        return f"{self.display}:{line}" if line else self.display


def _literal_table(node: ast.expr) -> dict[str, Any]:
    """A dict literal as is; a set/list/tuple of names as {name: None} in source order."""
    if isinstance(node, ast.Dict):
        return {ast.literal_eval(k): ast.literal_eval(v)
                for k, v in zip(node.keys, node.values, strict=True) if k is not None}
    if isinstance(node, ast.Set | ast.List | ast.Tuple):
        return {ast.literal_eval(e): None for e in node.elts}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args \
            and node.func.id in ("dict", "set"):
        return {}
    raise ValueError("not a literal")


def read_deploy_script(path: Path, display: str) -> DeployScript:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=display)
    except SyntaxError as exc:
        raise ConfigError.single(display, exc.lineno, "", f"Python syntax error: {exc.msg}"
                                 ) from None
    script = DeployScript(display)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            script.functions[node.name] = node
            continue
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if not isinstance(target, ast.Name) or target.id not in TABLES or value is None:
            continue
        try:
            script.tables[target.id] = _literal_table(value)
            script.table_lines[target.id] = node.lineno
        except (ValueError, TypeError, SyntaxError):
            script.problems.append(Unmapped(
                f"{target.id} is computed, not a literal table", script.where(node.lineno),
                "adopt reads deploy.py without running it: list those members in "
                "federation.yaml by hand"))
    return script


def _argv_element(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Attribute) and node.attr == "executable":
        return "python"  # sys.executable
    if isinstance(node, ast.Name):
        return PLACEHOLDERS.get(node.id, f"{{{node.id}}}")
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name):
                parts.append(PLACEHOLDERS.get(value.value.id, f"{{{value.value.id}}}"))
            else:
                return None
        return "".join(parts)
    return None


def argv_lists(function: ast.FunctionDef) -> list[list[str]]:
    """The command lines a function spells out as list literals, in source order."""
    found = []
    for node in ast.walk(function):
        if isinstance(node, ast.List) and len(node.elts) >= 2:
            argv = [_argv_element(e) for e in node.elts]
            if all(a is not None for a in argv):
                found.append((node.lineno, [a for a in argv if a is not None]))
    return [argv for _, argv in sorted(found, key=lambda item: item[0])]


def guarding_tables(script: DeployScript, name: str) -> set[str]:
    """The tables whose `if ... in TABLE:` branches of main() hold the calls to a function
    (empty: main() calls it for every member)."""
    main = script.functions.get("main")
    guards: set[str] = set()

    def visit(node: ast.AST, tables: frozenset[str]) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id == name:
            guards.update(tables)
        if isinstance(node, ast.If):
            named = frozenset(n.id for n in ast.walk(node.test)
                              if isinstance(n, ast.Name) and n.id in TABLES)
            for statement in node.body:
                visit(statement, tables | named)
            for statement in node.orelse:
                visit(statement, tables)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, tables)

    if main is not None:
        visit(main, frozenset())
    return guards


def string_constants(function: ast.FunctionDef) -> Iterator[str]:
    """Every string literal of a function, an f-string as one (with {placeholders})."""
    parts = {id(v) for n in ast.walk(function) if isinstance(n, ast.JoinedStr) for v in n.values}
    for node in ast.walk(function):
        if isinstance(node, ast.Constant | ast.JoinedStr) and id(node) not in parts:
            text = _argv_element(node)
            if text is not None:
                yield text


def called_from_main(script: DeployScript) -> list[str]:
    """Top-level functions main() calls, in call order (what a deploy does, stage by stage)."""
    main = script.functions.get("main")
    if main is None:
        return []
    calls = [n for n in ast.walk(main) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    seen: list[str] = []
    for call in calls:
        name = call.func.id  # type: ignore[attr-defined]
        if name in script.functions and name not in seen:
            seen.append(name)
    return seen


# --------------------------------------------------------------------------------------------
# YAML and environment files


def load_plain_yaml(path: Path, display: str) -> Any:
    if is_git_crypt_locked(path):
        raise UsageError(f"{display} is locked with git-crypt: run git-crypt unlock first "
                         "(adopt reads only plain config files)")
    return load_located(path, display)


def merge_values(base: Any, over: Any) -> Any:
    """Helm's merge of -f files: dicts deeply, everything else replaced, a null kept (helm
    deletes the chart's default for it later: coalesce_values)."""
    if not isinstance(base, Mapping) or not isinstance(over, Mapping):
        return over
    merged = dict(base)
    for key, value in over.items():
        merged[key] = None if value is None else merge_values(merged.get(key), value)
    return merged


def coalesce_values(defaults: Any, values: Any) -> Any:
    """Helm's coalescing of user values over a chart's values.yaml: dicts deeply, a user null
    deletes the chart's key (and is kept where the chart has no such key)."""
    if not isinstance(defaults, Mapping) or not isinstance(values, Mapping):
        return values
    merged = dict(defaults)
    for key, value in values.items():
        if value is None and key in defaults:
            merged.pop(key)
        else:
            merged[key] = coalesce_values(merged.get(key), value)
    return merged


def read_env_file(path: Path) -> dict[str, str]:
    """`export NAME=value` lines of a shell env file (cert-manager.env)."""
    values = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            match = re.match(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
            if match:
                values[match[1]] = match[2].strip().strip("\"'")
    return values


# --------------------------------------------------------------------------------------------
# cd.yml


@dataclass
class CdWorkflow:
    order: list[str] = field(default_factory=list)
    # the members of the first deploy job, when another deploy job waits for it (needs:)
    staging: list[str] = field(default_factory=list)
    release_names: dict[str, str] = field(default_factory=dict)
    cluster_names: dict[str, str] = field(default_factory=dict)
    tests: tuple[list[str], int] | None = None  # post-deploy test argv, and its line
    chartpress_line: int | None = None
    # the AWS OIDC role and region a matrix entry gives its member (aws_deployment_role, ...)
    aws_roles: dict[str, str] = field(default_factory=dict)
    aws_regions: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # the workflow's and jobs' env: values
    lines: dict[str, int] = field(default_factory=dict)  # member -> line of its matrix entry
    # the retry action around the post-deploy tests: its attempts and timeout (seconds)
    tests_attempts: int | None = None
    tests_timeout: float | None = None
    concurrency: str | None = None  # the workflow's concurrency group
    paths_ignore: list[str] = field(default_factory=list)  # on.push.paths-ignore
    actions: dict[str, str] = field(default_factory=dict)  # owner/name -> the ref it uses
    python_version: str | None = None  # setup-python's python-version, when given
    # steps of the deploy jobs with no federation-deploy equivalent (the Grafana annotation):
    # (first deploy job or not, after the deploy.py step or not, the step, its line)
    other_steps: list[tuple[bool, bool, dict[str, Any], int]] = field(default_factory=list)


def _line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return number
    return None


def read_cd_workflow(path: Path, display: str) -> CdWorkflow:
    cd = CdWorkflow()
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError.single(display, mark.line + 1 if mark else None, "",
                                 "YAML syntax error") from None
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, dict):
        return cd
    _read_workflow_settings(cd, data, text)
    for env in [data.get("env"), *(j.get("env") for j in jobs.values() if isinstance(j, dict))]:
        if isinstance(env, dict):
            cd.env.update({str(k): str(v) for k, v in env.items() if v is not None})
    # jobs in dependency order (needs), file order among equals: the CD order
    pending = list(jobs)
    done: list[str] = []
    needs_of = {job_id: _needs(job) for job_id, job in jobs.items()}
    while pending:
        for job_id in pending:
            needs = needs_of[job_id]
            if all(n in done or n not in jobs for n in needs):
                done.append(job_id)
                pending.remove(job_id)
                break
        else:
            done += pending  # a cycle: keep file order rather than loop
            break
    deploy_jobs: list[str] = []
    for job_id in done:
        job = jobs[job_id] if isinstance(jobs[job_id], dict) else {}
        matrix = (job.get("strategy") or {}).get("matrix") or {}
        for entry in matrix.get("include") or []:
            member = entry.get("federation_member") if isinstance(entry, dict) else None
            if not isinstance(member, str) or member in cd.order:
                continue
            if not deploy_jobs or deploy_jobs[-1] != job_id:
                deploy_jobs.append(job_id)
            if job_id == deploy_jobs[0]:
                cd.staging.append(member)
            cd.order.append(member)
            if entry.get("release_name"):
                cd.release_names[member] = str(entry["release_name"])
            if entry.get("cluster_name"):
                cd.cluster_names[member] = str(entry["cluster_name"])
            for key, table in (("role", cd.aws_roles), ("region", cd.aws_regions)):
                value = next((v for k, v in entry.items() if str(k).startswith("aws_")
                              and str(k).endswith(key) and isinstance(v, str)), None)
                if value:
                    table[member] = value
            cd.lines[member] = _line_of(text, f"federation_member: {member}") or 0
        deploys = bool(deploy_jobs) and deploy_jobs[-1] == job_id
        after_deploy = False
        for step in job.get("steps") or []:
            if not isinstance(step, dict):
                continue
            if deploys:
                after_deploy = _sort_step(cd, step, text, job_id == deploy_jobs[0],
                                          after_deploy)
            commands = [step.get("run"), (step.get("with") or {}).get("command")]
            for command in (c for c in commands if isinstance(c, str)):
                if "chartpress" in command and cd.chartpress_line is None:
                    cd.chartpress_line = _line_of(text, "chartpress")
                for line in command.splitlines():
                    if line.strip().startswith("pytest") and MATRIX_MEMBER.search(line) \
                            and cd.tests is None:
                        argv = shlex.split(MATRIX_MEMBER.sub("{member}", line.strip()))
                        cd.tests = (argv, _line_of(text, line.strip()) or 0)
                        _read_retry(cd, step)
    # a first job that no later deploy job waits for is no staging tier: just a job
    if not any(deploy_jobs[0] in _ancestors(job_id, needs_of) for job_id in deploy_jobs[1:]):
        cd.staging = []
    return cd


# what cd.yml's deploy jobs run that the workflow adopt writes does in its own way: tools,
# credentials, dependencies, chartpress, deploy.py, the post-deploy tests
KNOWN_STEP = re.compile(r"actions/checkout|actions/cache|setup-python|setup-kubectl|setup-helm"
                        r"|setup-gcloud|git-crypt|docker/login|docker-login"
                        r"|configure-aws-credentials|pip install"
                        r"|chartpress|deploy\.py|pytest|get-helm|helm dependency|HELM_VERSION"
                        r"|gcloud|matrix\.helm_version")


def _sort_step(cd: CdWorkflow, step: dict[str, Any], text: str, first_job: bool,
               after_deploy: bool) -> bool:
    """Keep a deploy job's step federation-deploy has no equivalent for (other_steps);
    whether the deploy.py step has been seen (this step included)."""
    body = " ".join(str(step.get(k) or "") for k in ("uses", "run"))
    body += " " + str((step.get("with") or {}).get("command") or "")
    if "deploy.py" in body:
        return True
    if not KNOWN_STEP.search(body):
        line = _line_of(text, str(step.get("name") or step.get("run") or "")) or 0
        if all(s[2] != step for s in cd.other_steps):
            cd.other_steps.append((first_job, after_deploy, step, line))
    return after_deploy


def _read_retry(cd: CdWorkflow, step: dict[str, Any]) -> None:
    """max_attempts and timeout_minutes (or _seconds) of a retry action (nick-invision/retry)."""
    options = step.get("with") or {}
    if not str(step.get("uses") or "").startswith(("nick-invision/retry", "nick-fields/retry")):
        return
    attempts = options.get("max_attempts")
    if isinstance(attempts, int) and attempts >= 1:
        cd.tests_attempts = attempts
    for key, factor in (("timeout_minutes", 60), ("timeout_seconds", 1)):
        value = options.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            cd.tests_timeout = float(value * factor)


def _read_workflow_settings(cd: CdWorkflow, data: dict[Any, Any], text: str) -> None:
    """concurrency, on.push.paths-ignore, the actions and their refs, the Python version."""
    concurrency = data.get("concurrency")
    if isinstance(concurrency, dict):
        concurrency = concurrency.get("group")
    if isinstance(concurrency, str):
        cd.concurrency = concurrency
    on = data.get("on", data.get(True))  # YAML 1.1 reads a bare `on` as true
    push = on.get("push") if isinstance(on, dict) else None
    if isinstance(push, dict) and isinstance(push.get("paths-ignore"), list):
        cd.paths_ignore = [str(p) for p in push["paths-ignore"]]
    for match in re.finditer(r"uses:\s*([\w.-]+/[\w./-]+)@([\w.-]+)", text):
        cd.actions.setdefault(match[1], match[2])
    version = re.search(r"python-version:\s*[\"']?([0-9][0-9.]*)", text)
    if version:
        cd.python_version = version[1]


def _needs(job: Any) -> list[str]:
    needs = job.get("needs", []) if isinstance(job, dict) else []
    return [needs] if isinstance(needs, str) else [str(n) for n in needs or []]


def _ancestors(job_id: str, needs_of: Mapping[str, list[str]]) -> set[str]:
    """Every job job_id waits for, directly or through others."""
    seen: set[str] = set()
    todo = list(needs_of.get(job_id, []))
    while todo:
        job = todo.pop()
        if job not in seen:
            seen.add(job)
            todo += needs_of.get(job, [])
    return seen
