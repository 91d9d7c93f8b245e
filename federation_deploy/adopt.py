"""Build federation.yaml from a deploy repository in mybinder.org-deploy's layout (never run)."""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, UsageError
from .yamlio import load_located, to_plain

GIT_CRYPT_MAGIC = b"\x00GITCRYPT\x00"
# the terraform pin written when the repository's stacks pin none exactly (ours, DESIGN 4)
DEFAULT_TERRAFORM_VERSION = "1.11.4"
DEPLOY_SCRIPT = "deploy.py"
CD_WORKFLOW = ".github/workflows/cd.yml"
STAND_IN = "config/test-secrets.yaml"
TABLES = ("GCP_PROJECTS", "GCP_ZONES", "KUBECONFIG_CLUSTERS", "AWS_DEPLOYMENTS", "AZURE_RGs")
# deploy.py's main() tries the tables in this order, so a member in two tables gets the first
CLOUD_ORDER = (("KUBECONFIG_CLUSTERS", "kubeconfig"), ("AZURE_RGs", "azure"),
               ("GCP_PROJECTS", "gcp"), ("AWS_DEPLOYMENTS", "aws"))
# names an f-string argument may use in deploy.py, as the placeholders of a hook's argv
PLACEHOLDERS = {"release": "{member}", "cluster": "{member}", "name": "{namespace}"}
MATRIX_MEMBER = re.compile(r"\$\{\{\s*matrix\.federation_member\s*\}\}")
# deploy.py steps adopt maps itself (auth -> cloud, rollout wait -> our rollout stage, ...)
MAPPED_STEPS = {"main", "check_call", "check_output", "run", "get_config_files", "deploy",
                "setup_certmanager", "deploy_system_charts", "wait_for_deployments_daemonsets",
                "setup_auth_kubeconfig", "setup_auth_gcloud", "setup_auth_aws",
                "setup_auth_azure"}
# deploy.py steps that are not helm releases: the hook adopt suggests for each
KNOWN_HOOKS = {
    "update_networkbans": ("network-bans", "auth",
                           "deploy.py runs the ban scripts before the charts, which read "
                           "what they generate"),
    "patch_coredns": ("coredns-resources", "auth",
                      "deploy.py patches CoreDNS's memory right after authenticating"),
}


@dataclass(frozen=True)
class Unmapped:
    """Something the repository does that federation.yaml does not say (yet), and how to."""

    what: str
    where: str  # file:line in the repository
    how: str    # how to express it (often a `hooks:` snippet)

    def render(self) -> str:
        how = "\n".join(f"    {line}" for line in self.how.splitlines())
        return f"- {self.what} ({self.where})\n{how}"


@dataclass(frozen=True)
class Adoption:
    """federation.yaml as plain data, what could not be mapped, and what adopt noticed."""

    document: dict[str, Any]
    unmapped: tuple[Unmapped, ...]
    notes: tuple[str, ...] = ()


def is_git_crypt_locked(path: Path) -> bool:
    """True when a file is still git-crypt ciphertext (the repository was not unlocked)."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(GIT_CRYPT_MAGIC)) == GIT_CRYPT_MAGIC
    except OSError:
        return False


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


def _string_constants(function: ast.FunctionDef) -> Iterator[str]:
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


def _load_yaml(path: Path, display: str) -> Any:
    if is_git_crypt_locked(path):
        raise UsageError(f"{display} is locked with git-crypt: run git-crypt unlock first "
                         "(adopt reads only plain config files)")
    return load_located(path, display)


def _merge(base: Any, over: Any) -> Any:
    """Helm's merge of values: dicts deeply, everything else replaced, null deletes."""
    if not isinstance(base, Mapping) or not isinstance(over, Mapping):
        return over
    merged = dict(base)
    for key, value in over.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
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
    release_names: dict[str, str] = field(default_factory=dict)
    cluster_names: dict[str, str] = field(default_factory=dict)
    tests: tuple[list[str], int] | None = None  # post-deploy test argv, and its line
    chartpress_line: int | None = None


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
    # jobs in dependency order (needs), file order among equals: the CD order
    pending = list(jobs)
    done: list[str] = []
    while pending:
        for job_id in pending:
            needs = jobs[job_id].get("needs", []) if isinstance(jobs[job_id], dict) else []
            needs = [needs] if isinstance(needs, str) else list(needs or [])
            if all(n in done or n not in jobs for n in needs):
                done.append(job_id)
                pending.remove(job_id)
                break
        else:
            done += pending  # a cycle: keep file order rather than loop
            break
    for job_id in done:
        job = jobs[job_id] if isinstance(jobs[job_id], dict) else {}
        matrix = (job.get("strategy") or {}).get("matrix") or {}
        for entry in matrix.get("include") or []:
            member = entry.get("federation_member") if isinstance(entry, dict) else None
            if not isinstance(member, str) or member in cd.order:
                continue
            cd.order.append(member)
            if entry.get("release_name"):
                cd.release_names[member] = str(entry["release_name"])
            if entry.get("cluster_name"):
                cd.cluster_names[member] = str(entry["cluster_name"])
        for step in job.get("steps") or []:
            if not isinstance(step, dict):
                continue
            commands = [step.get("run"), (step.get("with") or {}).get("command")]
            for command in (c for c in commands if isinstance(c, str)):
                if "chartpress" in command and cd.chartpress_line is None:
                    cd.chartpress_line = _line_of(text, "chartpress")
                for line in command.splitlines():
                    if line.strip().startswith("pytest") and MATRIX_MEMBER.search(line) \
                            and cd.tests is None:
                        argv = shlex.split(MATRIX_MEMBER.sub("{member}", line.strip()))
                        cd.tests = (argv, _line_of(text, line.strip()) or 0)
    return cd


# --------------------------------------------------------------------------------------------
# the document


def _hook_snippet(name: str, after: str, argvs: Sequence[Sequence[str]]) -> str:
    hooks = [{"name": name if len(argvs) == 1 else f"{name}-{i}", "after": after,
              "argv": list(argv)} for i, argv in enumerate(argvs, 1)]
    text: str = yaml.safe_dump({"hooks": hooks}, sort_keys=False, default_flow_style=None,
                               width=4096)
    return text.rstrip()


class _Reader:
    """One adoption: the repository's files read once, the document built from them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.unmapped: list[Unmapped] = []
        self.notes: list[str] = []
        if not (root / DEPLOY_SCRIPT).is_file():
            raise UsageError(f"{root}: no {DEPLOY_SCRIPT}: adopt reads a deploy repository in "
                             "mybinder.org-deploy's layout (deploy.py, config/, mybinder/)")
        self.script = read_deploy_script(root / DEPLOY_SCRIPT, DEPLOY_SCRIPT)
        self.unmapped += self.script.problems
        cd_path = root / CD_WORKFLOW
        self.cd = read_cd_workflow(cd_path, CD_WORKFLOW) if cd_path.is_file() else CdWorkflow()
        self.chart_values = self._values_of("mybinder/values.yaml")

    # -- helpers -----------------------------------------------------------------------------

    def _values_of(self, relative: str) -> dict[str, Any]:
        path = self.root / relative
        if not path.is_file():
            return {}
        data = _load_yaml(path, relative)
        return dict(data) if isinstance(data, Mapping) else {}

    def _glob(self, pattern: str) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern))

    def plain_values(self, member: str) -> dict[str, Any]:
        """The plain (never secret) layers of a member over the chart's defaults."""
        merged: Any = self.chart_values
        for relative in [*self._glob("config/common/*.yaml"), f"config/{member}.yaml"]:
            merged = _merge(merged, self._values_of(relative))
        return dict(merged)

    def table(self, name: str) -> dict[str, Any]:
        return self.script.tables.get(name, {})

    def table_where(self, name: str) -> str:
        return self.script.where(self.script.table_lines.get(name))

    # -- members -----------------------------------------------------------------------------

    def member_names(self) -> list[str]:
        in_tables: list[str] = []
        for table, _cloud in CLOUD_ORDER:
            in_tables += [n for n in self.table(table) if n not in in_tables]
        names = [n for n in self.cd.order]
        for name in in_tables:
            if name in names:
                continue
            if name == "localhost":
                self.unmapped.append(Unmapped(
                    "member localhost (a developer's own cluster)", self.table_where(
                        "KUBECONFIG_CLUSTERS"),
                    "deploy.py sets its hosts from --local-ip at run time; not adopted. Add a "
                    "member with cloud: kubeconfig and its own values file if you need one"))
            elif (self.root / "config" / f"{name}.yaml").is_file():
                names.append(name)
            else:
                table = next(t for t, _ in CLOUD_ORDER if name in self.table(t))
                self.unmapped.append(Unmapped(
                    f"member {name} of {table}", self.table_where(table),
                    f"it has no config/{name}.yaml and cd.yml does not deploy it: not adopted "
                    "(a member that was retired?)"))
        return names

    def cloud_of(self, name: str) -> tuple[str | None, dict[str, Any]]:
        for table, cloud in CLOUD_ORDER:
            if name not in self.table(table):
                continue
            if cloud == "kubeconfig":
                return cloud, {"kubeconfig": f"secrets/{name}-kubeconfig.yaml"}
            if cloud == "gcp":
                cluster = {"project": self.table("GCP_PROJECTS")[name],
                           "location": self.table("GCP_ZONES").get(name),
                           "name": self.cd.cluster_names.get(name, name)}
                if cluster["location"] is None:
                    self.unmapped.append(Unmapped(
                        f"member {name}: no zone in GCP_ZONES", self.table_where("GCP_ZONES"),
                        f"set members.{name}.cluster.location"))
                    del cluster["location"]
                return cloud, cluster
            if cloud == "aws":
                self.unmapped.append(Unmapped(
                    f"member {name}: the region of its EKS cluster", self.table_where(table),
                    f"deploy.py takes it from the AWS profile: set members.{name}.cluster.region"))
                return cloud, {"name": self.table(table)[name]}
            self.unmapped.append(Unmapped(
                f"member {name} on Azure (AKS)", self.table_where(table),
                "federation-deploy has no azure cloud: export a kubeconfig to "
                f"secrets/{name}-kubeconfig.yaml and use cloud: kubeconfig"))
            return None, {}
        return None, {}

    # -- redirector --------------------------------------------------------------------------

    def redirectors(self, names: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        found = []
        for name in names:
            block = self.plain_values(name).get("federationRedirect")
            if isinstance(block, Mapping) and block.get("enabled") and block.get("hosts"):
                found.append((name, dict(block)))
        # the federation's redirector routes to other members; a member's own is a sidecar
        found.sort(key=lambda item: -len([h for h in item[1]["hosts"] if h != item[0]]))
        return found

    def redirector_section(self, member: str, block: Mapping[str, Any]) -> dict[str, Any]:
        section: dict[str, Any] = {"host": block.get("host"), "member": member,
                                   "release": "mybinder"}
        for key in ("load_balancer", "check", "pod_headroom", "host_cookie_age_hours"):
            if key in block:
                section[key] = block[key]
        return {k: v for k, v in section.items() if v is not None}

    # -- releases ----------------------------------------------------------------------------

    def values_list(self, config_dir: str, member: str) -> list[Any]:
        """deploy.py's get_config_files() order: common, common secrets, member, member
        secrets; globs for the common files, {member} for the member's."""
        entries: list[Any] = []
        if self._glob(f"{config_dir}/common/*.yaml"):
            entries.append(f"{config_dir}/common/*.yaml")
        if self._glob(f"secrets/{config_dir}/common/*.yaml"):
            entries.append({"path": f"secrets/{config_dir}/common/*.yaml", "secret": True})
        plain = f"{config_dir}/{{member}}.yaml"
        entries.append(plain if (self.root / config_dir / f"{member}.yaml").is_file()
                       else {"path": plain, "optional": True})
        entries.append({"path": f"secrets/{config_dir}/{{member}}.yaml", "secret": True,
                        "optional": True})
        return entries

    def system_releases(self, member: str, release: str) -> list[dict[str, Any]]:
        function = self.script.functions.get("deploy_system_charts")
        if function is None:
            return []
        charts = [text for text in _string_constants(function)
                  if text.startswith("mybinder-") and (self.root / text / "Chart.yaml").is_file()]
        releases = []
        for chart in charts:
            namespace = chart[len("mybinder-"):]
            config_dir = f"system-config/{namespace}"
            if not (self._glob(f"{config_dir}/common/*.yaml")
                    or self._glob(f"secrets/{config_dir}/common/*.yaml")
                    or (self.root / config_dir / f"{member}.yaml").is_file()
                    or (self.root / "secrets" / config_dir / f"{member}.yaml").is_file()):
                continue  # deploy.py skips a system chart the member has no config for
            releases.append({"name": namespace, "release": release, "namespace": namespace,
                             "chart": f"./{chart}",
                             "values": self.values_list(config_dir, member)})
        return releases

    def cert_manager_release(self) -> dict[str, Any] | None:
        function = self.script.functions.get("setup_certmanager")
        if function is None:
            return None
        texts = list(_string_constants(function))
        # one token (a docstring may mention URLs too): an oci:// chart, or a repository URL
        chart = next((t for t in texts if re.fullmatch(r"oci://\S+", t)), None) or next(
            (t for t in texts if re.fullmatch(r"https?://\S+", t) and not t.endswith(".yaml")),
            None)
        crds = next((t for t in texts if t.endswith(".crds.yaml")), None)
        namespace = next((t.split("=", 1)[1] for t in texts if t.startswith("--namespace=")),
                         "cert-manager")
        values = [t.split("=", 1)[1] for t in texts if t.startswith("--values=")]
        env_names = [t for t in texts if re.fullmatch(r"[A-Z][A-Z0-9_]*VERSION", t)]
        env = read_env_file(self.root / "cert-manager.env")
        version = next((env[n] for n in env_names if n in env), None)
        where = self.script.where(function.lineno)
        if chart is None or version is None:
            self.unmapped.append(Unmapped(
                "cert-manager", where,
                "could not read its chart or version (cert-manager.env): add a release "
                "{name: cert-manager, chart: ..., version: ..., namespace: cert-manager, "
                "crds: URL} before mybinder"))
            return None
        release: dict[str, Any] = {"name": "cert-manager", "chart": chart, "version": version,
                                   "namespace": namespace}
        if crds:
            release["crds"] = crds.replace("{version}", version)
        if values:
            release["values"] = values
        return release

    def umbrella_chart(self) -> str:
        function = self.script.functions.get("deploy")
        texts = list(_string_constants(function)) if function else []
        for text in [*texts, "mybinder"]:
            if re.fullmatch(r"[\w.-]+", text) and (self.root / text / "Chart.yaml").is_file():
                return f"./{text}"
        raise UsageError(f"{self.root}: no umbrella chart (a directory with Chart.yaml, "
                         "mybinder/ in mybinder.org-deploy) that deploy.py deploys")

    # -- what is left ------------------------------------------------------------------------

    def applies_to(self, function: str, members: Sequence[str]) -> str:
        tables = guarding_tables(self.script, function)
        chosen = [m for m in members if not tables or any(m in self.table(t) for t in tables)]
        return ", ".join(chosen) or "no adopted member"

    def steps_not_mapped(self, members: Sequence[str]) -> None:
        for name in called_from_main(self.script):
            function = self.script.functions[name]
            where = self.script.where(function.lineno)
            if name in KNOWN_HOOKS:
                hook, after, why = KNOWN_HOOKS[name]
                argvs = argv_lists(function)
                self.unmapped.append(Unmapped(
                    f"deploy.py step {name}() ({hook})", where,
                    f"{why}; it runs for {self.applies_to(name, members)}. Express it as "
                    "hooks of those members:\n" + _hook_snippet(hook, after, argvs)))
            elif name not in MAPPED_STEPS:
                self.unmapped.append(Unmapped(
                    f"deploy.py step {name}()", where,
                    "adopt does not know this step: express it as a member hook "
                    "(hooks: [{name, after: auth|releases|rollout|verify, argv: [...]}])"))
        if self.cd.tests is not None:
            argv, line = self.cd.tests
            self.unmapped.append(Unmapped(
                "post-deploy tests of cd.yml", f"{CD_WORKFLOW}:{line}",
                f"cd.yml runs them for {', '.join(self.cd.order)}; express them as a hook "
                "of those members after verify:\n"
                + _hook_snippet("post-deploy-tests", "verify", [argv])))
        if self.cd.chartpress_line is not None:
            self.unmapped.append(Unmapped(
                "image builds with chartpress", f"{CD_WORKFLOW}:{self.cd.chartpress_line}",
                "chartpress builds the images and writes their tags into mybinder/values.yaml; "
                "keep that step in the workflow before `federation-deploy deploy`"))

    # -- the whole -----------------------------------------------------------------------------

    def adopt(self) -> Adoption:
        names = self.member_names()
        document: dict[str, Any] = {}
        if (self.root / "terraform").is_dir():
            document["terraform"] = {"version": self.terraform_version(), "root": "terraform"}
        if (self.root / STAND_IN).is_file():
            document["secrets"] = {"stand_in": STAND_IN}
        if self.cd.order:
            document["ci"] = {"order": list(self.cd.order)}
        else:
            self.notes.append(f"no CD order read ({CD_WORKFLOW} missing or without a "
                              "federation_member matrix): ci.order left out")
        redirectors = self.redirectors(names)
        hosts: dict[str, Any] = {}
        if redirectors:
            member, block = redirectors[0]
            document["redirector"] = self.redirector_section(member, block)
            hosts = dict(block["hosts"])
            for other, other_block in redirectors[1:]:
                self.notes.append(
                    f"{other} runs a redirector of its own ({other_block.get('host')}, hosts: "
                    f"{', '.join(other_block['hosts'])}); it stays in its values files")
        else:
            self.unmapped.append(Unmapped(
                "the federation redirector", "config/*.yaml",
                "no member's values enable federationRedirect with hosts: add redirector: "
                "{host, member, release} by hand"))
        certmanager = self.cert_manager_release()
        umbrella = self.umbrella_chart()
        members: dict[str, Any] = {}
        for name in names:
            members[name] = self.member_entry(name, hosts, certmanager, umbrella)
        for name, host in hosts.items():
            if name not in members and isinstance(host, Mapping):
                members[name] = {"url": host.get("url"), "cloud": "external",
                                 "prime": bool(host.get("prime")),
                                 "weight": host.get("weight", 0)}
        document["members"] = members
        self.steps_not_mapped(names)
        locked = [str(p.relative_to(self.root)) for p in sorted((self.root / "secrets").rglob("*"))
                  if p.is_file() and is_git_crypt_locked(p)]
        if locked:
            self.notes.append(f"{len(locked)} file(s) under secrets/ are git-crypt-locked "
                              f"({', '.join(locked[:3])}{', ...' if len(locked) > 3 else ''}): "
                              "deploys need `git-crypt unlock`; checks can use "
                              "--without-secrets")
        return Adoption(to_plain(document), tuple(self.unmapped), tuple(self.notes))

    def member_entry(self, name: str, hosts: Mapping[str, Any],
                     certmanager: dict[str, Any] | None, umbrella: str) -> dict[str, Any]:
        values = self.plain_values(name)
        host = hosts.get(name) if isinstance(hosts.get(name), Mapping) else None
        url = host.get("url") if host else None
        if url is None:
            ingress = ((values.get("binderhub") or {}).get("ingress") or {}).get("hosts") or []
            url = f"https://{ingress[0]}" if ingress else None
        if url is None:
            self.unmapped.append(Unmapped(f"member {name}: its URL", f"config/{name}.yaml",
                                          f"set members.{name}.url (health and versions "
                                          "are checked under it)"))
        cloud, cluster = self.cloud_of(name)
        entry: dict[str, Any] = {}
        if url:
            entry["url"] = url
        if cloud:
            entry["cloud"] = cloud
        if host:
            entry["prime"] = bool(host.get("prime"))
            entry["weight"] = host.get("weight", 0)
        else:
            entry["routed"] = False  # the redirector does not send launches here
        if cluster:
            entry["cluster"] = cluster
        release = self.cd.release_names.get(name, name)
        releases = self.system_releases(name, release)
        if certmanager is not None:
            releases.append(dict(certmanager))
        releases.append({"name": "mybinder", "release": release, "namespace": release,
                         "chart": umbrella, "values": self.values_list("config", name)})
        entry["releases"] = releases
        return entry

    def terraform_version(self) -> str:
        pins = set()
        for path in sorted((self.root / "terraform").rglob("*.tf")):
            match = re.search(r'required_version\s*=\s*"([^"]*)"', path.read_text("utf-8"))
            if match:
                pins.add(match[1].strip())
        exact = {p.lstrip("= ") for p in pins if re.fullmatch(r"=?\s*\d+\.\d+\.\d+", p)}
        if len(exact) == 1:
            return exact.pop()
        self.unmapped.append(Unmapped(
            "the terraform version", "terraform/",
            f"its stacks pin {', '.join(sorted(pins)) or 'no version'}, not one exact version: "
            f"federation.yaml pins {DEFAULT_TERRAFORM_VERSION}; set each stack's "
            "required_version to it (and link stacks with members.NAME.terraform.stack)"))
        return DEFAULT_TERRAFORM_VERSION


def adopt_repository(root: Path) -> Adoption:
    """Build federation.yaml for the deploy repository at root from its own files.

    deploy.py is parsed with ast, never run; secrets are never read (only tested for
    git-crypt's header). Raises UsageError when root is not such a repository.
    """
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    return _Reader(root).adopt()
