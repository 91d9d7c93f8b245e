"""The CD workflow adopt writes, against a cd.yml with what mybinder.org-deploy's has: its
concurrency group, tool pins, paths-ignore, actions pinned by commit SHA, the retried
post-deploy tests, chartpress --skip-build after staging and a Grafana annotation step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from federation_deploy import __version__
from federation_deploy.adopt.workflow import WORKFLOW_FILE
from federation_deploy.cli.main import cli
from tests.adopt.layouts import LAYOUTS, build

RETRY_SHA = "ad984534de44a9489a53aefd81eb77f87c70dc60"
CHECKOUT_SHA = "11bd71901bbe5b1630ceea73d27597364c9af683"
GRAFANA = {"name": "Post message to Grafana that deployment to production has started",
           "run": "source secrets/grafana-api-key\n"
                  "python post-grafana-annotation.py --tag deployment-start "
                  '"${{ matrix.federation_member }}" || echo "failed!"\n'}


def cd_like_mybinder(repo: Path) -> None:
    path = repo / ".github" / "workflows" / "cd.yml"
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    on = data.pop(True)
    on["push"]["paths-ignore"] = ["terraform/**", "docs/**", ".github/**",
                                  "!.github/workflows/cd.yml"]
    on["pull_request"] = {"types": ["labeled"]}
    data = {"name": data.pop("name"), "concurrency": "deploy", "on": on,
            "env": {"GCLOUD_SDK_VERION": "559.0.0", "KUBECTL_VERSION": "v1.35.2",
                    "HELM_VERSION": "v3.19.5"}, **data}
    staging, prod = data["jobs"]["staging-deploy"], data["jobs"]["prod-deploy"]
    staging["steps"][0]["uses"] = f"actions/checkout@{CHECKOUT_SHA}"
    staging["steps"].append(dict(GRAFANA))
    prod["steps"].insert(-1, {"name": "Image tags",
                              "run": "chartpress ${{ matrix.chartpress_args || '--skip-build' }}"})
    prod["steps"][-1]["uses"] = f"nick-invision/retry@{RETRY_SHA}"
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def adopt(repo: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["adopt", str(repo), *args])
    assert result.exit_code == 0, result.output
    return result


def test_the_workflow_follows_cd_yml(tmp_path: Path) -> None:
    repo = build(LAYOUTS["2026"], tmp_path / "deploy")
    cd_like_mybinder(repo)
    (repo / ".python-version").write_text("3.13\n")
    result = adopt(repo)
    text = (repo / WORKFLOW_FILE).read_text()
    workflow = yaml.safe_load(text)
    on = workflow.get("on", workflow.get(True))
    ignore = ["terraform/**", "docs/**", ".github/**", f"!{WORKFLOW_FILE}"]
    assert on["push"] == {"branches": ["main"], "paths-ignore": ignore}
    assert on["pull_request"] == {"paths-ignore": ignore}  # shadow only where it matters
    assert "&id" not in text  # no YAML anchors
    # cd.yml's group for deploys: the two workflows never deploy at once
    assert workflow["concurrency"]["group"] == (
        "${{ github.event_name == 'pull_request' && format('shadow-{0}', github.ref) "
        "|| 'deploy' }}")
    assert workflow["env"] == {"GCLOUD_SDK_VERION": "559.0.0", "KUBECTL_VERSION": "v1.35.2",
                               "HELM_VERSION": "v3.19.5"}
    staging, members = workflow["jobs"]["staging"], workflow["jobs"]["members"]

    def step(job: dict[str, Any], uses: str) -> dict[str, Any]:
        return next(s for s in job["steps"] if s.get("uses", "").startswith(uses))

    assert step(members, "azure/setup-helm")["with"] == {"version": "${{ env.HELM_VERSION }}"}
    assert step(members, "azure/setup-kubectl")["with"] == {
        "version": "${{ env.KUBECTL_VERSION }}"}
    assert step(members, "google-github-actions/setup-gcloud")["with"] == {
        "version": "${{ env.GCLOUD_SDK_VERION }}", "install_components": "gke-gcloud-auth-plugin"}
    assert step(staging, "actions/setup-python")["with"] == {"python-version-file":
                                                              ".python-version"}
    # actions at cd.yml's refs: its commit SHA stays one; the others are said in a comment
    assert step(staging, "actions/checkout")["uses"] == f"actions/checkout@{CHECKOUT_SHA}"
    assert "# Not pinned by commit SHA (cd.yml does not pin them either): " in text
    assert "azure/setup-helm" in text.split("# Not pinned")[1].split("\n")[0]
    runs = [s.get("run") for s in members["steps"]]
    assert "chartpress --skip-build" in runs and "chartpress --push" not in runs
    assert "chartpress --push" in [s.get("run") for s in staging["steps"]]
    # the Grafana step, kept as it is (after the deploy, in staging's job) and said so
    names = [s.get("name") for s in staging["steps"]]
    assert names.index(GRAFANA["name"]) == names.index("Deploy") + 1
    kept = staging["steps"][names.index(GRAFANA["name"])]
    assert '"${{ matrix.member }}"' in kept["run"]
    assert f"step {GRAFANA['name']!r} has no federation-deploy equivalent: kept as it is in " \
           "the staging job" in result.stderr
    assert f"pip install federation-deploy=={__version__}" in text
    # the post-deploy tests keep cd.yml's retries and timeout (the hook's attempts, timeout)
    data = yaml.safe_load((repo / "federation.yaml").read_text())
    tests = data["members"]["prod"]["hooks"][-1]
    assert (tests["name"], tests["attempts"], tests["timeout"]) == ("post-deploy-tests", 3, 600)


def test_python_from_cd_yml_without_python_version_and_the_package_option(
        tmp_path: Path) -> None:
    repo = build(LAYOUTS["2025"], tmp_path / "deploy")
    path = repo / ".github" / "workflows" / "cd.yml"
    path.write_text(path.read_text().replace(
        "      - uses: actions/checkout@v4\n",
        "      - uses: actions/checkout@v4\n      - uses: actions/setup-python@v5\n"
        "        with:\n          python-version: \"3.11\"\n", 1))
    result = adopt(repo, "--package", "federation-deploy @ git+https://example.org/fd@v9")
    text = (repo / WORKFLOW_FILE).read_text()
    assert "python-version: '3.11'" in text
    assert "# No .python-version: Python 3.11 (cd.yml's)." in text
    assert "pip install federation-deploy @ git+https://example.org/fd@v9" in text
    assert "installing federation-deploy @ git+https://example.org/fd@v9" in result.stderr
    assert "# cd.yml has no concurrency group: deploys here use `deploy`" in text
    assert "cd.yml pins no version of helm, kubectl" in text


def test_members_cd_yml_does_not_deploy_stay_out_of_cd(tmp_path: Path) -> None:
    repo = build(LAYOUTS["2025"], tmp_path / "deploy")
    path = repo / ".github" / "workflows" / "cd.yml"
    # hetzner-gesis commented out of cd.yml's matrix; deploy.py and its config remain
    path.write_text(path.read_text().replace("          - federation_member: hetzner-gesis\n"
                                             "            release_name: gesis\n",
                                             "          # - federation_member: hetzner-gesis\n"))
    result = adopt(repo)
    data = yaml.safe_load((repo / "federation.yaml").read_text())
    assert data["ci"]["manual"] == ["hetzner-gesis"]
    assert "hetzner-gesis" not in data["ci"]["order"]
    assert ("member hetzner-gesis (KUBECONFIG_CLUSTERS, config/hetzner-gesis.yaml) is not "
            "deployed by .github/workflows/cd.yml: adopted under ci.manual") in result.stderr
    workflow = (repo / WORKFLOW_FILE).read_text()
    assert "hetzner-gesis" not in workflow
    matrix = CliRunner().invoke(cli, ["--config-dir", str(repo), "ci-matrix"])
    assert matrix.exit_code == 0, matrix.output
    assert "hetzner-gesis" not in matrix.stdout and "hetzner-2i2c" in matrix.stdout
    validate = CliRunner().invoke(cli, ["--config-dir", str(repo), "validate",
                                        "--without-secrets"])
    assert validate.exit_code == 0, validate.output
