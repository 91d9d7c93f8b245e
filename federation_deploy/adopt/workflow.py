"""The CD workflow adopt writes for an adopted repository (its cd.yml is left as it is)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

WORKFLOW_FILE = ".github/workflows/federation-deploy.yml"
# the action cd.yml unlocks git-crypt with in mybinder.org-deploy (same key, same secret)
GIT_CRYPT_ACTION = ("sliteteam/github-action-git-crypt-unlock"
                    "@f99c0c6b60bb7ec30dcec033a8f0a3b3d48f21e1")

HEADER = """\
# Written by `federation-deploy adopt`: CD of this repository with federation-deploy, beside
# cd.yml (left as it is; disable one of the two when switching). Members deploy in cd.yml's
# order with cd.yml's credentials: the git-crypt key (GIT_CRYPT_KEY: GKE keys and kubeconfigs
# under secrets/), the AWS OIDC role and region of its matrix; staging first, the others
# after it. On pull requests, `shadow` compares deploy.py's dry run with federation-deploy's
# plan for every member (no secrets, no cluster).
"""


def _setup(package: str, repo: Path) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [
        {"uses": "actions/checkout@v4", "with": {"persist-credentials": False}},
        {"uses": "actions/setup-python@v5", "with": {"python-version": "3.12"}},
    ]
    install = f"pip install {package}"
    if (repo / "requirements.txt").is_file():
        # chartpress (image builds) and the post-deploy tests' pytest come from here
        install += " -r requirements.txt"
    steps.append({"name": "Install federation-deploy", "run": install})
    return steps


def _unlock() -> dict[str, Any]:
    return {"name": "Unlock git-crypt secrets", "uses": GIT_CRYPT_ACTION,
            "env": {"GIT_CRYPT_KEY": "${{ secrets.GIT_CRYPT_KEY }}"}}


def _deploy(job_member: str) -> dict[str, Any]:
    return {"name": "Deploy", "run": 'federation-deploy --config-dir . deploy "$MEMBER" --yes',
            "env": {"MEMBER": job_member}}


def _tools(gcp: bool) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = [{"uses": "azure/setup-helm@v4"},
                                   {"uses": "azure/setup-kubectl@v4"}]
    if gcp:
        steps.append({"uses": "google-github-actions/setup-gcloud@v2",
                      "with": {"install_components": "gke-gcloud-auth-plugin"}})
    return steps


def cd_workflow(repo: Path, document: Mapping[str, Any], order: Sequence[str],
                aws_roles: Mapping[str, str], chartpress: bool, package: str) -> str:
    """The workflow's text: a shadow job on pull requests, a staging job and a members job
    (needs: staging) on pushes to main, members in cd.yml's order."""
    members = document.get("members", {})
    deployable = [m for m in order if m in members and members[m].get("cloud") != "external"]
    deployable += [m for m, e in members.items()
                   if m not in deployable and e.get("cloud") != "external"]
    staging = [m for m in (document.get("ci", {}).get("staging") or []) if m in deployable]
    others = [m for m in deployable if m not in staging]
    gcp = any(members[m].get("cloud") == "gcp" for m in deployable)
    member = "${{ matrix.member }}"

    def entry(name: str) -> dict[str, Any]:
        row: dict[str, Any] = {"member": name}
        if name in aws_roles:
            row["aws_role"] = aws_roles[name]
            row["aws_region"] = members[name].get("cluster", {}).get("region", "")
        return row

    def deploy_job(names: Sequence[str], push_images: bool) -> dict[str, Any]:
        steps = [*_setup(package, repo), *_tools(gcp), _unlock()]
        if any(n in aws_roles for n in names):
            steps.append({"name": "AWS credentials (OIDC role of cd.yml)",
                          "if": "matrix.aws_role != ''",
                          "uses": "aws-actions/configure-aws-credentials@v4",
                          "with": {"role-to-assume": "${{ matrix.aws_role }}",
                                   "aws-region": "${{ matrix.aws_region }}"}})
        if chartpress:
            if push_images:
                steps.append({"name": "Log in to Docker", "uses": "docker/login-action@v3",
                              "with": {"username": "${{ secrets.DOCKER_USERNAME }}",
                                       "password": "${{ secrets.DOCKER_PASSWORD }}"}})
            steps.append({"name": "Image tags (chartpress" + (", builds and pushes" if push_images
                                                             else "") + ")",
                          "run": "chartpress --push" if push_images else "chartpress"})
        steps.append(_deploy(member))
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
            "steps": [*_setup(package, repo), {"uses": "azure/setup-helm@v4"}, {
                "name": "Compare deploy.py's dry run with federation-deploy's plan",
                "run": 'federation-deploy --config-dir . shadow "$MEMBER" --yes '
                       "--without-secrets",
                "env": {"MEMBER": member}}],
        },
    }
    if staging:
        jobs["staging"] = deploy_job(staging, True)
    if others:
        jobs["members"] = deploy_job(others, not staging)
        if staging:
            jobs["members"]["needs"] = "staging"
    workflow = {
        "name": "federation-deploy",
        "on": {"push": {"branches": ["main"]}, "pull_request": {}, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "concurrency": {"group": "federation-deploy-${{ github.ref }}",
                        "cancel-in-progress": False},
        "jobs": jobs,
    }
    text: str = yaml.safe_dump(workflow, sort_keys=False, width=100)
    return HEADER + text
