"""adopt, validate, render and ci-matrix on deploy repositories in each layout that
mybinder.org-deploy has had since 2023 (tests/adopt/layouts.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from federation_deploy import __version__
from federation_deploy.adopt.federation import adopt_repository
from federation_deploy.adopt.workflow import WORKFLOW_FILE
from federation_deploy.cli.main import cli
from tests.adopt.layouts import AWS_ROLE, CERT_MANAGER_VERSION, LAYOUTS, Layout, build


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def adopted(layout: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    repo = build(LAYOUTS[layout], tmp_path / f"deploy-{layout}")
    result = invoke("adopt", str(repo))
    assert result.exit_code == 0, result.output
    data = yaml.safe_load((repo / "federation.yaml").read_text())
    return repo, data


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_every_layout_adopts_validates_renders_and_orders(name: str, tmp_path: Path) -> None:
    layout: Layout = LAYOUTS[name]
    repo, data = adopted(name, tmp_path)
    result = invoke("--config-dir", str(repo), "validate", "--without-secrets")
    assert result.exit_code == 0, result.output
    matrix = invoke("--config-dir", str(repo), "ci-matrix")
    assert matrix.exit_code == 0, matrix.output
    order = [row["member"] for row in json.loads(matrix.stdout)["include"]]
    assert order == list(layout.members)
    assert data["ci"]["staging"] == ["staging"]
    for member in layout.members:
        rendered = invoke("--config-dir", str(repo), "render", member, "--without-secrets",
                          "--release", "mybinder")
        assert rendered.exit_code == 0, rendered.output
        assert yaml.safe_load(rendered.stdout)["binderhub"]["ingress"]["hosts"]
    # gesis is partner-run: routed to, never deployed
    assert data["members"]["gesis"]["cloud"] == "external"
    # the cert-manager release, whichever form deploy.py installed it in
    charts = data["charts"]["cert-manager"]
    assert charts["version"] == CERT_MANAGER_VERSION
    if layout.certmanager == "repo":
        assert charts == {"repo": "https://charts.jetstack.io", "version": CERT_MANAGER_VERSION}
    else:
        assert charts["chart"] == "oci://quay.io/jetstack/charts/cert-manager"
    release = next(r for r in data["members"]["prod"]["releases"] if r["name"] == "cert-manager")
    assert release["crds"].endswith(f"/{CERT_MANAGER_VERSION}/cert-manager.crds.yaml")
    assert (repo / ".github" / "workflows" / "cd.yml").read_text().startswith("# Test fixture")


def test_2023_ovh_by_prefix_and_the_gke_host_of_prod(tmp_path: Path) -> None:
    _repo, data = adopted("2023", tmp_path)
    members = data["members"]
    assert members["ovh2"]["cloud"] == "kubeconfig"
    # deploy.py's setup_auth_ovh: secrets/{release}-kubeconfig.yml, then use-context {cluster}
    assert members["ovh2"]["cluster"] == {"kubeconfig": "ovh2-kubeconfig.yml",
                                          "context": "ovh2"}
    assert members["staging"]["cloud"] == members["prod"]["cloud"] == "gcp"
    # the redirector's host `gke` is prod's (its URL): prod is routed, prime, weight 50
    assert (members["prod"]["prime"], members["prod"]["weight"]) == (True, 50)
    assert "gke" not in members
    assert data["redirector"]["member"] == "prod"  # not staging's own redirector


def test_hooks_are_deploy_py_steps_in_its_order(tmp_path: Path) -> None:
    _repo, data = adopted("2023", tmp_path)
    ovh2, prod = data["members"]["ovh2"]["hooks"], data["members"]["prod"]["hooks"]
    assert [(h["name"], h["after"]) for h in ovh2] == [
        ("coredns-resources", "auth"), ("network-bans", "auth"),
        ("post-deploy-tests", "verify")]
    assert ovh2[1]["argv"] == ["python3", "secrets/ban.py", "ovh2"]  # its special case
    assert prod[0] == {"name": "network-bans", "after": "auth",
                       "argv": ["python3", "secrets/ban.py"]}
    assert prod[1]["argv"] == ["python3", "-m", "pytest", "-vx", "--release={member}", "tests/"]
    _repo, data = adopted("2025", tmp_path)
    gesis = data["members"]["hetzner-gesis"]["hooks"]
    assert [h["name"] for h in gesis] == ["coredns-resources", "network-bans-1",
                                          "network-bans-2", "post-deploy-tests"]
    assert gesis[2]["argv"] == ["python3", "secrets/generate-banned-ips.py",
                                "--namespace={namespace}",
                                "--allowed-cidrs-file=secrets/allowed_ips.txt"]
    assert [h["name"] for h in data["members"]["prod"]["hooks"]] == [
        "network-bans-1", "network-bans-2", "post-deploy-tests"]  # gcp: no CoreDNS patch


def test_2024_curvenote_on_aws_with_its_stack(tmp_path: Path) -> None:
    repo, data = adopted("2024", tmp_path)
    curvenote = data["members"]["curvenote"]
    assert curvenote["cloud"] == "aws"
    assert curvenote["cluster"] == {"name": "binderhub", "region": "us-east-2"}  # cd.yml's
    assert curvenote["terraform"] == {"stack": "aws/curvenote"}
    # the stack says `>= 1.4.6`: federation.yaml pins one version inside that range
    assert data["terraform"] == {"version": "1.11.4", "root": "terraform"}
    workflow = yaml.safe_load((repo / WORKFLOW_FILE).read_text())
    members = workflow["jobs"]["members"]
    assert members["needs"] == "staging"
    rows = members["strategy"]["matrix"]["include"]
    assert [r["member"] for r in rows] == ["prod", "ovh2", "curvenote"]
    assert rows[2] == {"member": "curvenote", "aws_role": AWS_ROLE, "aws_region": "us-east-2"}
    aws = next(s for s in members["steps"] if "configure-aws-credentials" in s.get("uses", ""))
    assert aws["with"] == {"role-to-assume": "${{ matrix.aws_role }}",
                           "aws-region": "${{ matrix.aws_region }}"}
    staging = workflow["jobs"]["staging"]
    assert [r["member"] for r in staging["strategy"]["matrix"]["include"]] == ["staging"]
    assert any(s.get("run") == "chartpress --push" for s in staging["steps"])
    unlock = next(s for s in staging["steps"] if "git-crypt" in s.get("uses", ""))
    assert unlock["env"] == {"GIT_CRYPT_KEY": "${{ secrets.GIT_CRYPT_KEY }}"}
    install = next(s for s in staging["steps"] if s.get("name") == "Install federation-deploy")
    assert install["run"] == f"pip install federation-deploy=={__version__}"
    shadow = workflow["jobs"]["shadow"]
    assert shadow["if"] == "github.event_name == 'pull_request'"
    assert shadow["strategy"]["matrix"]["member"] == ["staging", "prod", "ovh2", "curvenote"]
    assert "shadow \"$MEMBER\" --yes --without-secrets" in shadow["steps"][-1]["run"]


def test_the_region_comes_from_the_stack_or_adopt_exits_2_naming_it(tmp_path: Path) -> None:
    repo = build(LAYOUTS["2024"], tmp_path / "deploy")
    cd = repo / ".github" / "workflows" / "cd.yml"
    cd.write_text(cd.read_text().replace("            aws_region: us-east-2\n", ""))
    adoption = adopt_repository(repo)
    assert adoption.document["members"]["curvenote"]["cluster"]["region"] == "us-east-2"
    assert any("s3 backend of terraform/aws/curvenote" in n for n in adoption.notes)
    for tf in (repo / "terraform").rglob("*.tf"):
        tf.write_text(tf.read_text().replace('region         = "us-east-2"', ""))
    result = invoke("adopt", str(repo), "--force")
    assert result.exit_code == 2, result.output
    assert "member curvenote: the region of its EKS cluster (deploy.py:" in result.stderr
    assert "set members.curvenote.cluster.region" in result.stderr
    assert "members.curvenote.cluster.region: required key is missing" in result.stderr


def test_validate_takes_a_range_that_allows_the_pinned_version(tmp_path: Path) -> None:
    repo, _data = adopted("2024", tmp_path)
    path = repo / "federation.yaml"
    path.write_text(path.read_text().replace("version: 1.11.4", "version: 1.3.0"))
    result = invoke("--config-dir", str(repo), "validate", "--without-secrets")
    assert result.exit_code == 2
    assert "terraform/aws/curvenote/main.tf:3: required_version: the range '>= 1.4.6' does " \
           "not allow terraform '1.3.0'" in result.stderr
