"""The GitHub Actions workflows: valid against the workflow schema (offline) and shaped right."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from federation_deploy.cli.ci_matrix import ci_matrix
from federation_deploy.config import load_federation

REPO = Path(__file__).resolve().parent.parent
FIXTURE_CONFIG = REPO / "tests" / "fixtures" / "federation" / "config"
WORKFLOWS = REPO / ".github" / "workflows"
NAMES = ("ci", "cd", "terraform", "ramp", "watch-dependencies", "traffic", "staging", "rollout",
         "drift")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)

# Jobs that talk to a cloud get an OIDC token; nothing else may ask for one.
OIDC_ACTIONS = ("google-github-actions/auth", "aws-actions/configure-aws-credentials")


def load(name: str) -> dict[str, Any]:
    data = YAML(typ="safe", pure=True).load((WORKFLOWS / f"{name}.yml").read_text())
    assert isinstance(data, dict)
    return data


def jobs(name: str) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = load(name)["jobs"]
    return result


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = job.get("steps", [])
    return result


def scripts(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in steps(job))


def uses(job: dict[str, Any]) -> list[str]:
    return [str(s["uses"]) for s in steps(job) if "uses" in s]


def all_jobs() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name in NAMES:
        for job_id, job in jobs(name).items():
            yield name, job_id, job


def offline_prefix() -> list[str]:
    """Run without a network where the kernel lets us (a user namespace with no interfaces)."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        return [unshare, "-rn"]
    return []


# --- the schema, offline -------------------------------------------------------------------


def test_every_workflow_is_there() -> None:
    assert sorted(p.stem for p in WORKFLOWS.glob("*.yml")) == sorted(NAMES)


@pytest.mark.slow  # check-jsonschema over every workflow
@pytest.mark.parametrize("schema", ["vendor.github-workflows",
                                    "custom.github-workflows-require-timeout"])
def test_workflows_match_the_github_schema_offline(schema: str) -> None:
    # the schema ships inside check-jsonschema; no network (and a dead proxy, in case the
    # sandbox below is unavailable) proves nothing is fetched
    dead = "http://127.0.0.1:9"
    env = {**os.environ, "HTTP_PROXY": dead, "HTTPS_PROXY": dead, "http_proxy": dead,
           "https_proxy": dead, "NO_PROXY": "", "no_proxy": ""}
    files = [str(WORKFLOWS / f"{name}.yml") for name in NAMES]
    argv = [*offline_prefix(), sys.executable, "-m", "check_jsonschema",
            "--builtin-schema", schema, *files]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok -- validation done" in proc.stdout


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    proc = subprocess.run(
        [*offline_prefix(), sys.executable, "-m", "check_jsonschema",
         "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr


# --- shell and secrets ----------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_every_run_script_is_valid_bash() -> None:
    for name, job_id, job in all_jobs():
        for step in steps(job):
            if "run" not in step:
                continue
            script = EXPRESSION.sub("EXPR", str(step["run"]))
            proc = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
            assert proc.returncode == 0, f"{name}/{job_id}/{step.get('name')}: {proc.stderr}"


@pytest.mark.parametrize("name", NAMES)
def test_every_step_runs_bash_with_pipefail(name: str) -> None:
    assert load(name)["defaults"]["run"]["shell"] == "bash"


def test_no_expression_inside_a_script() -> None:
    """Secrets and event data reach scripts through env only: never interpolated into the
    script text (where they could be echoed, or inject commands)."""
    for name, job_id, job in all_jobs():
        for step in steps(job):
            run = str(step.get("run", ""))
            assert "${{" not in run, f"{name}/{job_id}/{step.get('name')}"
            assert not re.search(r"^\s*set -[a-z]*x", run, re.M), "xtrace would echo secrets"
            assert "printenv" not in run and not re.search(r"^\s*env\s*$", run, re.M)


def test_secrets_only_in_env_and_with() -> None:
    for name in NAMES:
        text = (WORKFLOWS / f"{name}.yml").read_text()
        for line in text.splitlines():
            if "secrets." in line or "secrets[" in line:
                key = line.strip().split(":", 1)[0]
                # an env or with key (digits too: KUBECONFIG_OVH2 in rollout.yml)
                assert re.fullmatch(r"[A-Za-z0-9_-]+", key), f"{name}: {line.strip()}"
    unlock = scripts(jobs("cd")["members"])
    assert "umask 077" in unlock and 'rm -f "$key_file"' in unlock
    assert "::add-mask::" in unlock  # credentials derived from a kubeconfig secret


def test_each_kubeconfig_member_has_its_secret_named() -> None:
    """Secrets are named one by one (no computed lookup, which hands the job every secret):
    adding a kubeconfig member means adding its term to the MEMBER_KUBECONFIG expressions."""
    fed = load_federation(REPO / "config")
    kubeconfig = sorted(m.name for m in fed.members.values() if m.cloud == "kubeconfig")
    assert kubeconfig, "the federation has a kubeconfig member to check"
    found = {}
    for name, matrix_key in (("cd", "matrix.member"), ("drift", "matrix.member"),
                             ("ramp", "matrix.redirector.member"),
                             ("traffic", "matrix.redirector.member"),
                             ("staging", "matrix.member")):
        for job_id, job in jobs(name).items():
            for step in steps(job):
                expression = step.get("env", {}).get("MEMBER_KUBECONFIG")
                if expression is None:
                    continue
                terms = re.findall(
                    rf"{re.escape(matrix_key)} == '([\w-]+)' && secrets\.(\w+) \|\|", expression)
                found[(name, job_id)] = terms
                assert sorted(member for member, _ in terms) == kubeconfig, (name, job_id)
                for member, secret in terms:
                    assert secret == "KUBECONFIG_" + member.upper().replace("-", "_")
    assert sorted(found) == [("cd", "members"), ("cd", "staging"), ("drift", "drift"),
                             ("ramp", "advance"), ("staging", "staging"), ("traffic", "change")]


# --- permissions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_top_level_permissions_are_read_only(name: str) -> None:
    assert load(name)["permissions"] == {"contents": "read"}


def test_job_permissions_are_minimal() -> None:
    for name, job_id, job in all_jobs():
        perms = job.get("permissions", {})
        assert isinstance(perms, dict), f"{name}/{job_id}: no read-all/write-all"
        writes = {k for k, v in perms.items() if v == "write"}
        if any(u.startswith(OIDC_ACTIONS) for u in uses(job)):
            assert "id-token" in writes, f"{name}/{job_id} authenticates with OIDC"
        else:
            assert "id-token" not in writes, f"{name}/{job_id} needs no OIDC token"
        allowed = {"id-token"}
        if (name, job_id) in (("ramp", "advance"), ("traffic", "change"), ("rollout", "rollout")):
            allowed.add("contents")
        if (name, job_id) in (("terraform", "comment"), ("ci", "plan")):
            allowed.add("pull-requests")
        if (name, job_id) == ("drift", "issues"):
            allowed.add("issues")
        if (name, job_id) == ("watch-dependencies", "bump"):
            allowed |= {"contents", "pull-requests"}
        assert writes <= allowed, f"{name}/{job_id}: {writes}"


def test_actions_pinned_to_commits() -> None:
    # a tag can be moved to other code; a commit cannot (the version is in a comment, checked by
    # tests/scripts/test_lint_workflows.py)
    for name, job_id, job in all_jobs():
        for action in uses(job):
            ref = action.partition("@")[2]
            assert re.fullmatch(r"[0-9a-f]{40}", ref), f"{name}/{job_id}: {action}"


# --- pins agree with the repository ---------------------------------------------------------


def test_tool_pins_agree_with_the_repository() -> None:
    fed = load_federation(REPO / "config")
    helm = re.search(r'^HELM_VERSION = "(.+)"', (REPO / "scripts/fetch_helm.py").read_text(), re.M)
    assert helm is not None
    for name in NAMES:
        env = load(name).get("env", {})
        if "TERRAFORM_VERSION" in env:
            assert env["TERRAFORM_VERSION"] == fed.terraform_version, name
        if "HELM_VERSION" in env:
            assert env["HELM_VERSION"] == helm.group(1), name
        if "KUBECTL_VERSIONS" in env:
            kubectl = json.loads(env["KUBECTL_VERSIONS"])
            for member in fed.members.values():
                if member.deployable and member.kubernetes_version:
                    assert member.kubernetes_version in kubectl, (name, member.name)
            assert all(v.startswith(f"v{k}.") for k, v in kubectl.items())


def test_ci_matrix_flags_used_by_workflows_exist() -> None:
    known = {opt for param in ci_matrix.params for opt in getattr(param, "opts", [])}
    for name, job_id, job in all_jobs():
        for line in scripts(job).splitlines():
            if "ci-matrix" in line:
                flags = re.findall(r"(?<=\s)--[a-z-]+", line.split("ci-matrix", 1)[1])
                assert set(flags) <= known, f"{name}/{job_id}: {line.strip()}"


# --- ci.yml ---------------------------------------------------------------------------------


def test_ci_runs_on_pull_requests_everything_asked() -> None:
    assert "pull_request" in load("ci")["on"]
    ci = jobs("ci")
    text = "\n".join(scripts(j) for j in ci.values())
    assert "make test" in scripts(ci["test"])
    assert "federation-deploy validate" in text
    assert 'federation-deploy render "$member"' in text
    assert 'federation-deploy deploy "$MEMBER" --dry-run' in scripts(ci["dry-run"])
    assert ci["dry-run"]["strategy"]["fail-fast"] is False
    tf = scripts(ci["terraform"])
    assert "terraform fmt -check -recursive" in tf and "validate" in tf
    assert "-lockfile=readonly" in tf


def test_ci_kind_job_deploys_the_redirector_for_real() -> None:
    kind = jobs("ci")["kind"]
    assert any(u.startswith("helm/kind-action@") for u in uses(kind))
    text = scripts(kind)
    for expected in ("docker build", "kind load docker-image",
                     'federation-deploy render gke --release "$RELEASE"',
                     "helm upgrade --install", "federation_deploy/charts/federation-redirect",
                     "rollout status", "port-forward", "/health", "/active_hosts"):
        assert expected in text, expected


# --- cd.yml ---------------------------------------------------------------------------------


def test_cd_one_deploy_at_a_time_never_cancelled() -> None:
    cd = load("cd")
    assert cd["on"]["push"]["branches"] == ["main"]
    assert cd["concurrency"]["group"]
    assert cd["concurrency"]["cancel-in-progress"] is False


def test_cd_staging_first_then_the_others() -> None:
    cd = jobs("cd")
    matrix_job, staging, members = cd["matrix"], cd["staging"], cd["members"]
    assert matrix_job["if"] == "github.ref == 'refs/heads/main'"
    assert "ci-matrix --changed-since" in scripts(matrix_job)
    assert steps(matrix_job)[0]["with"]["fetch-depth"] == 0
    assert staging["needs"] == "matrix"
    assert "staging" in members["needs"]
    # the others never run after a failed staging deploy, but do when staging was unchanged
    condition = " ".join(members["if"].split())
    assert "needs.staging.result == 'success' || needs.staging.result == 'skipped'" in condition
    assert "outputs.staging)" in staging["strategy"]["matrix"]
    assert "outputs.others)" in members["strategy"]["matrix"]
    for job in (staging, members):
        assert job["strategy"]["fail-fast"] is False
        text = scripts(job)
        assert 'federation-deploy deploy "$MEMBER" --yes' in text
        assert 'federation-deploy verify "$MEMBER"' in text
        assert text.index("git-crypt unlock") < text.index("federation-deploy deploy")
        actions = uses(job)
        assert any(a.startswith("azure/setup-helm@") for a in actions)
        assert any(a.startswith("azure/setup-kubectl@") for a in actions)
        assert any(a.startswith("google-github-actions/setup-gcloud@") for a in actions)
        assert "awscli-exe-linux-x86_64-${AWS_CLI_VERSION}.zip" in text
        helm = next(s for s in steps(job) if s.get("uses", "").startswith("azure/setup-helm@"))
        assert helm["with"]["version"] == "${{ env.HELM_VERSION }}"
    assert steps(staging) == steps(members), "staging deploys exactly as the others do"


def test_cd_matrix_splits_staging_from_the_others(tmp_path: Path) -> None:
    """The jq filters of the matrix job, run on the real ci-matrix output."""
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("needs jq")
    from click.testing import CliRunner

    from federation_deploy.cli.main import cli

    result = CliRunner().invoke(cli, ["--config-dir", str(FIXTURE_CONFIG), "ci-matrix"])
    assert result.exit_code == 0, result.stderr
    script = next(s["run"] for s in steps(jobs("cd")["matrix"]) if s.get("id") == "matrix")
    filters = dict(re.findall(r'echo "(\w+)=\$\(jq (?:-c )?\'(.+?)\' matrix.json\)"', script))
    outputs = {key: json.loads(subprocess.run([jq, "-c", expr], input=result.stdout, text=True,
                                              capture_output=True, check=True).stdout)
               for key, expr in filters.items()}
    assert [e["member"] for e in outputs["staging"]["include"]] == ["staging"]
    assert [e["member"] for e in outputs["others"]["include"]] == ["gke", "ovh2", "curvenote"]
    assert (outputs["staging_count"], outputs["others_count"]) == (1, 3)


# --- terraform.yml --------------------------------------------------------------------------


def test_terraform_plans_pull_requests_and_applies_behind_approval() -> None:
    wf = load("terraform")
    assert "terraform/**" in wf["on"]["pull_request"]["paths"]
    assert wf["on"]["push"]["branches"] == ["main"]
    tf = jobs("terraform")
    assert "ci-matrix --terraform --changed-since" in scripts(tf["stacks"])
    plan = scripts(tf["plan"])
    assert 'federation-deploy terraform check "$MEMBER"' in plan
    assert 'federation-deploy terraform plan "$MEMBER"' in plan
    comment = tf["comment"]
    assert any(u.startswith("actions/github-script@") for u in uses(comment))
    assert "github.event_name == 'pull_request'" in comment["if"]
    apply = tf["apply"]
    assert apply["environment"] == "terraform-apply"
    assert "plan" in apply["needs"]
    assert "github.event_name == 'push'" in apply["if"]
    download = next(s for s in steps(apply) if s.get("uses", "").startswith(
        "actions/download-artifact@"))
    assert download["with"]["name"] == "plan-${{ matrix.member }}"
    # the saved plan travels encrypted: artifacts are readable by whoever reads the repository
    assert "openssl enc -aes-256-cbc" in scripts(tf["plan"])
    assert "openssl enc -d -aes-256-cbc" in scripts(apply)
    assert 'federation-deploy terraform apply "$MEMBER" --yes' in scripts(apply)
    assert "cancel-in-progress" in wf["concurrency"]


# --- ramp.yml -------------------------------------------------------------------------------


def test_weight_writers_share_one_concurrency_group() -> None:
    """cd.yml and traffic.yml share `weights`; the scheduled writers (ramp.yml, rollout.yml)
    have their own group: GitHub keeps one pending run per group and cancels the older
    pending one, so a tick queued in `weights` would cancel a pending CD run. They skip a
    tick while CD is queued or running instead."""
    cd, ramp, traffic, rollout = load("cd"), load("ramp"), load("traffic"), load("rollout")
    assert cd["concurrency"]["group"] == "weights"
    assert traffic["concurrency"] == {"group": "weights", "cancel-in-progress": False}
    for scheduled in (ramp, rollout):
        assert scheduled["concurrency"] == {"group": "weights-scheduled",
                                            "cancel-in-progress": False}
    assert "--workflow cd.yml" in scripts(jobs("ramp")["ramping"])
    assert "--workflow cd.yml" in scripts(jobs("rollout")["rollout"])


def test_rollout_runs_after_a_bump_merges_with_the_weight_writers() -> None:
    """rollout.yml: a push to main touching federation.yaml (a merged `charts bump`) resumes
    the rollout recorded there, in the weight writers' group, never cancelled; its config
    changes are committed back and a rollback fails the job after that commit."""
    wf = load("rollout")
    assert wf["on"]["push"] == {"branches": ["main"], "paths": ["config/federation.yaml"]}
    assert wf["on"]["schedule"]  # ring 1 one step per run, like ramp.yml
    job = jobs("rollout")["rollout"]
    by_id = {s.get("id"): s for s in steps(job)}
    # no --resume: a rollout paused by a rollback is a red job until a person resumes it
    assert "federation-deploy rollout --advance --publish helm --yes" in by_id["rollout"]["run"]
    assert "--resume" not in by_id["rollout"]["run"]
    # a config error fails the job; only "no rollout in progress" reads as nothing to do
    recorded = by_id["recorded"]["run"]
    assert "2>/dev/null" not in recorded and "no rollout in progress" in recorded
    # a freeze is a notice, not a red job every half hour
    assert "freeze --check" in steps(job)[-1]["run"] and "::notice" in steps(job)[-1]["run"]
    assert by_id["rollout"]["continue-on-error"] is True
    names = [s.get("name", "") for s in steps(job)]
    commit = steps(job)[names.index("Commit the config change back")]
    assert commit["if"].startswith("always()")
    assert steps(job)[-1]["if"] == "steps.rollout.outcome == 'failure'"
    # every kubeconfig member of the live config has its secret named in the job
    fed = load_federation(REPO / "config")
    written = next(s for s in steps(job) if s.get("name", "").startswith("Write the kubeconfig"))
    for member in (m for m in fed.members.values() if m.cloud == "kubeconfig"):
        secret = "KUBECONFIG_" + member.name.upper().replace("-", "_")
        assert written["env"][secret] == "${{ secrets." + secret + " }}"


def test_ramp_scheduled_and_manual() -> None:
    wf = load("ramp")
    assert wf["on"]["schedule"] == [{"cron": "*/30 * * * *"}]
    member = wf["on"]["workflow_dispatch"]["inputs"]["member"]
    assert member["required"] is False
    assert wf["concurrency"]["cancel-in-progress"] is False


def test_ramp_advances_commits_and_fails_on_rollback() -> None:
    ramp = jobs("ramp")
    assert "ci-matrix --ramping" in scripts(ramp["ramping"])
    assert "--workflow cd.yml" in scripts(ramp["ramping"])  # no ramp step during a deploy
    advance = ramp["advance"]
    assert advance["permissions"]["contents"] == "write"
    assert advance["strategy"]["max-parallel"] == 1
    by_id = {s.get("id"): s for s in steps(advance)}
    run = by_id["ramp"]
    assert 'federation-deploy ramp "$MEMBER" --advance --publish helm --yes' in run["run"]
    assert '--redirector-url "$REDIRECTOR_URL"' in run["run"]
    assert run["continue-on-error"] is True
    names = [s.get("name", "") for s in steps(advance)]
    commit = steps(advance)[names.index("Commit the config change back")]
    assert commit["if"].startswith("always()")
    assert 'git diff --quiet -- "$CONFIG_FILE"' in commit["run"]
    assert 'message="ramp: $MEMBER to step $step/$steps ($share%)"' in commit["run"]
    last = steps(advance)[-1]
    assert last["if"] == "steps.ramp.outcome == 'failure'" and "exit 1" in last["run"]


# --- watch-dependencies.yml -----------------------------------------------------------------


def test_watch_dependencies_opens_one_pull_request_per_chart() -> None:
    wf = load("watch-dependencies")
    assert wf["on"]["schedule"] and "workflow_dispatch" in wf["on"]
    assert wf["concurrency"]["cancel-in-progress"] is False
    watch = jobs("watch-dependencies")
    outdated = watch["outdated"]
    assert "federation-deploy charts outdated -o json" in scripts(outdated)
    assert outdated["permissions"] == {"contents": "read"}
    bump = watch["bump"]
    assert bump["strategy"]["matrix"] == "${{ fromJSON(needs.outdated.outputs.matrix) }}"
    assert bump["strategy"]["fail-fast"] is False
    assert bump["env"]["BRANCH"] == "bump/chart-${{ matrix.chart }}"  # one branch per chart
    text = scripts(bump)
    assert 'federation-deploy charts bump "$CHART" "$TO"' in text
    assert "UPDATE_GOLDEN=1" in text and "tests/values/test_golden.py" in text
    # the refreshed golden files are committed from where the golden test keeps them
    added = re.search(r'git add -- "\$CONFIG_FILE" (\S+)', text)
    assert added and (REPO / added.group(1)).is_dir(), added
    assert "gh pr create" in text and "gh pr edit" in text and "Changelog: $CHANGELOG" in text
    # pushes and pull requests made with the workflow's own token start no workflows (no CI on
    # the bump): a named secret does both, and its absence fails the job with an error
    assert "github.token" not in (WORKFLOWS / "watch-dependencies.yml").read_text()
    opener = next(s for s in steps(bump) if "gh pr create" in str(s.get("run", "")))
    assert opener["env"]["GH_TOKEN"] == "${{ secrets.DEPENDENCY_BOT_TOKEN }}"
    assert opener["env"]["PUSH_TOKEN"] == "${{ secrets.DEPENDENCY_BOT_TOKEN }}"
    assert bump["permissions"] == {"contents": "read"}
    check = steps(bump)[0]
    assert check["env"]["HAS_TOKEN"] == "${{ secrets.DEPENDENCY_BOT_TOKEN != '' }}"
    assert "::error" in check["run"] and "exit 1" in check["run"]
    for job in watch.values():
        for step in steps(job):
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
    # a repository that could not be asked fails the run, after the others were bumped
    unreachable = watch["unreachable"]
    assert unreachable["if"] == "needs.outdated.outputs.failed != '0'"
    assert "exit 1" in scripts(unreachable)


@pytest.mark.parametrize("has_token", ["true", "false"])
def test_watch_dependencies_bump_fails_clearly_without_its_token(has_token: str) -> None:
    """The bump job's first step, run by bash as the runner would, with and without the secret."""
    check = steps(jobs("watch-dependencies")["bump"])[0]
    env = {"PATH": os.environ["PATH"], "HAS_TOKEN": has_token, "CHART": "binderhub"}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", check["run"]], env=env,
                          capture_output=True, text=True)
    if has_token == "true":
        assert done.returncode == 0 and done.stdout == ""
    else:
        assert done.returncode == 1
        assert done.stdout.startswith("::error title=DEPENDENCY_BOT_TOKEN is not set::")
        assert "binderhub" in done.stdout and "Pull requests" in done.stdout


def test_watch_dependencies_jq_reads_charts_outdated(tmp_path: Path) -> None:
    """The matrix filter of the outdated job, run on a real `charts outdated -o json` report."""
    jq = shutil.which("jq")
    if jq is None:
        pytest.skip("needs jq")
    from federation_deploy.config.chart_versions import ChartStatus, report_json

    report = report_json([
        ChartStatus("binderhub", "binderhub", "https://example.org/charts", "1.0.0-0.dev.1",
                    newest="1.0.0-0.dev.2", changelog="https://example.org/CHANGES.md"),
        ChartStatus("cert-manager", "cert-manager", "https://example.org/jetstack", "v1.12.3",
                    newest="v1.12.3"),
        ChartStatus("gone", "gone", "https://127.0.0.1:9", "1.0.0", error="cannot reach it"),
    ])
    script = next(s["run"] for s in steps(jobs("watch-dependencies")["outdated"])
                  if s.get("id") == "outdated")
    matrix_filter = re.search(r"jq -c '(\{include:.+?)' \\\n\s+charts.json", script, re.S)
    assert matrix_filter is not None
    matrix = json.loads(subprocess.run([jq, "-c", matrix_filter.group(1)], input=report,
                                       text=True, capture_output=True, check=True).stdout)
    assert matrix == {"include": [{"chart": "binderhub", "from": "1.0.0-0.dev.1",
                                   "to": "1.0.0-0.dev.2",
                                   "changelog": "https://example.org/CHANGES.md",
                                   "source": "https://example.org/charts"}]}


# --- traffic.yml ----------------------------------------------------------------------------


def test_traffic_is_dispatched_with_member_action_reason_weight() -> None:
    inputs = load("traffic")["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"member", "action", "reason", "weight"}
    assert inputs["member"]["required"] is True
    assert inputs["action"]["type"] == "choice"
    assert inputs["action"]["options"] == ["drain", "restore", "set"]
    assert list(load("traffic")["on"]) == ["workflow_dispatch"]


def test_traffic_runs_the_command_and_commits_like_ramp() -> None:
    traffic = jobs("traffic")
    find = traffic["redirector"]
    assert find["if"] == "github.ref == 'refs/heads/main'"
    assert "ci-matrix --redirector" in scripts(find)
    assert find["permissions"] == {"contents": "read"}  # inputs checked before credentials
    change = traffic["change"]
    assert change["strategy"]["matrix"] == "${{ fromJSON(needs.redirector.outputs.matrix) }}"
    # inputs reach the scripts through env only
    assert change["env"]["REASON"] == "${{ inputs.reason }}"
    by_id = {s.get("id"): s for s in steps(change)}
    run = by_id["change"]["run"]
    for command in ('federation-deploy traffic drain "$MEMBER" --reason "$REASON"',
                    'federation-deploy traffic restore "$MEMBER"',
                    'federation-deploy traffic set "$MEMBER" "${args[@]}"'):
        assert command in run
    assert "common=(--publish helm --yes --redirector-url \"$REDIRECTOR_URL\")" in run
    assert by_id["change"]["continue-on-error"] is True
    for step in steps(change):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
    names = [s.get("name", "") for s in steps(change)]
    commit = steps(change)[names.index("Commit the config change back")]
    ramp_commit = next(s for s in steps(jobs("ramp")["advance"])
                       if s.get("name") == "Commit the config change back")
    # the same push pattern: a step-scoped token through a credential helper
    assert commit["env"]["PUSH_TOKEN"] == ramp_commit["env"]["PUSH_TOKEN"] == "${{ github.token }}"
    helper = next(line for line in ramp_commit["run"].splitlines() if "push_auth=(" in line)
    assert helper in commit["run"].splitlines()
    assert 'git diff --quiet -- "$CONFIG_FILE"' in commit["run"]
    assert 'message="traffic: drain $MEMBER ($REASON)"' in commit["run"]
    last = steps(change)[-1]
    assert last["if"] == "steps.change.outcome == 'failure'" and "exit 1" in last["run"]


def test_traffic_uses_the_same_pinned_actions_as_ramp() -> None:
    ramp_actions = set(uses(jobs("ramp")["advance"])) | set(uses(jobs("ramp")["ramping"]))
    traffic = jobs("traffic")
    traffic_actions = set(uses(traffic["change"])) | set(uses(traffic["redirector"]))
    assert traffic_actions == ramp_actions


# --- the plan comment and the deploy labels (issue 27) --------------------------------------


def test_ci_posts_the_plan_as_one_comment_without_secrets() -> None:
    plan = jobs("ci")["plan"]
    text = scripts(plan)
    assert 'federation-deploy plan --changed-since "origin/$BASE_REF" --output markdown' in text
    assert "federation-deploy pr comment --body-file plan.md" in text
    assert "$GITHUB_STEP_SUMMARY" in text
    assert steps(plan)[0]["with"]["fetch-depth"] == 0
    assert "secrets." not in (WORKFLOWS / "ci.yml").read_text()
    assert "pull_request_target" not in load("ci")["on"]
    assert plan["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_ci_caps_the_plan_in_the_summary_keeps_it_whole_and_replaces_a_failed_one(
        tmp_path: Path) -> None:
    plan = jobs("ci")["plan"]
    run_plan = next(s for s in steps(plan) if "federation-deploy plan" in str(s.get("run")))
    keep = next(s for s in steps(plan) if str(s.get("uses", "")).startswith(
        "actions/upload-artifact@"))
    assert keep["with"]["name"] == "plan" and keep["with"]["path"] == "plan.md"
    assert keep["if"] == "${{ !cancelled() }}"
    failed = steps(plan)[-1]
    assert failed["if"] == "${{ failure() }}"
    assert "plan failed: see the job log" in failed["run"]
    assert "federation-deploy pr comment --body-file plan-failed.md" in failed["run"]
    # the step's script, run by bash with a stand-in plan of 1.5 MB: the summary is capped
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "federation-deploy").write_text(
        "#!/bin/sh\nhead -c 1500000 /dev/zero | tr '\\0' 'x'\n")
    (bindir / "federation-deploy").chmod(0o755)
    summary = tmp_path / "summary.md"
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "GITHUB_STEP_SUMMARY": str(summary),
           "BASE_REF": "main", **{k: v for k, v in run_plan["env"].items() if k != "BASE_REF"}}
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", run_plan["run"]],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = summary.read_text()
    assert len(text.encode()) < 1024 * 1024
    assert text.rstrip().endswith("the whole plan is the artifact named plan of this run.**")
    assert (tmp_path / "plan.md").stat().st_size == 1500000


def test_cd_honours_deploy_skip() -> None:
    matrix = jobs("cd")["matrix"]
    skip = next(s for s in steps(matrix) if s.get("id") == "skip")
    assert 'federation-deploy pr labels "$COMMIT"' in skip["run"]
    assert "grep -qx 'deploy:skip'" in skip["run"]
    compute = next(s for s in steps(matrix) if s.get("id") == "matrix")
    assert compute["env"]["SKIP"] == "${{ steps.skip.outputs.skip }}"
    assert """echo '{"include": []}' > matrix.json""" in compute["run"]
    assert matrix["permissions"]["pull-requests"] == "read"


def test_staging_label_deploys_the_head_behind_an_environment() -> None:
    workflow = load("staging")
    assert workflow["on"] == {"pull_request": {"types": ["labeled", "synchronize"]}}
    staging_jobs = jobs("staging")
    assert "'deploy:staging'" in staging_jobs["matrix"]["if"]
    deploy = staging_jobs["staging"]
    assert deploy["environment"] == "staging"
    assert "fork != 'true'" in deploy["if"]
    assert steps(deploy)[0]["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    # it deploys as CD's staging job does, after its own checkout and install
    assert steps(deploy)[3:] == steps(jobs("cd")["staging"])[3:]


def test_drift_daily_and_on_demand_one_issue_per_member() -> None:
    on = load("drift")["on"]
    assert "schedule" in on and "workflow_dispatch" in on
    drift = jobs("drift")
    assert drift["drift"]["strategy"]["matrix"] == "${{ fromJSON(needs.members.outputs.matrix) }}"
    check = scripts(drift["drift"])
    assert 'federation-deploy drift "$MEMBER" -o json' in check
    # the token that writes issues is only in the issues job, which holds no cloud credential
    assert "issues" not in drift["drift"]["permissions"]
    assert drift["issues"]["permissions"] == {"contents": "read", "issues": "write"}
    assert not any(u.startswith(OIDC_ACTIONS) for u in uses(drift["issues"]))
    keep = next(s for s in steps(drift["issues"]) if "--github-issue" in str(s.get("run", "")))
    assert keep["env"] == {"GITHUB_TOKEN": "${{ github.token }}"}
    assert "GITHUB_TOKEN" not in (WORKFLOWS / "drift.yml").read_text().split("issues:\n")[0]


def test_staging_members_are_the_base_commits(tmp_path: Path) -> None:
    """The staging set is computed from the BASE commit by the base's code; the matrix step,
    run by bash on a base and a pull-request head whose ci.staging lists a prod member, refuses
    it (a pull request cannot get prod members deployed with staging's credentials)."""
    if shutil.which("jq") is None:
        pytest.skip("needs jq")
    matrix = jobs("staging")["matrix"]
    checkouts = [s for s in steps(matrix) if str(s.get("uses", "")).startswith("actions/checkout@")]
    assert checkouts[0]["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert "path" not in checkouts[0]["with"]  # installed from (pip install .) and read: base
    assert checkouts[1]["with"] == {"persist-credentials": False, "path": "pr-head",
                                    "ref": "${{ github.event.pull_request.head.sha }}"}
    step = next(s for s in steps(matrix) if s.get("id") == "matrix")
    fixture = FIXTURE_CONFIG.parent

    def run_step(head_extra: str) -> subprocess.CompletedProcess[str]:
        work = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
        shutil.copytree(fixture, work)
        shutil.copytree(fixture, work / "pr-head")
        federation = work / "pr-head" / "config" / "federation.yaml"
        federation.write_text(federation.read_text() + head_extra)
        env = {"PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               "FEDERATION_DEPLOY_CONFIG_DIR": "config", "HEAD_REPO": "o/r",
               "GITHUB_REPOSITORY": "o/r", "GITHUB_OUTPUT": str(work / "out"),
               "GITHUB_STEP_SUMMARY": str(work / "summary")}
        return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], cwd=work,
                              env=env, capture_output=True, text=True)

    same = run_step("")
    assert same.returncode == 0, same.stdout + same.stderr
    widened = run_step("\nci:\n  staging: [staging, gke]\n")
    assert widened.returncode == 1
    assert "::error title=staging members changed::" in widened.stdout
    assert '["staging"] at the base, ["gke","staging"] in the pull request' in widened.stdout


FAKE_GH = r'''#!/usr/bin/env python3
"""gh as the CD finder calls it: canned runs and jobs (FAKE_GH_DATA), filtered by jq."""
import json, os, subprocess, sys
args = sys.argv[1:]
data = json.load(open(os.environ["FAKE_GH_DATA"]))
expr = args[args.index("--jq") + 1]
if args[:2] == ["run", "list"]:
    doc = data["runs"]
elif args[:2] == ["run", "view"]:
    doc = {"jobs": data["jobs"][args[2]]}
else:
    sys.exit(f"unexpected gh {args}")
sys.stdout.write(subprocess.run(["jq", "-r", expr], input=json.dumps(doc), text=True,
                                capture_output=True, check=True).stdout)
'''


@pytest.mark.parametrize("frozen", [True, False])
def test_cd_during_a_freeze_deploys_nothing_as_a_notice(tmp_path: Path, frozen: bool) -> None:
    """A freeze in force: the matrix job's freeze step (run by bash with the real
    federation-deploy on a frozen copy of the fixture) says so as a notice and exits 0; the
    matrix is empty (no red deploy job per member) and the baseline job is skipped (the first
    run after the freeze deploys the changes). Not frozen: nothing said, the matrix computed."""
    if shutil.which("jq") is None or shutil.which("federation-deploy") is None:
        pytest.skip("needs jq and federation-deploy on PATH")
    cd = jobs("cd")
    shutil.copytree(FIXTURE_CONFIG.parent, tmp_path / "federation")
    config = tmp_path / "federation" / "config"
    if frozen:
        text = (config / "federation.yaml").read_text()
        (config / "federation.yaml").write_text(text.replace("members:", (
            "freeze:\n  reason: upgrade week\n  who: ada\n  until: '2999-01-01T00:00:00Z'\n"
            "members:"), 1))
    out, summary = tmp_path / "out", tmp_path / "summary"
    env = {"PATH": os.environ["PATH"], "FEDERATION_DEPLOY_CONFIG_DIR": str(config),
           "GITHUB_OUTPUT": str(out), "GITHUB_STEP_SUMMARY": str(summary)}
    step = next(s for s in steps(cd["matrix"]) if s.get("id") == "freeze")
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", step["run"]], cwd=tmp_path,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    if frozen:
        assert out.read_text() == "frozen=true\n"
        assert done.stdout.startswith("::notice title=federation frozen::not deploying: frozen "
                                      "until 2999-01-01T00:00:00Z by ada: upgrade week")
        assert "### Not deployed: the federation is frozen" in summary.read_text()
    else:
        assert not out.exists() and done.stdout == ""
    assert cd["matrix"]["outputs"]["frozen"] == "${{ steps.freeze.outputs.frozen }}"
    assert "needs.matrix.outputs.frozen != 'true'" in cd["baseline"]["if"]
    matrix = next(s for s in steps(cd["matrix"]) if s.get("id") == "matrix")
    assert matrix["env"]["FROZEN"] == "${{ steps.freeze.outputs.frozen }}"
    out.unlink(missing_ok=True)
    env.update(SKIP="", SINCE="", FROZEN="true" if frozen else "")
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", matrix["run"]], cwd=tmp_path,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    counts = dict(line.split("=", 1) for line in out.read_text().splitlines()
                  if line.split("=", 1)[0].endswith("_count"))
    assert counts == ({"staging_count": "0", "others_count": "0"} if frozen
                      else {"staging_count": "1", "others_count": "3"})


def test_cd_a_deploy_skip_run_is_no_deploy_baseline(tmp_path: Path) -> None:
    """A deploy:skip run succeeds but skips the `deploy baseline` job; the finder, run by bash
    with a stand-in gh over three successful runs (newest: a skip), takes the last run whose
    baseline job succeeded, so the changes of the runs after it are not lost."""
    if shutil.which("jq") is None:
        pytest.skip("needs jq")
    cd = jobs("cd")
    baseline = cd["baseline"]
    assert baseline["name"] == "deploy baseline"
    assert set(baseline["needs"]) == {"matrix", "staging", "members"}
    assert "needs.matrix.outputs.skip != 'true'" in baseline["if"]
    assert cd["matrix"]["outputs"]["skip"] == "${{ steps.skip.outputs.skip }}"
    finder = next(s for s in steps(cd["matrix"]) if s.get("id") == "since")
    assert finder["env"]["BASELINE_JOB"] == baseline["name"]
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", str(tmp_path / "repo")], check=True)
    shas = []
    for n in range(3):
        subprocess.run([*git, "-C", str(tmp_path / "repo"), "commit", "-q", "--allow-empty",
                        "-m", f"c{n}"], check=True)
        shas.append(subprocess.run(["git", "-C", str(tmp_path / "repo"), "rev-parse", "HEAD"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    deployed = [{"name": "deploy baseline", "conclusion": "success"}]
    skipped = [{"name": "deploy baseline", "conclusion": "skipped"}]
    (tmp_path / "data.json").write_text(json.dumps({
        "runs": [{"databaseId": 3, "headSha": shas[2]}, {"databaseId": 2, "headSha": shas[1]},
                 {"databaseId": 1, "headSha": shas[0]}],
        "jobs": {"3": skipped, "2": [{"name": "members to deploy", "conclusion": "success"}],
                 "1": deployed}}))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gh").write_text(FAKE_GH)
    (bindir / "gh").chmod(0o755)
    env = {"PATH": f"{bindir}:{os.environ['PATH']}", "GITHUB_REPOSITORY": "o/r",
           "GITHUB_OUTPUT": str(tmp_path / "out"), "FAKE_GH_DATA": str(tmp_path / "data.json"),
           "DEPLOY_ALL": "false", **finder["env"]}
    env.pop("GH_TOKEN")
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", finder["run"]],
                          cwd=tmp_path / "repo", env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out").read_text() == f"ref={shas[0]}\n"
