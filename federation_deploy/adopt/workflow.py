"""The CD workflow adopt writes for an adopted repository (its cd.yml is left as it is)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from federation_deploy.adopt.sources import CdWorkflow

WORKFLOW_FILE = ".github/workflows/federation-deploy.yml"
CD_FILE = ".github/workflows/cd.yml"
PYTHON_VERSION_FILE = ".python-version"
DEFAULT_PYTHON = "3.12"
DEFAULT_CONCURRENCY = "deploy"
# the actions the workflow uses, at the ref cd.yml uses them (a commit SHA there stays one),
# else at these; git-crypt's is the commit mybinder.org-deploy pins (same key, same secret)
DEFAULT_ACTIONS = {
    "actions/checkout": "v4",
    "actions/setup-python": "v5",
    "azure/setup-helm": "v4",
    "azure/setup-kubectl": "v4",
    "google-github-actions/setup-gcloud": "v2",
    "sliteteam/github-action-git-crypt-unlock": "f99c0c6b60bb7ec30dcec033a8f0a3b3d48f21e1",
    "docker/login-action": "v3",
    "aws-actions/configure-aws-credentials": "v4",
}
GIT_CRYPT_ACTION = ("sliteteam/github-action-git-crypt-unlock@"
                    + DEFAULT_ACTIONS["sliteteam/github-action-git-crypt-unlock"])
COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
# cd.yml's tool pins (its global env:), by the tool they pin
TOOL_ENV = {"helm": re.compile(r"^HELM_VERSION$"), "kubectl": re.compile(r"^KUBECTL_VERSION$"),
            "gcloud": re.compile(r"^GCLOUD_SDK_VER")}

HEADER = """\
# Written by `federation-deploy adopt`: CD of this repository with federation-deploy, beside
# cd.yml (left as it is; disable one of the two when switching). Members deploy in cd.yml's
# order with cd.yml's credentials: the git-crypt key (GIT_CRYPT_KEY: GKE keys and kubeconfigs
# under secrets/), the AWS OIDC role and region of its matrix; staging first, the others
# after it. On pull requests that touch what cd.yml deploys (its paths-ignore), `shadow`
# compares deploy.py's dry run with federation-deploy's plan for every member (no secrets,
# no cluster). Deploys share cd.yml's concurrency group, so the two never deploy at once.
"""


@dataclass
class Written:
    """The workflow's text and what adopt says about it."""

    text: str
    notes: list[str] = field(default_factory=list)


class _Builder:
    def __init__(self, repo: Path, cd: CdWorkflow, package: str) -> None:
        self.repo, self.cd, self.package = repo, cd, package
        self.unpinned: set[str] = set()
        self.env = {name: value for name, value in cd.env.items()
                    if any(p.match(name) for p in TOOL_ENV.values())}

    def uses(self, action: str) -> str:
        ref = self.cd.actions.get(action, DEFAULT_ACTIONS[action])
        if not COMMIT_SHA.match(ref):
            self.unpinned.add(action)
        return f"{action}@{ref}"

    def version_of(self, tool: str) -> dict[str, str]:
        name = next((n for n in self.env if TOOL_ENV[tool].match(n)), None)
        return {"version": f"${{{{ env.{name} }}}}"} if name else {}

    def python(self) -> dict[str, Any]:
        if (self.repo / PYTHON_VERSION_FILE).is_file():
            return {"python-version-file": PYTHON_VERSION_FILE}
        return {"python-version": self.cd.python_version or DEFAULT_PYTHON}

    def setup(self, history: bool) -> list[dict[str, Any]]:
        checkout: dict[str, Any] = {"persist-credentials": False}
        if history:
            checkout["fetch-depth"] = 0  # chartpress tags images from the git history
        install = f"pip install {self.package}"
        if (self.repo / "requirements.txt").is_file():
            # chartpress (image builds) and the post-deploy tests' pytest come from here
            install += " -r requirements.txt"
        return [{"uses": self.uses("actions/checkout"), "with": checkout},
                {"uses": self.uses("actions/setup-python"), "with": self.python()},
                {"name": "Install federation-deploy", "run": install}]

    def tools(self, gcp: bool) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = []
        for action, tool in (("azure/setup-helm", "helm"), ("azure/setup-kubectl", "kubectl")):
            step: dict[str, Any] = {"uses": self.uses(action)}
            if self.version_of(tool):
                step["with"] = self.version_of(tool)
            steps.append(step)
        if gcp:
            steps.append({"uses": self.uses("google-github-actions/setup-gcloud"),
                          "with": {**self.version_of("gcloud"),
                                   "install_components": "gke-gcloud-auth-plugin"}})
        return steps


def _kept(step: dict[str, Any]) -> dict[str, Any]:
    """A cd.yml step as it stands, its matrix.federation_member now matrix.member."""
    text = json.dumps(step).replace("matrix.federation_member", "matrix.member")
    kept: dict[str, Any] = json.loads(text)
    return kept


def _paths_ignore(cd: CdWorkflow) -> list[str]:
    """cd.yml's paths-ignore, with its own file's exception made for this workflow."""
    return [p.replace(CD_FILE, WORKFLOW_FILE) for p in cd.paths_ignore]


def cd_workflow(repo: Path, document: Mapping[str, Any], cd: CdWorkflow,
                aws_roles: Mapping[str, str], chartpress: bool, package: str) -> Written:
    """The workflow: a shadow job on pull requests, a staging job and a members job (needs:
    staging) on pushes to main, members in cd.yml's order (those of ci.manual left out)."""
    members = document.get("members", {})
    manual = set(document.get("ci", {}).get("manual") or [])
    deployable = [m for m in cd.order if m in members and members[m].get("cloud") != "external"]
    deployable += [m for m, e in members.items()
                   if m not in deployable and e.get("cloud") != "external"]
    deployable = [m for m in deployable if m not in manual]
    staging = [m for m in (document.get("ci", {}).get("staging") or []) if m in deployable]
    others = [m for m in deployable if m not in staging]
    gcp = any(members[m].get("cloud") == "gcp" for m in deployable)
    member = "${{ matrix.member }}"
    build = _Builder(repo, cd, package)
    written = Written("")

    def entry(name: str) -> dict[str, Any]:
        row: dict[str, Any] = {"member": name}
        if name in aws_roles:
            row["aws_role"] = aws_roles[name]
            row["aws_region"] = members[name].get("cluster", {}).get("region", "")
        return row

    def deploy_job(names: Sequence[str], first: bool, push_images: bool) -> dict[str, Any]:
        steps = [*build.setup(chartpress), *build.tools(gcp)]
        steps.append({"name": "Unlock git-crypt secrets",
                      "uses": build.uses("sliteteam/github-action-git-crypt-unlock"),
                      "env": {"GIT_CRYPT_KEY": "${{ secrets.GIT_CRYPT_KEY }}"}})
        if any(n in aws_roles for n in names):
            steps.append({"name": "AWS credentials (OIDC role of cd.yml)",
                          "if": "matrix.aws_role != ''",
                          "uses": build.uses("aws-actions/configure-aws-credentials"),
                          "with": {"role-to-assume": "${{ matrix.aws_role }}",
                                   "aws-region": "${{ matrix.aws_region }}"}})
        if chartpress:
            if push_images:
                steps.append({"name": "Log in to Docker",
                              "uses": build.uses("docker/login-action"),
                              "with": {"username": "${{ secrets.DOCKER_USERNAME }}",
                                       "password": "${{ secrets.DOCKER_PASSWORD }}"}})
                steps.append({"name": "Image tags (chartpress, builds and pushes)",
                              "run": "chartpress --push"})
            else:  # as cd.yml: the images staging's job pushed, only their tags written
                steps.append({"name": "Image tags (chartpress)",
                              "run": "chartpress --skip-build"})
        own = [(after, step) for is_first, after, step, _ in cd.other_steps if is_first == first]
        steps += [_kept(step) for after, step in own if not after]
        steps.append({"name": "Deploy",
                      "run": 'federation-deploy --config-dir . deploy "$MEMBER" --yes',
                      "env": {"MEMBER": member}})
        steps += [_kept(step) for after, step in own if after]
        return {
            "if": "github.event_name == 'push' && github.ref == 'refs/heads/main'",
            "runs-on": "ubuntu-24.04",
            "permissions": {"contents": "read", "id-token": "write"},
            "strategy": {"fail-fast": False, "matrix": {"include": [entry(n) for n in names]}},
            "steps": steps,
        }

    jobs: dict[str, Any] = {
        "shadow": {
            "if": "github.event_name == 'pull_request'",
            "runs-on": "ubuntu-24.04",
            "strategy": {"fail-fast": False, "matrix": {"member": deployable}},
            "steps": [*build.setup(False), *build.tools(False)[:1], {
                "name": "Compare deploy.py's dry run with federation-deploy's plan",
                "run": 'federation-deploy --config-dir . shadow "$MEMBER" --yes '
                       "--without-secrets",
                "env": {"MEMBER": member}}],
        },
    }
    if staging:
        jobs["staging"] = deploy_job(staging, True, True)
    if others:
        jobs["members"] = deploy_job(others, not staging, not staging)
        if staging:
            jobs["members"]["needs"] = "staging"
    ignore = _paths_ignore(cd)
    push: dict[str, Any] = {"branches": ["main"]}
    pull: dict[str, Any] = {}
    if ignore:
        # two lists: one list in both places would be written as a YAML anchor and alias
        push["paths-ignore"], pull["paths-ignore"] = ignore, list(ignore)
    group = cd.concurrency or DEFAULT_CONCURRENCY
    workflow: dict[str, Any] = {
        "name": "federation-deploy",
        "on": {"push": push, "pull_request": pull, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        # deploys in cd.yml's group (one deploy at a time, whichever workflow); the pull
        # requests' shadow runs in a group of their own, never queued behind a deploy
        "concurrency": {
            "group": "${{ github.event_name == 'pull_request' && "
                     f"format('shadow-{{0}}', github.ref) || '{group}' }}}}",
            "cancel-in-progress": False},
    }
    if build.env:
        workflow["env"] = dict(build.env)
    workflow["jobs"] = jobs
    text: str = yaml.safe_dump(workflow, sort_keys=False, width=100)
    header = HEADER
    if cd.concurrency is None:
        header += (f"# cd.yml has no concurrency group: deploys here use `{group}`; give cd.yml "
                   "the same one.\n")
    if build.env:
        header += ("# Tool versions as cd.yml pins them: "
                   + ", ".join(f"{k}={v}" for k, v in build.env.items()) + ".\n")
    missing = [t for t in ("helm", "kubectl") if not build.version_of(t)]
    if missing:
        header += f"# cd.yml pins no version of {', '.join(missing)}: the actions' latest.\n"
    if build.unpinned:
        header += ("# Not pinned by commit SHA (cd.yml does not pin them either): "
                   + ", ".join(sorted(build.unpinned)) + ".\n")
    if not (repo / PYTHON_VERSION_FILE).is_file():
        header += (f"# No {PYTHON_VERSION_FILE}: Python "
                   f"{cd.python_version or DEFAULT_PYTHON}"
                   + (" (cd.yml's)" if cd.python_version else "") + ".\n")
    for first, _after, step, line in cd.other_steps:
        what = step.get("name") or step.get("uses") or "a step"
        job = "staging" if first and staging else "members"
        written.notes.append(f"{CD_FILE}:{line}: step {what!r} has no federation-deploy "
                             f"equivalent: kept as it is in the {job} job of {WORKFLOW_FILE}")
    written.text = header + text
    return written
