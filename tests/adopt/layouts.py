"""Deploy repositories in the layouts mybinder.org-deploy has had since 2023, for the adopt tests.

Each is the mybinder-deploy fixture with a deploy.py, cd.yml, cert-manager pin and terraform/
of that period, written here in our own words: the tables and branches deploy.py read (GCP
tables, `cluster.startswith("ovh")`, KUBECONFIG_CLUSTERS, AWS_DEPLOYMENTS), how it installed
cert-manager (a helm repository or the OCI chart; the version from cert-manager.env or from
cd.yml's env:), and whether it had `--dry-run`. The scripts run (shadow runs them with
`--dry-run --local`): they print `dry-run: ARGV` for every command, as the real one does.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mybinder-deploy"
OUR_CURVENOTE_LOCK = (Path(__file__).resolve().parents[2] / "terraform" / "aws" / "curvenote"
                      / ".terraform.lock.hcl")
CERT_MANAGER_VERSION = "v1.12.0"
AWS_ROLE = "arn:aws:iam::123456789012:role/deploy-from-github"


@dataclass(frozen=True)
class Layout:
    name: str
    members: tuple[str, ...]  # cd.yml's order; the first is the staging job
    auth: str  # "prefix": cluster.startswith("ovh") -> kubeconfig; "tables": KUBECONFIG_CLUSTERS
    certmanager: str  # "repo" (--repo=... cert-manager) or "oci"
    version_in: str  # "env-file" (cert-manager.env) or "workflow" (cd.yml's env:)
    dry_run: bool
    system_charts: bool
    aws: bool  # curvenote on EKS, with terraform/aws/curvenote
    generate_bans: bool  # the second ban script of 2025 on


LAYOUTS = {
    "2023": Layout("2023", ("staging", "prod", "ovh2"), "prefix", "repo", "workflow",
                   False, False, False, False),
    "2024": Layout("2024", ("staging", "prod", "ovh2", "curvenote"), "prefix", "repo",
                   "env-file", True, True, True, False),
    "2025": Layout("2025", ("staging", "prod", "hetzner-2i2c", "hetzner-gesis"), "tables",
                   "repo", "env-file", True, True, True, True),
    "2026": Layout("2026", ("staging", "prod", "hetzner-2i2c", "hetzner-gesis", "bids-ovh"),
                   "tables", "oci", "env-file", True, True, False, True),
}

HOST_URLS = {"prod": "gke.binder.example.org", "ovh2": "ovh2.binder.example.org",
             "curvenote": "curvenote.binder.example.org",
             "hetzner-2i2c": "2i2c.binder.example.org",
             "hetzner-gesis": "gesis.binder.example.org",
             "bids-ovh": "bids.binder.example.org", "gesis": "notebooks.gesis.example.org"}


def _tables(layout: Layout) -> str:
    def table(name: str, entries: dict[str, str]) -> str:
        return f"{name} = {{" + ", ".join(f'"{k}": "{v}"' for k, v in entries.items()) + "}"

    gcp = ["prod"] if layout.auth == "tables" else ["staging", "prod"]
    lines = [table("GCP_PROJECTS", dict.fromkeys(gcp, "example-project")),
             table("GCP_ZONES", dict.fromkeys(gcp, "europe-west1"))]
    if layout.auth == "tables":
        kube = [m for m in layout.members if m not in gcp] + ["localhost"]
        lines.append("KUBECONFIG_CLUSTERS = {" + ", ".join(f'"{m}"' for m in kube) + "}")
    lines.append(table("AWS_DEPLOYMENTS", {"curvenote": "binderhub"} if layout.aws else {}))
    return "\n".join(lines)


def _auth_branch(layout: Layout) -> str:
    if layout.auth == "prefix":
        first = ('        if cluster.startswith("ovh"):\n'
                 "            setup_auth_ovh(args.release, cluster, args.dry_run)\n"
                 "            patch_coredns(args.dry_run)\n")
    else:
        first = ("        if cluster in KUBECONFIG_CLUSTERS:\n"
                 "            setup_auth_kubeconfig(args.release)\n"
                 "            patch_coredns(args.dry_run)\n")
    return (first + "        elif cluster in GCP_PROJECTS:\n"
            "            setup_auth_gcloud(args.release, cluster, args.dry_run)\n"
            "        elif cluster in AWS_DEPLOYMENTS:\n"
            "            setup_auth_aws(cluster, args.dry_run)\n"
            "        else:\n"
            '            raise SystemExit("which cloud is " + cluster + "?")\n')


def _certmanager(layout: Layout) -> str:
    chart = ('"--repo=https://charts.jetstack.io", "cert-manager", "cert-manager"'
             if layout.certmanager == "repo"
             else '"cert-manager", "oci://quay.io/jetstack/charts/cert-manager"')
    return f'''
def setup_certmanager(dry_run=False):
    """CRDs with kubectl first: helm never upgrades them."""
    version = os.environ["CERT_MANAGER_VERSION"]
    crds = f"https://github.com/cert-manager/cert-manager/releases/download/{{version}}/cert-manager.crds.yaml"
    check_call(["kubectl", "apply", "-f", crds], dry_run)
    upgrade = ["helm", "upgrade", "--install", "--create-namespace", "--namespace=cert-manager",
               {chart}, f"--version={{version}}", "--values=config/cert-manager.yaml"]
    check_call(upgrade, dry_run)
'''


def deploy_script(layout: Layout) -> str:
    """deploy.py of a layout: the same steps, in the same order, as the real one then."""
    bans = ('    check_call([sys.executable, "secrets/generate-banned-ips.py", '
            'f"--namespace={name}",\n'
            '                "--allowed-cidrs-file=secrets/allowed_ips.txt"], dry_run)\n'
            if layout.generate_bans else "")
    system = '''
def deploy_system_charts(release, name, dry_run=False):
    for chart in ["mybinder-kube-system"]:
        namespace = chart[len("mybinder-"):]
        files = get_config_files(release, config_dir=f"system-config/{namespace}")
        if not files:
            continue
        helm = ["helm", "upgrade", "--install", "--create-namespace", "--cleanup-on-fail",
                f"--namespace={namespace}", name, chart]
        for f in files:
            helm.extend(["-f", f])
        check_call(helm, dry_run)
        wait_for_rollout(namespace, dry_run)
''' if layout.system_charts else ""
    # until mid-2023 deploy() installed cert-manager itself, first
    certmanager_in_deploy = "    setup_certmanager(dry_run)\n" if not layout.dry_run else ""
    main_certmanager = ("    if args.stage in (\"all\", \"certmanager\"):\n"
                        "        setup_certmanager(args.dry_run)\n" if layout.dry_run else "")
    main_system = ("    if args.stage in (\"all\", \"system\"):\n"
                   "        deploy_system_charts(args.release, name, args.dry_run)\n"
                   if layout.system_charts else "")
    dry_run_option = ('    parser.add_argument("--dry-run", action="store_true", '
                      'help="print the commands only")\n' if layout.dry_run
                      else "    parser.set_defaults(dry_run=False)\n")
    return f'''#!/usr/bin/env python3
"""Test fixture: deploy.py as mybinder.org-deploy had it in {layout.name} (our own words)."""
import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

{_tables(layout)}


def check_call(cmd, dry_run):
    if dry_run:
        print("dry-run:", " ".join(str(c) for c in cmd))
    else:
        subprocess.check_call(cmd)


def check_output(cmd, dry_run):
    if dry_run:
        print("dry-run:", " ".join(cmd))
        return ""
    return subprocess.check_output(cmd).decode()


def setup_auth_ovh(release, cluster, dry_run=False):
    os.environ["KUBECONFIG"] = os.path.join(HERE, "secrets", f"{{release}}-kubeconfig.yml")
    check_output(["kubectl", "config", "use-context", cluster], dry_run)


def setup_auth_kubeconfig(release):
    os.environ["KUBECONFIG"] = str(HERE / "secrets" / f"{{release}}-kubeconfig.yaml")


def setup_auth_gcloud(release, cluster, dry_run=False):
    check_output(["gcloud", "auth", "activate-service-account",
                  f"--key-file=secrets/gke-auth-key-{{release}}.json"], dry_run)
    check_call(["gcloud", "container", "clusters", "get-credentials", cluster,
                f"--zone={{GCP_ZONES[release]}}", f"--project={{GCP_PROJECTS[release]}}"], dry_run)


def setup_auth_aws(cluster, dry_run=False):
    kubeconfig = ["aws", "eks", "update-kubeconfig", "--name", AWS_DEPLOYMENTS[cluster]]
    check_output(kubeconfig, dry_run)


def patch_coredns(dry_run=False):
    check_call(["kubectl", "set", "resources", "-n", "kube-system", "deployments/coredns",
                "--limits", "memory=250Mi", "--requests", "memory=200Mi"], dry_run)


def update_networkbans(cluster, name, dry_run=False):
    ban = [sys.executable, "secrets/ban.py"]
    if cluster in {{"ovh", "ovh2"}}:
        ban.append(cluster)
    check_call(ban, dry_run)
{bans}

def get_config_files(release, config_dir="config"):
    config_dir = Path(config_dir)
    secret_dir = Path("secrets") / config_dir
    files = sorted(config_dir.glob("common/*.yaml"))
    files.extend(sorted(secret_dir.glob("common/*.yaml")))
    for directory in (config_dir, secret_dir):
        if (directory / f"{{release}}.yaml").exists():
            files.append(directory / f"{{release}}.yaml")
    return files


def wait_for_rollout(namespace, dry_run=False):
    names = check_output(["kubectl", "get", f"--namespace={{namespace}}", "--output=name",
                          "deployments,daemonsets"], dry_run).strip().split("\\n")
    for name in names:
        check_call(["kubectl", "rollout", "status", f"--namespace={{namespace}}",
                    "--timeout=10m", "--watch", name], dry_run)
{_certmanager(layout)}{system}

def deploy(release, name, dry_run=False):
{certmanager_in_deploy}    helm = ["helm", "upgrade", "--install", "--cleanup-on-fail",
            "--create-namespace", f"--namespace={{name}}", name, "mybinder"]
    for f in get_config_files(release):
        helm.extend(["-f", f])
    check_call(helm, dry_run)
    wait_for_rollout(name, dry_run)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("release")
    parser.add_argument("cluster", nargs="?")
    parser.add_argument("--name")
    parser.add_argument("--local", action="store_true")
    parser.add_argument("--stage", default="all")
{dry_run_option}    args = parser.parse_args()
    cluster = args.cluster or args.release
    name = args.name or args.release
    if not args.local:
{_auth_branch(layout)}    if args.stage in ("all", "networkban"):
        update_networkbans(cluster, name, args.dry_run)
{main_system}{main_certmanager}    if args.stage in ("all", "mybinder"):
        deploy(args.release, name, args.dry_run)


if __name__ == "__main__":
    main()
'''


MEMBER = "${{ matrix.federation_member }}"
CLUSTER = "${{ matrix.cluster_name || matrix.federation_member }}"
RELEASE = "${{ matrix.release_name || matrix.federation_member }}"


def cd_workflow(layout: Layout) -> str:
    env = (f'env:\n  CERT_MANAGER_VERSION: "{CERT_MANAGER_VERSION}"\n\n'
           if layout.version_in == "workflow" else "")
    source = "" if layout.version_in == "workflow" else "          . cert-manager.env\n"
    entries = []
    for member in layout.members[1:]:
        entry = f"          - federation_member: {member}\n"
        if member == "hetzner-gesis":
            entry += "            release_name: gesis\n"
        if member == "curvenote":
            entry += (f"            aws_deployment_role: {AWS_ROLE}\n"
                      "            aws_region: us-east-2\n")
        entries.append(entry)
    return f'''# Test fixture: cd.yml of the {layout.name} layout
name: Continuous Deployment
on:
  push:
    branches: [main]

{env}jobs:
  staging-deploy:
    runs-on: ubuntu-24.04
    strategy:
      matrix:
        include:
          - federation_member: {layout.members[0]}
    steps:
      - uses: actions/checkout@v4
      - name: Build and push images
        run: chartpress --push
      - name: Deploy
        run: |
{source}          python ./deploy.py ${{{{ matrix.federation_member }}}}

  prod-deploy:
    needs: staging-deploy
    runs-on: ubuntu-24.04
    permissions:
      id-token: write
      contents: read
    strategy:
      fail-fast: false
      matrix:
        include:
{"".join(entries)}    steps:
      - uses: actions/checkout@v4
      - uses: aws-actions/configure-aws-credentials@v4
        if: matrix.aws_deployment_role
        with:
          role-to-assume: ${{{{ matrix.aws_deployment_role }}}}
          aws-region: ${{{{ matrix.aws_region }}}}
      - name: Deploy
        run: |
{source}          python ./deploy.py {MEMBER} {CLUSTER} --name {RELEASE}
      - name: Verify
        uses: nick-invision/retry@v3
        with:
          timeout_minutes: 10
          max_attempts: 3
          command: pytest -vx --release=${{{{ matrix.federation_member }}}} tests/
'''


AWS_STACK = '''# Test fixture: curvenote's stack (our own words): one registry, state in S3
terraform {
  required_version = ">= 1.4.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "AWS_PROVIDER_VERSION"
    }
  }

  backend "s3" {
    bucket         = "layout-curvenote-tfstate"
    key            = "curvenote/terraform.tfstate"
    region         = "us-east-2"
    dynamodb_table = "layout-curvenote-tflock"
  }
}

variable "region" {
  type = string
}

provider "aws" {
  region = var.region
}

resource "aws_ecr_repository" "binder" {
  name = "binderhub/curvenote"
}
'''


def _provider_version(lock: str) -> str:
    for line in lock.splitlines():
        if line.strip().startswith("version"):
            return line.split('"')[1]
    raise AssertionError("no provider version in our curvenote lock file")


def _redirector_hosts(layout: Layout) -> str:
    routed = [m for m in layout.members if m not in ("staging", "prod")] + ["gesis"]
    # until 2024 the prod member's own host was keyed `gke`, not by the member's name
    hosts = {"gke": "prod"} if layout.auth == "prefix" else {}
    hosts.update({m: m for m in routed})
    text = "federationRedirect:\n  enabled: true\n  hosts:\n"
    for i, (key, member) in enumerate(hosts.items()):
        url = HOST_URLS[member]
        text += (f"    {key}:\n      prime: {'true' if i == 0 else 'false'}\n"
                 f"      url: https://{url}\n      weight: {50 if i == 0 else 10}\n"
                 f"      health: https://{url}/health\n      versions: https://{url}/versions\n")
    return text


def build(layout: Layout, dest: Path) -> Path:
    """The fixture repository in a layout, at dest."""
    shutil.copytree(FIXTURE, dest)
    (dest / "deploy.py").write_text(deploy_script(layout))
    (dest / ".github" / "workflows" / "cd.yml").write_text(cd_workflow(layout))
    env = dest / "cert-manager.env"
    if layout.version_in == "workflow":
        env.unlink()
    else:
        env.write_text(f"export CERT_MANAGER_VERSION={CERT_MANAGER_VERSION}\n")
    for member in layout.members:
        config = dest / "config" / f"{member}.yaml"
        if not config.exists():
            config.write_text(f"projectName: {member}\nbinderhub:\n  ingress:\n    hosts:\n"
                              f"      - {HOST_URLS[member]}\n")
    prod = dest / "config" / "prod.yaml"
    prod.write_text("binderhubEnabled: false\nbinderhub:\n  ingress:\n    hosts:\n"
                    f"      - {HOST_URLS['prod']}\n" + _redirector_hosts(layout))
    if layout.auth == "prefix":
        (dest / "secrets" / "ovh2-kubeconfig.yml").write_text("apiVersion: v1\nkind: Config\n")
    if not layout.system_charts:
        shutil.rmtree(dest / "system-config")
    shutil.rmtree(dest / "terraform")
    if layout.aws:
        stack = dest / "terraform" / "aws" / "curvenote"
        stack.mkdir(parents=True)
        lock = OUR_CURVENOTE_LOCK.read_text()
        (stack / "main.tf").write_text(AWS_STACK.replace("AWS_PROVIDER_VERSION",
                                                         _provider_version(lock)))
        (stack / ".terraform.lock.hcl").write_text(lock)
    return dest
