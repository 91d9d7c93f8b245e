"""Cluster access for one run: find kubectl/gcloud/aws, write a private KUBECONFIG, probe it."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from federation_deploy.config import Federation, Member
from federation_deploy.config.gitcrypt import UNLOCK_HINT, is_git_crypt_locked
from federation_deploy.errors import (
    ConfigError,
    FederationDeployError,
    MissingToolError,
    ToolError,
    UsageError,
)
from federation_deploy.runner import Runner

Which = Callable[[str], str | None]

# What to do when a binary is missing: one line each, shown after the cause.
INSTALL_HINTS: Mapping[str, str] = {
    "kubectl": "install kubectl (https://kubernetes.io/docs/tasks/tools/) and put it on PATH",
    "gcloud": "install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install) "
              "and put gcloud on PATH",
    "gke-gcloud-auth-plugin": "run `gcloud components install gke-gcloud-auth-plugin` "
                              "(or apt-get install google-cloud-cli-gke-gcloud-auth-plugin)",
    "aws": "install the AWS CLI (https://aws.amazon.com/cli/) and put aws on PATH",
}
PROBE_TIMEOUT = "30s"
CLUSTER_CLOUDS = ("gcp", "aws", "kubeconfig")  # the clouds whose credentials we know to get


@dataclass(frozen=True)
class ClusterTools:
    """The cluster-side binaries a deploy of one member runs (helm is found by the adapter)."""

    kubectl: str = "kubectl"
    gcloud: str | None = None
    aws: str | None = None


def require_binary(name: str, which: Which = shutil.which) -> str:
    """The path of name on PATH, or MissingToolError saying how to install it."""
    found = which(name)
    if not found:
        hint = INSTALL_HINTS.get(name, f"install {name} and put it on PATH")
        raise MissingToolError(f"{name} not found on PATH: {hint}")
    return found


def find_cluster_tools(member: Member, which: Which = shutil.which) -> ClusterTools:
    """kubectl always; gcloud and its GKE auth plugin for gcp; aws for aws members.

    The command checked that member is deployable (commands.deploy.require_deployable); a
    cloud without a cluster (external) has no tools and says so.
    """
    if member.cloud not in CLUSTER_CLOUDS:
        raise _no_cluster(member)
    kubectl = require_binary("kubectl", which)
    if member.cloud == "gcp":
        gcloud = require_binary("gcloud", which)
        # helm and kubectl exec this plugin for every request to a GKE cluster
        require_binary("gke-gcloud-auth-plugin", which)
        return ClusterTools(kubectl=kubectl, gcloud=gcloud)
    if member.cloud == "aws":
        # `aws eks get-token` is exec'd by helm and kubectl for every request
        return ClusterTools(kubectl=kubectl, aws=require_binary("aws", which))
    return ClusterTools(kubectl=kubectl)


def _no_cluster(member: Member) -> UsageError:
    return UsageError(f"member {member.name!r}: cannot get credentials for cloud {member.cloud!r}")


@dataclass(frozen=True)
class ClusterAccess:
    """Credentials of one member for one run: a private kubeconfig (and context to use)."""

    member: str
    kubeconfig: Path
    context: str | None
    kubectl: str = "kubectl"

    def kubectl_argv(self, *args: str) -> list[str]:
        """A kubectl command bound to this run's kubeconfig, never the user's default."""
        argv = [self.kubectl, *args, "--kubeconfig", str(self.kubeconfig)]
        if self.context:
            argv += ["--context", self.context]
        return argv


@contextmanager
def cluster_access(
    fed: Federation,
    member: Member,
    runner: Runner,
    tools: ClusterTools | None = None,
) -> Iterator[ClusterAccess]:
    """Credentials for member in a 0600 KUBECONFIG inside a private (0700) temp directory.

    gcp: `gcloud container clusters get-credentials`; aws: `aws eks update-kubeconfig`;
    kubeconfig: a copy of the member's file from the secrets directory. The directory and
    everything the tools wrote into it are removed on exit, also when the body raises.
    """
    # the one seam every credential step goes through: a sandbox never gets cloud credentials
    fed.refuse_in_sandbox(f"getting credentials of member {member.name!r} ({member.cloud}: "
                          f"{_credential_step(member)})")
    if member.cloud not in CLUSTER_CLOUDS:
        raise _no_cluster(member)
    tools = tools or ClusterTools()
    directory = Path(tempfile.mkdtemp(prefix=f"federation-deploy-{member.name}-"))
    try:
        fd, name = tempfile.mkstemp(prefix="kubeconfig-", suffix=".yaml", dir=directory)
        os.close(fd)  # mkstemp creates the file 0600; the tools below fill it
        kubeconfig = Path(name)
        context = _write_credentials(fed, member, runner, tools, kubeconfig)
        yield ClusterAccess(member.name, kubeconfig, context, tools.kubectl)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _credential_step(member: Member) -> str:
    """The tool a credential step of member runs, for messages."""
    if member.cloud == "gcp":
        return "gcloud container clusters get-credentials"
    if member.cloud == "aws":
        return "aws eks update-kubeconfig"
    return "its kubeconfig for kubectl and helm"


def _write_credentials(
    fed: Federation, member: Member, runner: Runner, tools: ClusterTools, kubeconfig: Path
) -> str | None:
    cluster = member.cluster
    env = {"KUBECONFIG": str(kubeconfig)}
    if member.cloud == "gcp":
        assert cluster.name and cluster.project and cluster.location  # config guarantees it
        if cluster.key_file:
            env["CLOUDSDK_CONFIG"] = str(_activate_key(fed, member, runner, tools, kubeconfig))
        runner.run(
            [tools.gcloud or "gcloud", "container", "clusters", "get-credentials", cluster.name,
             "--project", cluster.project, "--location", cluster.location, "--quiet"],
            env=env,
        )
        if cluster.key_file:
            _pin_gcloud_config(kubeconfig, env["CLOUDSDK_CONFIG"])
        return None
    if member.cloud == "aws":
        assert cluster.name and cluster.region
        argv = [tools.aws or "aws", "eks", "update-kubeconfig", "--name", cluster.name,
                "--region", cluster.region, "--kubeconfig", str(kubeconfig)]
        if cluster.role_arn:
            argv += ["--role-arn", cluster.role_arn]
        runner.run(argv, env=env)
        return None
    if member.cloud == "kubeconfig":
        assert cluster.kubeconfig
        source = fed.secrets_path(cluster.kubeconfig)
        if is_git_crypt_locked(source):
            raise ConfigError.single(
                str(source), None, f"members.{member.name}.cluster.kubeconfig",
                f"locked with git-crypt: {UNLOCK_HINT} (the member's credentials)")
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise FederationDeployError(
                f"stage 'auth' failed: member {member.name!r}: cannot read its kubeconfig {source} "
                f"({exc.strerror or exc}): unlock or restore the secrets directory "
                f"({fed.secrets_path('')})"
            ) from None
        kubeconfig.write_text(text, encoding="utf-8")  # the file stays 0600
        return cluster.context
    raise _no_cluster(member)


def _activate_key(fed: Federation, member: Member, runner: Runner, tools: ClusterTools,
                  kubeconfig: Path) -> Path:
    """`gcloud auth activate-service-account` with the member's key, in a gcloud config
    directory of this run (0700, beside the kubeconfig, removed with it): the user's own
    gcloud login and active account are never changed (deploy.py changed them)."""
    assert member.cluster.key_file
    key = fed.config_dir / member.cluster.key_file
    where = f"members.{member.name}.cluster.key_file"
    if is_git_crypt_locked(key):
        raise ConfigError.single(str(key), None, where,
                                 f"locked with git-crypt: {UNLOCK_HINT} (the member's key)")
    if not key.is_file():
        raise ConfigError.single(str(key), None, where, "not found: the service account key "
                                 "of the member (secrets/ unlocked in this clone?)")
    config = kubeconfig.parent / "gcloud"
    config.mkdir(mode=0o700)
    runner.run([tools.gcloud or "gcloud", "auth", "activate-service-account",
                f"--key-file={key}", "--quiet"], env={"CLOUDSDK_CONFIG": str(config)})
    return config


def _pin_gcloud_config(kubeconfig: Path, config: str) -> None:
    """Every later kubectl and helm call (and hooks) reaches the cluster through
    gke-gcloud-auth-plugin, which asks gcloud for a token: the kubeconfig's exec entries get
    CLOUDSDK_CONFIG so that gcloud is the run's, with the key's account."""
    try:
        data = yaml.safe_load(kubeconfig.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return  # a recording runner wrote nothing; kubectl says what is wrong otherwise
    if not isinstance(data, dict):
        return
    for user in data.get("users") or []:
        command = (user.get("user") or {}).get("exec") if isinstance(user, dict) else None
        if isinstance(command, dict):
            entries = [e for e in command.get("env") or [] if e.get("name") != "CLOUDSDK_CONFIG"]
            command["env"] = [*entries, {"name": "CLOUDSDK_CONFIG", "value": config}]
    kubeconfig.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")  # stays 0600


UNREACHABLE_HINT = (
    "check that the cluster is running and reachable from here (network, VPN, authorized "
    "networks) and that the credentials are valid; `federation-deploy deploy {member} --stage "
    "auth` retries just this check"
)


def probe_cluster(runner: Runner, access: ClusterAccess) -> str | None:
    """Ask the API server its version (read-only): fails fast on an unreachable cluster.

    Returns the server's version (like v1.27.16) when it says one.
    """
    argv = access.kubectl_argv("get", "--raw", "/version", f"--request-timeout={PROBE_TIMEOUT}")
    try:
        proc = runner.run(argv)
    except ToolError as exc:
        raise exc.with_context(
            f"cannot reach the Kubernetes API of member {access.member!r}",
            hint=UNREACHABLE_HINT.format(member=access.member), stage="auth",
        ) from None
    try:
        version = json.loads(proc.stdout or "{}").get("gitVersion")
    except (json.JSONDecodeError, AttributeError):
        return None
    return str(version) if version else None


def is_unreachable(stderr: str) -> bool:
    """Does a tool's stderr say the API server could not be reached?"""
    text = stderr.lower()
    return any(marker in text for marker in (
        "kubernetes cluster unreachable", "connection refused", "no such host",
        "i/o timeout", "tls handshake timeout", "unable to connect to the server",
        "network is unreachable", "the connection to the server",
    ))
