"""Build federation.yaml from a deploy repository in mybinder.org-deploy's layout (never run)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from federation_deploy.adopt.chart_pins import shared_chart_pins
from federation_deploy.adopt.redirector import choose_redirector, redirector_section
from federation_deploy.adopt.sources import (
    CdWorkflow,
    Unmapped,
    coalesce_values,
    load_plain_yaml,
    merge_values,
    read_cd_workflow,
    read_deploy_script,
    read_env_file,
    string_constants,
)
from federation_deploy.adopt.steps import (
    Target,
    calls_in_order,
    commands_run,
    env_names,
    helm_words,
)
from federation_deploy.adopt.terraform_stacks import (
    Stack,
    stack_backend_region,
    stack_for,
    stacks,
    terraform_section,
)
from federation_deploy.config.advice import has_unlocked_dependencies, leftover_redirector_hosts
from federation_deploy.config.gitcrypt import GIT_CRYPT_MAGIC, is_git_crypt_locked
from federation_deploy.errors import UsageError
from federation_deploy.yamlio import to_plain

__all__ = ["GIT_CRYPT_MAGIC", "Adoption", "Unmapped", "adopt_repository",
           "is_git_crypt_locked", "shared_chart_pins"]

DEPLOY_SCRIPT = "deploy.py"
CD_WORKFLOW = ".github/workflows/cd.yml"
STAND_IN = "config/test-secrets.yaml"
HOST_NAME = "__redirector_host"  # the redirector's name of a host adopted under a member's
# deploy.py's main() tries the tables in this order, so a member in two tables gets the first
CLOUD_ORDER = (("KUBECONFIG_CLUSTERS", "kubeconfig"), ("AZURE_RGs", "azure"),
               ("GCP_PROJECTS", "gcp"), ("AWS_DEPLOYMENTS", "aws"))
# deploy.py steps adopt maps itself (auth -> cloud, rollout wait -> our rollout stage, ...)
MAPPED_STEPS = {"main", "check_call", "check_output", "run", "get_config_files", "deploy",
                "setup_certmanager", "deploy_system_charts", "wait_for_deployments_daemonsets",
                "wait_for_rollout",
                "setup_auth_kubeconfig", "setup_auth_gcloud", "setup_auth_aws",
                "setup_auth_azure"}
# deploy.py steps that are not helm releases: the hook adopt suggests for each
KNOWN_HOOKS = {"update_networkbans": "network-bans", "patch_coredns": "coredns-resources"}


@dataclass(frozen=True)
class Adoption:
    """federation.yaml as plain data, what could not be mapped, and what adopt noticed."""

    document: dict[str, Any]
    unmapped: tuple[Unmapped, ...]
    notes: tuple[str, ...] = ()
    cd_order: tuple[str, ...] = ()  # cd.yml's deploy order, for the workflow adopt writes
    aws_roles: Mapping[str, str] = field(default_factory=dict)  # member -> OIDC role (cd.yml)
    cd: CdWorkflow = field(default_factory=CdWorkflow)  # what was read of cd.yml

    @property
    def blocking(self) -> tuple[Unmapped, ...]:
        return tuple(u for u in self.unmapped if u.blocking)


# --------------------------------------------------------------------------------------------
# the document


class _Reader:
    """One adoption: the repository's files read once, the document built from them."""

    def __init__(self, root: Path, redirector_member: str | None = None) -> None:
        self.root = root
        self.redirector_member = redirector_member
        self.unmapped: list[Unmapped] = []
        self.notes: list[str] = []
        self.manual: list[str] = []  # members deploy.py knows and cd.yml does not deploy
        if not (root / DEPLOY_SCRIPT).is_file():
            raise UsageError(f"{root}: no {DEPLOY_SCRIPT}: adopt reads a deploy repository in "
                             "mybinder.org-deploy's layout (deploy.py, config/, mybinder/)")
        self.script = read_deploy_script(root / DEPLOY_SCRIPT, DEPLOY_SCRIPT)
        self.unmapped += self.script.problems
        cd_path = root / CD_WORKFLOW
        self.cd = read_cd_workflow(cd_path, CD_WORKFLOW) if cd_path.is_file() else CdWorkflow()
        self.chart_values = self._values_of("mybinder/values.yaml")
        self.stacks: list[Stack] = []

    # -- helpers -----------------------------------------------------------------------------

    def _values_of(self, relative: str) -> dict[str, Any]:
        path = self.root / relative
        if not path.is_file():
            return {}
        data = load_plain_yaml(path, relative)
        return dict(data) if isinstance(data, Mapping) else {}

    def _glob(self, pattern: str) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern))

    def plain_values(self, member: str) -> dict[str, Any]:
        """The plain (never secret) layers of a member over the chart's defaults."""
        merged: Any = {}
        for relative in [*self._glob("config/common/*.yaml"), f"config/{member}.yaml"]:
            merged = merge_values(merged, self._values_of(relative))
        return dict(coalesce_values(self.chart_values or {}, merged))

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
                    "member localhost (a developer's own cluster)",
                    self.table_where("KUBECONFIG_CLUSTERS"),
                    "deploy.py sets its hosts from --local-ip at run time; not adopted. Add a "
                    "member with cloud: kubeconfig and its own values file if you need one"))
                continue
            table = next(t for t, _ in CLOUD_ORDER if name in self.table(t))
            if (self.root / "config" / f"{name}.yaml").is_file():
                names.append(name)
                if self.cd.order:
                    self.manual.append(name)  # deploy.py knows it, cd.yml does not deploy it
                    self.notes.append(
                        f"member {name} ({table}, config/{name}.yaml) is not deployed by "
                        f"{CD_WORKFLOW}: adopted under ci.manual, so ci-matrix and the "
                        f"workflow leave it out (`deploy {name}` by hand still works)")
            else:
                self.unmapped.append(Unmapped(
                    f"member {name} of {table}", self.table_where(table),
                    f"it has no config/{name}.yaml and cd.yml does not deploy it: not adopted "
                    "(a member that was retired?)"))
        return names

    def target(self, name: str) -> Target:
        return Target(name, self.cd.cluster_names.get(name, name), self.script.tables)

    def auth_function(self, name: str) -> str | None:
        """The setup_auth_* function deploy.py's main() calls for member name."""
        return next((f for f in calls_in_order(self.script, "main", self.target(name))
                     if f.startswith("setup_auth")), None)

    def cloud_of(self, name: str) -> tuple[str | None, dict[str, Any]]:
        auth = self.auth_function(name)
        table = next((t for t, _ in CLOUD_ORDER if name in self.table(t)), None)
        if auth is None and table is not None:
            # main() authenticates inline (no setup_auth_* function): the table says how
            cloud = dict(CLOUD_ORDER)[table]
            where = self.table_where(table)
            if cloud == "kubeconfig":
                return cloud, {"kubeconfig": f"{name}-kubeconfig.yaml"}  # under secrets/
            if cloud == "gcp":
                return cloud, self.gcp_cluster(name, where)
            if cloud == "aws":
                return cloud, self.aws_cluster(name, where)
        if auth is None:
            self.blocking(f"member {name}: how deploy.py reaches its cluster",
                          self.script.where(self.script.functions["main"].lineno)
                          if "main" in self.script.functions else DEPLOY_SCRIPT,
                          f"no setup_auth_* step of main() applies to it: set members.{name}"
                          ".cloud and members.{name}.cluster")
            return None, {}
        function = self.script.functions[auth]
        where = self.script.where(function.lineno)
        argvs = commands_run(function, self.target(name))
        tools = {argv[0] for argv in argvs}
        texts = list(string_constants(function))
        if "gcloud" in tools:
            return "gcp", self.gcp_cluster(name, where)
        if "aws" in tools:
            return "aws", self.aws_cluster(name, where)
        if "az" in tools:
            self.blocking(f"member {name} on Azure (AKS)", where,
                          "federation-deploy has no azure cloud: export a kubeconfig to "
                          f"secrets/{name}-kubeconfig.yaml and set members.{name}.cloud: "
                          f"kubeconfig, cluster: {{kubeconfig: {name}-kubeconfig.yaml}}")
            return None, {}
        kubeconfig = next((t for t in texts if "kubeconfig" in t
                           and re.search(r"\.ya?ml$", t)), None)
        if kubeconfig is not None:
            cluster = {"kubeconfig": kubeconfig.replace("{member}", name).rsplit("/", 1)[-1]}
            context = next((a[3] for a in argvs if a[:3] == ["kubectl", "config", "use-context"]
                            and len(a) > 3), None)
            if context:
                cluster["context"] = context
            return "kubeconfig", cluster  # under secrets/
        self.blocking(f"member {name}: what {auth}() does", where,
                      f"adopt does not recognise it: set members.{name}.cloud and cluster")
        return None, {}

    def gcp_cluster(self, name: str, where: str) -> dict[str, Any]:
        cluster = {"project": self.table("GCP_PROJECTS").get(name),
                   "location": self.table("GCP_ZONES").get(name),
                   "name": self.cd.cluster_names.get(name, name)}
        key_file = self.gcloud_key_file(name)
        if key_file is not None:
            cluster["key_file"] = key_file
        for key, table in (("project", "GCP_PROJECTS"), ("location", "GCP_ZONES")):
            if cluster[key] is None:
                self.blocking(f"member {name}: no entry in {table}", self.table_where(table)
                              if table in self.script.tables else where,
                              f"set members.{name}.cluster.{key}")
                del cluster[key]
        return cluster

    def aws_cluster(self, name: str, where: str) -> dict[str, Any]:
        cluster: dict[str, Any] = {"name": self.table("AWS_DEPLOYMENTS").get(name, name)}
        region = self.cd.aws_regions.get(name)
        if region is None:
            stack = self.stack_of(name)
            backend = stack_backend_region(self.root / "terraform" / stack) if stack else None
            if backend is not None:
                region = backend
                self.notes.append(f"member {name}: region {region} from the s3 backend of "
                                  f"terraform/{stack}")
        if region is None:
            self.blocking(f"member {name}: the region of its EKS cluster", where,
                          "deploy.py takes it from the AWS profile, cd.yml's matrix entry has "
                          f"no aws_region and no stack says it: set members.{name}.cluster."
                          "region")
        else:
            cluster["region"] = region
        return cluster

    def blocking(self, what: str, where: str, how: str) -> None:
        """Something validate would refuse unless a person says it: adopt exits 2."""
        self.unmapped.append(Unmapped(what, where, how, blocking=True))

    def gcloud_key_file(self, name: str) -> str | None:
        """deploy.py's `gcloud auth activate-service-account --key-file=...` for member name
        (its placeholder, the release, is the member's name there)."""
        function = self.script.functions.get("setup_auth_gcloud")
        texts = list(string_constants(function)) if function is not None else []
        key = next((t.split("=", 1)[1] for t in texts if t.startswith("--key-file=")), None)
        return None if key is None else re.sub(r"\{[^{}]*\}", name, key)

    # -- redirector --------------------------------------------------------------------------

    def redirectors(self, names: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """Every member whose plain values enable federationRedirect with hosts (the
        federation's is chosen among them by adopt.redirector.choose_redirector)."""
        found = []
        for name in names:
            block = self.plain_values(name).get("federationRedirect")
            if isinstance(block, Mapping) and block.get("enabled") and block.get("hosts"):
                found.append((name, dict(block)))
        return found

    def redirector_leftovers(self, member: str) -> None:
        """The advice validate repeats: the hosts (and weights) in the redirector member's
        plain values files are now generated from federation.yaml."""
        for relative in [*self._glob("config/common/*.yaml"), f"config/{member}.yaml"]:
            if (self.root / relative).is_file():
                data = load_plain_yaml(self.root / relative, relative)
                self.notes += leftover_redirector_hosts(relative, data)

    # -- releases ----------------------------------------------------------------------------

    def values_list(self, config_dir: str, member: str) -> list[Any]:
        """deploy.py's get_config_files() order: common, common secrets, member, member
        secrets; globs for the common files, {member} for the member's."""
        # every glob deploy.py uses stays, optional: the network-ban hooks write
        # config/common/datacenter-*.yaml and secrets/config/common/bans.yaml (git-ignored)
        # at deploy time, so an empty or absent directory today says nothing about the deploy
        entries: list[Any] = [
            {"path": f"{config_dir}/common/*.yaml", "optional": True},
            {"path": f"secrets/{config_dir}/common/*.yaml", "secret": True, "optional": True},
        ]
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
        charts = [text for text in string_constants(function)
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
        """setup_certmanager's helm upgrade: an oci:// chart, or `--repo=URL NAME`; its
        version from the environment variable it reads (cert-manager.env, else cd.yml's
        env:), its CRDs from the URL it applies."""
        function = self.script.functions.get("setup_certmanager")
        if function is None:
            return None
        where = self.script.where(function.lineno)
        texts = list(string_constants(function))
        helm = next((a for a in commands_run(function, Target("cert-manager", "cert-manager",
                                                               self.script.tables))
                     if a[:1] == ["helm"]), None)
        options, words = helm_words(helm) if helm else ({}, [])
        chart = words[-1] if words else None
        repo = options["--repo"][-1] if options.get("--repo") else None
        env = {**self.cd.env, **read_env_file(self.root / "cert-manager.env")}
        names = [n for n in env_names(function) if n in env]
        version = env[names[0]] if names else None
        if chart is None or "{" in chart or version is None:
            self.unmapped.append(Unmapped(
                "cert-manager", where,
                "could not read its chart or version (cert-manager.env or cd.yml's env:): add "
                "a release {name: cert-manager, chart: ..., version: ..., namespace: "
                "cert-manager, crds: URL} before mybinder"))
            return None
        release: dict[str, Any] = {
            "name": "cert-manager", "chart": chart, "version": version,
            "namespace": (options.get("--namespace") or ["cert-manager"])[-1]}
        if repo:
            release["repo"] = repo
        crds = next((t for t in texts if t.endswith(".crds.yaml")), None)
        if crds:
            release["crds"] = re.sub(r"\{[a-z_]*version[a-z_]*\}", version, crds)
        values = [*options.get("--values", []), *options.get("-f", [])]
        if values:
            release["values"] = values
        return release

    def umbrella_chart(self) -> str:
        function = self.script.functions.get("deploy")
        texts = list(string_constants(function)) if function else []
        for text in [*texts, "mybinder"]:
            if re.fullmatch(r"[\w.-]+", text) and (self.root / text / "Chart.yaml").is_file():
                return f"./{text}"
        raise UsageError(f"{self.root}: no umbrella chart (a directory with Chart.yaml, "
                         "mybinder/ in mybinder.org-deploy) that deploy.py deploys")

    # -- what is left ------------------------------------------------------------------------

    def member_hooks(self, name: str) -> list[dict[str, Any]]:
        """deploy.py's steps that are not helm releases, for member name, in its order, as
        hooks: network bans and the CoreDNS patch after auth (deploy.py runs them before any
        chart), cd.yml's post-deploy tests after verify."""
        hooks: list[dict[str, Any]] = []
        target = self.target(name)
        for function in calls_in_order(self.script, "main", target):
            if function not in KNOWN_HOOKS:
                continue
            argvs = commands_run(self.script.functions[function], target)
            base = KNOWN_HOOKS[function]
            for i, argv in enumerate(argvs, 1):
                hooks.append({"name": base if len(argvs) == 1 else f"{base}-{i}",
                              "after": "auth", "argv": argv})
        if self.cd.tests is not None and name in self.cd.order:
            argv, _line = self.cd.tests
            if argv[:1] == ["pytest"]:
                # hooks run with federation-deploy's environment (its PATH): name the
                # interpreter, as deploy.py named python for its scripts
                argv = ["python3", "-m", *argv]
            hook: dict[str, Any] = {"name": "post-deploy-tests", "after": "verify",
                                    "argv": argv}
            # cd.yml's retry action around them
            if self.cd.tests_attempts is not None and self.cd.tests_attempts > 1:
                hook["attempts"] = self.cd.tests_attempts
            if self.cd.tests_timeout is not None:
                hook["timeout"] = int(self.cd.tests_timeout) \
                    if self.cd.tests_timeout.is_integer() else self.cd.tests_timeout
            hooks.append(hook)
        return hooks

    def steps_not_mapped(self, members: Sequence[str]) -> None:
        seen: list[str] = []
        for member in members:
            seen += [f for f in calls_in_order(self.script, "main", self.target(member))
                     if f not in seen]
        for name in seen:
            if name in KNOWN_HOOKS or name in MAPPED_STEPS or name.startswith("setup_auth"):
                continue
            function = self.script.functions[name]
            self.unmapped.append(Unmapped(
                f"deploy.py step {name}()", self.script.where(function.lineno),
                "adopt does not know this step: express it as a member hook "
                "(hooks: [{name, after: auth|releases|rollout|verify, argv: [...]}])"))
        if self.cd.chartpress_line is not None:
            self.unmapped.append(Unmapped(
                "image builds with chartpress", f"{CD_WORKFLOW}:{self.cd.chartpress_line}",
                "chartpress builds the images and writes their tags into mybinder/values.yaml; "
                "it stays in the workflow, before `federation-deploy deploy` (the workflow "
                "adopt writes runs it in the staging job)"))

    # -- the whole -----------------------------------------------------------------------------

    def adopt(self) -> Adoption:
        names = self.member_names()
        document: dict[str, Any] = {}
        terraform = self.terraform_section()
        if terraform:
            document["terraform"] = terraform
        if (self.root / STAND_IN).is_file():
            document["secrets"] = {"stand_in": STAND_IN}
        if self.cd.order:
            document["ci"] = {"order": list(self.cd.order)}
            if self.cd.staging:  # cd.yml's first deploy job, which the others wait for
                document["ci"]["staging"] = list(self.cd.staging)
            if self.manual:
                document["ci"]["manual"] = list(self.manual)
        else:
            self.notes.append(f"no CD order read ({CD_WORKFLOW} missing or without a "
                              "federation_member matrix): ci.order left out")
        choice = choose_redirector(self.redirectors(names), self.cd.staging,
                                   self.redirector_member)
        hosts: dict[str, Any] | None = {}
        if choice.refused is not None:
            self.unmapped.append(choice.refused)
            hosts = None  # who is routed is not known: nothing said (validate asks)
        elif choice.chosen is not None:
            member, block = choice.chosen
            document["redirector"] = redirector_section(member, block)
            hosts = self.routed_hosts(names, block)
            self.redirector_leftovers(member)
            for other, other_block in choice.others:
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
            members[name] = self.member_entry(name, hosts, certmanager, umbrella,
                                              bool(terraform))
        for name, host in (hosts or {}).items():
            if name not in members:
                members[name] = {"url": host["url"], "cloud": "external",
                                 "prime": bool(host.get("prime")),
                                 "weight": host.get("weight", 0)}
        shared = shared_chart_pins(members)
        if shared:
            document["charts"] = shared
        document["members"] = members
        deployed = [n for n, m in members.items() if m.get("cloud") != "external"]
        if deployed:
            self.unmapped.append(Unmapped(
                "the members' Kubernetes versions", "deploy.py",
                "deploy.py never states them: set members.NAME.kubernetes_version (quoted, like "
                f"\"1.29\") for {', '.join(deployed)}; without it deploy --dry-run validates "
                "the manifests against the newest schemas kubernetes-validate knows, and deploy "
                "cannot warn when a cluster runs another version"))
        charts = dict.fromkeys(r["chart"] for m in members.values()
                               for r in m.get("releases", []) if r["chart"].startswith("./"))
        for chart in charts:
            if has_unlocked_dependencies(self.root / chart):
                self.notes.append(
                    f"chart directory {chart} has dependencies but no Chart.lock (git-ignored?): "
                    "deploy resolves their versions from Chart.yaml's ranges at every run, in a "
                    "private copy; commit one (`deploy --update-dependencies` writes it) to pin "
                    "them")
        self.steps_not_mapped(names)
        locked = [str(p.relative_to(self.root)) for p in sorted((self.root / "secrets").rglob("*"))
                  if p.is_file() and is_git_crypt_locked(p)]
        if locked:
            self.notes.append(f"{len(locked)} file(s) under secrets/ are git-crypt-locked "
                              f"({', '.join(locked[:3])}{', ...' if len(locked) > 3 else ''}): "
                              "deploys need `git-crypt unlock`; checks can use "
                              "--without-secrets")
        return Adoption(to_plain(document), tuple(self.unmapped), tuple(self.notes),
                        tuple(self.cd.order), dict(self.cd.aws_roles), self.cd)

    def routed_hosts(self, names: Sequence[str], block: Mapping[str, Any]) -> dict[str, Any]:
        """The redirector's hosts keyed by member: a host keyed by another name (mybinder's
        `gke` for prod until 2023) goes to the member serving its URL."""
        by_host: dict[str | None, str] = {}
        for name in names:
            for url in self.member_urls(name):
                by_host.setdefault(urlsplit(url).hostname, name)
        hosts: dict[str, Any] = {}
        for key, host in (block.get("hosts") or {}).items():
            if not isinstance(host, Mapping) or not host.get("url"):
                self.notes.append(f"redirector host {key} has no url: left out")
                continue
            member = key if key in names else by_host.get(urlsplit(host["url"]).hostname, key)
            hosts[member] = dict(host)
            if member != key:
                # the redirector ranks hosts by this name (rendezvous hashing) and labels its
                # metrics with it: renaming it would move repositories between members
                hosts[member][HOST_NAME] = str(key)
                self.notes.append(f"redirector host {key} ({host['url']}) is member {member}: "
                                  f"members.{member}.redirector_host keeps the name {key} "
                                  "(the redirector's hashing and metrics use it)")
        return hosts

    def member_urls(self, name: str) -> list[str]:
        ingress = ((self.plain_values(name).get("binderhub") or {}).get("ingress") or {})
        return [f"https://{h}" for h in ingress.get("hosts") or [] if isinstance(h, str)]

    def member_entry(self, name: str, hosts: Mapping[str, Any] | None,
                     certmanager: dict[str, Any] | None, umbrella: str,
                     terraform: bool) -> dict[str, Any]:
        """hosts: the redirector's, by member; None when which redirector is not known."""
        host = (hosts or {}).get(name)
        url = host.get("url") if host else None
        if url is None:
            url = next(iter(self.member_urls(name)), None)
        if url is None:
            self.blocking(f"member {name}: its URL", f"config/{name}.yaml",
                          f"set members.{name}.url (health and versions are checked under it)")
        cloud, cluster = self.cloud_of(name)
        entry: dict[str, Any] = {}
        if url:
            entry["url"] = url
        if cloud:
            entry["cloud"] = cloud
        if host:
            entry["prime"] = bool(host.get("prime"))
            entry["weight"] = host.get("weight", 0)
            if host.get(HOST_NAME):
                entry["redirector_host"] = host[HOST_NAME]
        elif hosts is not None:
            entry["routed"] = False  # the redirector does not send launches here
        if cluster:
            entry["cluster"] = cluster
        stack = self.stack_of(name, cloud)
        if stack and terraform:
            entry["terraform"] = {"stack": stack}
        release = self.cd.release_names.get(name, name)
        releases = self.system_releases(name, release)
        if certmanager is not None:
            releases.append(dict(certmanager))
        releases.append({"name": "mybinder", "release": release, "namespace": release,
                         "chart": umbrella, "values": self.values_list("config", name)})
        entry["releases"] = releases
        hooks = self.member_hooks(name)
        if hooks:
            entry["hooks"] = hooks
        return entry

    def stack_of(self, name: str, cloud: str | None = "aws") -> str | None:
        terraform = self.root / "terraform"
        if not terraform.is_dir():
            return None
        stack = stack_for(name, cloud, [s for s in self.stacks if s.linkable])
        return stack.path if stack else None

    def terraform_section(self) -> dict[str, Any]:
        """terraform: one exact version inside every stack's required_version range;
        stacks are linked to members by name (member_entry)."""
        terraform = self.root / "terraform"
        if not terraform.is_dir():
            return {}
        self.stacks = stacks(terraform)
        return terraform_section(terraform, self.stacks, self.unmapped, self.notes)


def adopt_repository(root: Path, redirector_member: str | None = None) -> Adoption:
    """Build federation.yaml for the deploy repository at root from its own files; the
    federation's redirector is redirector_member's federationRedirect values when given.

    deploy.py is parsed with ast, never run; secrets are never read (only tested for
    git-crypt's header). Raises UsageError when root is not such a repository.
    """
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    return _Reader(root, redirector_member).adopt()
