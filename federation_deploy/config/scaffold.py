"""A new member's files, as text (pure): its terraform stack (a root of the cloud's shared
module, with its own state key and lock table), its values file and its federation.yaml entry
at weight 0. `member new` (commands/member.py) writes them and runs `terraform lock`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from federation_deploy.config.aws_names import LOCK_TABLE, STATE_BUCKET
from federation_deploy.config.model import Federation, Member, Release
from federation_deploy.config.terraform_files import tf_files
from federation_deploy.errors import UsageError
from federation_deploy.traffic.shares import plain_number

# the shared module each provisioned cloud's stacks call, under terraform/<cloud>/modules/
SHARED_MODULES = {"aws": "binderhub-eks", "gcp": "mybinder"}
PROVIDERS = {"aws": "hashicorp/aws", "gcp": "hashicorp/google"}
# the default region of a new member, when --region is not given
DEFAULT_REGIONS = {"aws": "us-east-2", "gcp": "us-central1"}
STACK_FILES = ("versions.tf", "main.tf", "variables.tf", "outputs.tf")


@dataclass(frozen=True)
class MemberSpec:
    """What `member new` was asked for, resolved against the federation."""

    name: str
    cloud: str
    url: str
    region: str | None
    project: str | None
    kubernetes_version: str
    target_weight: float
    template: Member | None  # the member whose releases (and outputs) the new one copies

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or self.name

    @property
    def stack(self) -> str | None:
        return f"{self.cloud}/{self.name}" if self.cloud in SHARED_MODULES else None

    @property
    def state_bucket(self) -> str:
        # S3 names are global: one bucket and one lock table per member (validate refuses a
        # stack that shares another's state; the README's copy step said so by hand)
        return STATE_BUCKET.format(name=self.name) if self.cloud == "aws" \
            else f"{self.project}-terraform-state"

    @property
    def lock_table(self) -> str:
        return LOCK_TABLE.format(name=self.name)


def template_member(fed: Federation, cloud: str) -> Member | None:
    """The member a new one of cloud takes its releases from: the first deployable member of
    the same cloud, else the first deployable one (None: none, or an external member)."""
    if cloud == "external":
        return None
    deployable = [m for m in fed.members.values() if m.deployable and m.releases]
    same = [m for m in deployable if m.cloud == cloud]
    chosen = same or deployable
    return chosen[0] if chosen else None


def provider_pin(fed: Federation, cloud: str) -> str:
    """The provider version the cloud's existing stacks pin (the one the plugin mirror and the
    committed lock files hold), so a new stack locks what the others lock."""
    source = PROVIDERS[cloud]
    pattern = re.compile(r'source\s*=\s*"' + re.escape(source)
                         + r'"\s*\n\s*version\s*=\s*"([^"]+)"')
    for stack in sorted((fed.terraform_root / cloud).glob("*")):
        if stack.name in ("modules", "bootstrap") or not stack.is_dir():
            continue
        for path in tf_files(stack):
            found = pattern.search(path.read_text(encoding="utf-8"))
            if found:
                return found.group(1)
    raise UsageError(f"no stack under {fed.terraform_root / cloud} pins {source}: add one by "
                     "hand first (member new copies its provider version)")


def stack_files(fed: Federation, spec: MemberSpec) -> dict[str, str]:
    """The stack's files by name; empty for clouds we do not provision."""
    if spec.cloud == "aws":
        return _aws_stack(fed, spec)
    if spec.cloud == "gcp":
        return _gcp_stack(fed, spec)
    return {}


def _versions(fed: Federation, spec: MemberSpec, backend: str) -> str:
    provider = spec.cloud if spec.cloud == "aws" else "google"
    return f'''terraform {{
  # The one terraform version of the federation, pinned in config/federation.yaml
  # (`terraform.version`); `federation-deploy validate` checks that they agree.
  required_version = "{fed.terraform_version}"

  required_providers {{
    {provider} = {{
      source  = "{PROVIDERS[spec.cloud]}"
      version = "{provider_pin(fed, spec.cloud)}"
    }}
  }}

{backend}}}
'''


def _aws_stack(fed: Federation, spec: MemberSpec) -> dict[str, str]:
    name, region = spec.name, spec.region
    backend = f'''  # State in S3 with locking in DynamoDB, this member's own;
  # `federation-deploy terraform bootstrap {name}` creates this bucket and table
  # (stack terraform/aws/bootstrap).
  backend "s3" {{
    bucket         = "{spec.state_bucket}"
    key            = "{name}/terraform.tfstate"
    region         = "{region}"
    dynamodb_table = "{spec.lock_table}"
    encrypt        = true
  }}
'''
    main = f'''# Member {name} of the federation: an EKS cluster in {region} and the ECR
# registry its BinderHub pushes to (written by `federation-deploy member new`). Everything
# lives in the binderhub-eks module; this root pins the sizes.

provider "aws" {{
  region = var.region

  default_tags {{
    tags = {{
      "managed-by"          = "federation-deploy"
      "mybinder.org/member" = "{name}"
    }}
  }}
}}

module "binderhub_eks" {{
  source = "../modules/{SHARED_MODULES['aws']}"

  cluster_name       = var.cluster_name
  kubernetes_version = var.kubernetes_version

  # change it before the first apply if this VPC will be peered with another member's
  vpc_cidr   = "10.10.0.0/16"
  zone_count = 3

  node_instance_type = "r5.xlarge"
  node_disk_size     = 100
  node_min_size      = 1
  node_desired_size  = 2
  node_max_size      = 6

  # IAM roles and policies are named (and the deploy roles scoped) {name}-*, the ECR
  # repositories {name}/*: apart from every other member in the same AWS account
  registry_prefix                    = "{name}"
  registry_repositories              = ["binderhub-builder"]
  registry_helper_service_account    = "{name}:binderhub-container-registry-helper"
  cluster_autoscaler_service_account = "kube-system:cluster-autoscaler"

  # GitHub Actions' roles (deploy, terraform-plan, terraform): no stored keys, no console steps.
  github_repository           = var.github_repository
  create_github_oidc_provider = var.create_github_oidc_provider
  enable_access_entries       = var.enable_access_entries
  # the backend's bucket and table (versions.tf; a backend block cannot take variables)
  terraform_state_bucket = "{spec.state_bucket}"
  terraform_lock_table   = "{spec.lock_table}"
}}
'''
    variables = f'''# federation-deploy passes region, cluster_name and kubernetes_version from the
# member's entry in config/federation.yaml; the defaults only serve a bare `terraform` run.

variable "region" {{
  description = "AWS region of the cluster (members.{name}.cluster.region)."
  type        = string
  default     = "{region}"
}}

variable "cluster_name" {{
  description = "Name of the EKS cluster (members.{name}.cluster.name)."
  type        = string
  default     = "{name}"
}}

variable "kubernetes_version" {{
  description = "Kubernetes version of the cluster (members.{name}.kubernetes_version)."
  type        = string
  default     = "{spec.kubernetes_version}"
}}

variable "github_repository" {{
  description = "owner/name of the repository whose workflows deploy and apply this member."
  type        = string
  default     = "jupyterhub/mybinder.org-deploy"
}}

variable "create_github_oidc_provider" {{
  description = "false when the AWS account already has GitHub's OIDC provider."
  type        = bool
  default     = true
}}

variable "enable_access_entries" {{
  description = "EKS access entries for the deploy role (moto: TF_VAR_...=false)."
  type        = bool
  default     = true
}}
'''
    outputs = f"# Saved after every apply to config/generated/{name}.terraform.json; `render` " \
        f"puts the ones\n# listed under members.{name}.terraform.outputs in federation.yaml " \
        "into the Helm values.\n" + "".join(
            f'\noutput "{out}" {{\n  description = "{text}"\n'
            f"  value       = module.binderhub_eks.{out}\n}}\n"
            for out, text in AWS_OUTPUTS)
    return {"versions.tf": _versions(fed, spec, backend), "main.tf": main,
            "variables.tf": variables, "outputs.tf": outputs}


AWS_OUTPUTS = (
    ("cluster_name", "Name of the EKS cluster."),
    ("cluster_endpoint", "URL of the Kubernetes API."),
    ("region", "AWS region of the cluster."),
    ("registry_url", "ECR registry BinderHub pushes to."),
    ("image_prefix", "BinderHub image_prefix."),
    ("registry_helper_role_arn", "IAM role of the registry helper's service account."),
    ("cluster_autoscaler_role_arn", "IAM role of the cluster autoscaler's service account."),
    ("deploy_role_arn", "cd.yml's role (main branch, production environment)."),
    ("terraform_plan_role_arn", "terraform.yml's plan and check role (pull requests, main)."),
    ("terraform_role_arn", "terraform.yml's apply role (terraform-apply environment only)."),
    ("github_oidc_provider_arn", "The account's OIDC provider for GitHub Actions."),
)
GCP_OUTPUTS = (
    ("cluster_name", "Name of the GKE cluster."),
    ("cluster_endpoint", "Address of the Kubernetes API."),
    ("location", "Region of the cluster."),
    ("registry_url", "Artifact Registry host BinderHub pushes to."),
    ("image_prefix", "BinderHub image_prefix."),
    ("image_push_service_account", "Service account BinderHub pushes images as."),
)


def _gcp_stack(fed: Federation, spec: MemberSpec) -> dict[str, str]:
    name = spec.name
    backend = f'''  # this member's own state: the prefix is its name
  backend "gcs" {{
    bucket = "{spec.state_bucket}"
    prefix = "{name}"
  }}
'''
    main = f'''# Member {name} of the federation: a GKE cluster (written by
# `federation-deploy member new`).

provider "google" {{
  project = var.project
  region  = var.location
}}

module "mybinder" {{
  source = "../modules/{SHARED_MODULES['gcp']}"

  project            = var.project
  location           = var.location
  cluster_name       = var.cluster_name
  kubernetes_version = var.kubernetes_version

  core_node_count = 1
  user_min_nodes  = 1
  user_max_nodes  = 6

  registry_name = "binderhub-{name}"

  labels = {{
    "managed-by"          = "federation-deploy"
    "mybinder-org-member" = "{name}"
  }}
}}
'''
    variables = f'''# federation-deploy passes project, location, cluster_name and
# kubernetes_version from members.{name} in config/federation.yaml; the defaults serve a
# bare `terraform` run.
''' + "".join(f'''
variable "{var}" {{
  description = "{text} (members.{name}.{key})."
  type        = string
  default     = "{default}"
}}
''' for var, text, key, default in (
        ("project", "Google Cloud project", "cluster.project", spec.project),
        ("location", "Region of the cluster", "cluster.location", spec.region),
        ("cluster_name", "Name of the GKE cluster", "cluster.name", name),
        ("kubernetes_version", "Kubernetes version of the cluster", "kubernetes_version",
         spec.kubernetes_version)))
    outputs = (f"# Saved after every apply to config/generated/{name}.terraform.json for "
               "`render`.\n" + "".join(
                   f'\noutput "{out}" {{\n  description = "{text}"\n'
                   f"  value       = module.mybinder.{out}\n}}\n" for out, text in GCP_OUTPUTS))
    return {"versions.tf": _versions(fed, spec, backend), "main.tf": main,
            "variables.tf": variables, "outputs.tf": outputs}


def values_text(spec: MemberSpec) -> str | None:
    """The member's values file (keyed by release name), for the releases it has; None for an
    external member, which is never deployed."""
    if spec.template is None:
        return None
    releases = {r.name for r in spec.template.releases}
    lines = [f"# {spec.name}: {spec.cloud} member at {spec.url}, written by `federation-deploy "
             "member new`.", "# Keyed by release name; secrets go to "
             f"secrets/values/{spec.name}.yaml.", ""]
    if spec.cloud == "aws" and "ingress-nginx" in releases:
        lines += ["ingress-nginx:", "  controller:", "    service:", "      annotations:",
                  "        service.beta.kubernetes.io/aws-load-balancer-type: nlb", ""]
    if spec.cloud == "aws" and "cluster-autoscaler" in releases:
        lines += ["cluster-autoscaler:", "  cloudProvider: aws", f"  awsRegion: {spec.region}",
                  "  autoDiscovery:", f"    clusterName: {spec.name}", "  rbac:",
                  "    serviceAccount:", "      create: true", "      name: cluster-autoscaler",
                  ""]
    if spec.cloud == "aws" and "registry-helper" in releases:
        lines += ["registry-helper:", "  serviceAccount:", "    create: true",
                  "    name: binderhub-container-registry-helper", "  config:",
                  "    provider: aws", f"    region: {spec.region}", ""]
    if "binderhub" in releases:
        lines += ["binderhub:", "  config:", "    BinderHub:",
                  f"      hub_url: https://hub.{spec.host}", "  ingress:", "    hosts:",
                  f"      - {spec.host}", "  jupyterhub:", "    ingress:", "      hosts:",
                  f"        - hub.{spec.host}", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def member_entry(fed: Federation, spec: MemberSpec) -> dict[str, Any]:
    """The member's federation.yaml entry (plain data, in the order people read it)."""
    entry: dict[str, Any] = {"url": spec.url, "cloud": spec.cloud, "weight": 0}
    if spec.cloud == "external":
        # never ramped (its weight is set with `traffic set`): a target_weight would be unused
        return entry
    entry["target_weight"] = plain_number(spec.target_weight)
    entry["kubernetes_version"] = spec.kubernetes_version
    if spec.cloud == "aws":
        # the cluster (and its IAM names, `<name>-*`) after the member: two members in one
        # account must not share them (config/aws_names.py)
        entry["cluster"] = {"region": spec.region, "name": spec.name}
    elif spec.cloud == "gcp":
        entry["cluster"] = {"project": spec.project, "location": spec.region,
                            "name": spec.name}
    else:
        entry["cluster"] = {"kubeconfig": f"{spec.name}-kubeconfig.yml"}
    if spec.stack is not None:
        stack: dict[str, Any] = {"stack": spec.stack}
        template = spec.template
        if template is not None and template.cloud == spec.cloud and template.terraform \
                and template.terraform.outputs:
            stack["outputs"] = dict(template.terraform.outputs)
        entry["terraform"] = stack
    template = spec.template
    assert template is not None
    redirector = template.name == fed.redirector.member
    entry["releases"] = [_release(r, template.name, spec.name) for r in template.releases
                         if not (redirector and r.name == fed.redirector.release)]
    return entry


def _release(release: Release, template: str, name: str) -> dict[str, Any]:
    """A template's release for the new member: the same chart (its `charts:` entry, or its
    own pin), the template's namespace named after the template renamed after the member."""
    entry: dict[str, Any] = {"name": release.name}
    if release.pin is not None:
        entry["chart"] = release.pin
    else:
        entry["chart"] = release.chart
        for key in ("repo", "version"):
            if getattr(release, key, None):
                entry[key] = getattr(release, key)
    entry["namespace"] = name if release.namespace == template else release.namespace
    return entry


def stack_directory(fed: Federation, spec: MemberSpec) -> Path | None:
    return None if spec.stack is None else fed.terraform_root / spec.stack
