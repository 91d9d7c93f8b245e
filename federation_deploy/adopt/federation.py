"""Build federation.yaml from a deploy repository in mybinder.org-deploy's layout (never run)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from federation_deploy.adopt.sources import (
    CdWorkflow,
    Unmapped,
    argv_lists,
    called_from_main,
    guarding_tables,
    load_plain_yaml,
    merge_values,
    read_cd_workflow,
    read_deploy_script,
    read_env_file,
    string_constants,
)
from federation_deploy.config.advice import has_unlocked_dependencies, leftover_redirector_hosts
from federation_deploy.config.gitcrypt import GIT_CRYPT_MAGIC, is_git_crypt_locked
from federation_deploy.errors import UsageError
from federation_deploy.yamlio import to_plain

__all__ = ["GIT_CRYPT_MAGIC", "Adoption", "Unmapped", "adopt_repository",
           "is_git_crypt_locked"]

# the terraform pin written when the repository's stacks pin none exactly (ours, DESIGN 4)
DEFAULT_TERRAFORM_VERSION = "1.11.4"
DEPLOY_SCRIPT = "deploy.py"
CD_WORKFLOW = ".github/workflows/cd.yml"
STAND_IN = "config/test-secrets.yaml"
# deploy.py's main() tries the tables in this order, so a member in two tables gets the first
CLOUD_ORDER = (("KUBECONFIG_CLUSTERS", "kubeconfig"), ("AZURE_RGs", "azure"),
               ("GCP_PROJECTS", "gcp"), ("AWS_DEPLOYMENTS", "aws"))
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
class Adoption:
    """federation.yaml as plain data, what could not be mapped, and what adopt noticed."""

    document: dict[str, Any]
    unmapped: tuple[Unmapped, ...]
    notes: tuple[str, ...] = ()


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
        data = load_plain_yaml(path, relative)
        return dict(data) if isinstance(data, Mapping) else {}

    def _glob(self, pattern: str) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob(pattern))

    def plain_values(self, member: str) -> dict[str, Any]:
        """The plain (never secret) layers of a member over the chart's defaults."""
        merged: Any = self.chart_values
        for relative in [*self._glob("config/common/*.yaml"), f"config/{member}.yaml"]:
            merged = merge_values(merged, self._values_of(relative))
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
                return cloud, {"kubeconfig": f"{name}-kubeconfig.yaml"}  # under secrets/
            if cloud == "gcp":
                cluster = {"project": self.table("GCP_PROJECTS")[name],
                           "location": self.table("GCP_ZONES").get(name),
                           "name": self.cd.cluster_names.get(name, name)}
                key_file = self.gcloud_key_file(name)
                if key_file is not None:
                    cluster["key_file"] = key_file
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

    def gcloud_key_file(self, name: str) -> str | None:
        """deploy.py's `gcloud auth activate-service-account --key-file=...` for member name
        (its placeholder, the release, is the member's name there)."""
        function = self.script.functions.get("setup_auth_gcloud")
        texts = list(string_constants(function)) if function is not None else []
        key = next((t.split("=", 1)[1] for t in texts if t.startswith("--key-file=")), None)
        return None if key is None else re.sub(r"\{[^{}]*\}", name, key)

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
        function = self.script.functions.get("setup_certmanager")
        if function is None:
            return None
        texts = list(string_constants(function))
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
        texts = list(string_constants(function)) if function else []
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
            if argv[:1] == ["pytest"]:
                # hooks run with federation-deploy's environment (its PATH): name the
                # interpreter, as deploy.py named python for its scripts
                argv = ["python3", "-m", *argv]
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
            version = self.terraform_version()
            if version is not None:
                document["terraform"] = {"version": version, "root": "terraform"}
        if (self.root / STAND_IN).is_file():
            document["secrets"] = {"stand_in": STAND_IN}
        if self.cd.order:
            document["ci"] = {"order": list(self.cd.order)}
            if self.cd.staging:  # cd.yml's first deploy job, which the others wait for
                document["ci"]["staging"] = list(self.cd.staging)
        else:
            self.notes.append(f"no CD order read ({CD_WORKFLOW} missing or without a "
                              "federation_member matrix): ci.order left out")
        redirectors = self.redirectors(names)
        hosts: dict[str, Any] = {}
        if redirectors:
            member, block = redirectors[0]
            document["redirector"] = self.redirector_section(member, block)
            hosts = dict(block["hosts"])
            self.redirector_leftovers(member)
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
        shared = shared_chart_pins(members)
        if shared:
            document["charts"] = shared
        document["members"] = members
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

    def terraform_version(self) -> str | None:
        """The one exact version every stack pins; None (and said) otherwise: validate
        refuses a range, so federation.yaml then leaves `terraform:` out."""
        pins = set()
        for path in sorted((self.root / "terraform").rglob("*.tf")):
            match = re.search(r'required_version\s*=\s*"([^"]*)"', path.read_text("utf-8"))
            if match:
                pins.add(match[1].strip())
        exact = {p.lstrip("= ") for p in pins if re.fullmatch(r"=?\s*\d+\.\d+\.\d+", p)}
        if len(exact) == 1 and all(re.fullmatch(r"=?\s*\d+\.\d+\.\d+", p) for p in pins):
            return exact.pop()
        self.unmapped.append(Unmapped(
            "the terraform version", "terraform/",
            f"its stacks pin {', '.join(sorted(pins)) or 'no version'}, not one exact version, "
            "so federation.yaml leaves `terraform:` out (validate refuses ranges): pin each "
            f"stack's required_version exactly (e.g. \"{DEFAULT_TERRAFORM_VERSION}\"), add "
            f"terraform: {{version: {DEFAULT_TERRAFORM_VERSION}, root: terraform}} and link "
            "stacks with members.NAME.terraform.stack"))
        return None


def shared_chart_pins(members: Mapping[str, Any]) -> dict[str, Any]:
    """The `charts:` table: each chart that several releases use with the same chart, repo
    and version, pinned once; those releases (changed in place) name it instead. A chart
    only one release uses stays pinned on that release (a table of one says nothing)."""
    groups: dict[tuple[str, str | None, str], list[dict[str, Any]]] = {}
    for member in members.values():
        for release in member.get("releases", []):
            chart, version = release.get("chart"), release.get("version")
            if not isinstance(chart, str) or chart.startswith("./") or not version:
                continue  # a local directory's version is its Chart.yaml's
            groups.setdefault((chart, release.get("repo"), version), []).append(release)
    shared = {key: releases for key, releases in groups.items() if len(releases) > 1}
    # a chart a release still pins itself must not also be a table name: the loader would
    # resolve that release against the table
    taken = {key[0] for key in groups if key not in shared}
    table: dict[str, Any] = {}
    for (chart, repo, version), releases in shared.items():
        # the name releases already use (cert-manager), else the chart's own last segment
        names = {r["name"] for r in releases}
        base = names.pop() if len(names) == 1 else chart.rstrip("/").rsplit("/", 1)[-1]
        name, n = base, 2
        while name in table or name in taken:  # e.g. the same chart at two versions
            name, n = f"{base}-{n}", n + 1
        pin: dict[str, Any] = {}
        if chart != name:  # the table's key is the chart's name unless said otherwise
            pin["chart"] = chart
        if repo:
            pin["repo"] = repo
        pin["version"] = version
        table[name] = pin
        for release in releases:
            release.pop("repo", None)
            release.pop("version", None)
            release["chart"] = name
    return table


def adopt_repository(root: Path) -> Adoption:
    """Build federation.yaml for the deploy repository at root from its own files.

    deploy.py is parsed with ast, never run; secrets are never read (only tested for
    git-crypt's header). Raises UsageError when root is not such a repository.
    """
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory")
    return _Reader(root).adopt()
