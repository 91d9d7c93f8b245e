"""shadow MEMBER: deploy.py's own dry run (a script the test writes, printing commands as the
real one does) compared with federation-deploy's plan for the member."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from federation_deploy.adopt.shadow import Step, compare, parse_dry_run
from federation_deploy.cli.main import cli
from federation_deploy.config import load_federation
from federation_deploy.values.render import render_releases
from tests.adopt.layouts import LAYOUTS, build

NO_CI = {"CI": ""}  # shadow asks outside CI


def shadow(repo: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config-dir", str(repo), "shadow", *args], env=NO_CI)


def adopted(layout: str, tmp_path: Path) -> Path:
    repo = build(LAYOUTS[layout], tmp_path / f"deploy-{layout}")
    result = CliRunner().invoke(cli, ["adopt", str(repo)])
    assert result.exit_code == 0, result.output
    return repo


def test_parse_dry_run_reads_releases_and_steps() -> None:
    run = parse_dry_run(
        "Starting helm upgrade for prod\n"
        "dry-run: /usr/bin/python3.12 secrets/ban.py\n"
        "dry-run: kubectl apply -f https://example.org/cert-manager.crds.yaml\n"
        "dry-run: helm upgrade --install --create-namespace --namespace=cert-manager "
        "--repo=https://charts.jetstack.io cert-manager cert-manager --version=v1.12.0 "
        "--values=config/cert-manager.yaml\n"
        "dry-run: helm upgrade --install --cleanup-on-fail --namespace=prod prod mybinder "
        "-f config/common/a.yaml -f config/prod.yaml\n"
        "dry-run: kubectl get --namespace=prod --output=name deployments,daemonsets\n"
        "dry-run: kubectl rollout status --namespace=prod --timeout=10m --watch \n")
    assert run.steps == [Step("command", "python secrets/ban.py"),
                         Step("crds", "https://example.org/cert-manager.crds.yaml"),
                         Step("release", "cert-manager/cert-manager"),
                         Step("release", "prod/prod"), Step("rollout", "prod")]
    certmanager, prod = run.releases
    assert (certmanager.chart, certmanager.repo, certmanager.version) == (
        "cert-manager", "https://charts.jetstack.io", "v1.12.0")
    assert certmanager.values == ("config/cert-manager.yaml",)
    assert prod.values == ("config/common/a.yaml", "config/prod.yaml")
    assert prod.flags == ("--cleanup-on-fail",)


@pytest.mark.parametrize("layout", ["2024", "2025", "2026"])
def test_every_member_matches_deploy_py(layout: str, tmp_path: Path) -> None:
    repo = adopted(layout, tmp_path)
    for member in LAYOUTS[layout].members:
        # the fixture's secrets/config/bids-ovh.yaml is git-crypt-locked
        locked = ["--without-secrets"] if member == "bids-ovh" else []
        result = shadow(repo, member, "--yes", *locked)
        assert result.exit_code == 0, result.output
        assert "every difference is intended" in result.stdout
        assert f"deploy.py {member}" in result.stderr  # said before it runs
        assert "[intended] deploy.py's helm flag --cleanup-on-fail" in result.stdout
        assert "[intended] rollout wait: deploy.py waits with `kubectl rollout status`" \
            in result.stdout
    # prod's deploy.py passes the secret files; compared by path only without the key
    result = shadow(repo, "prod", "--yes", "--without-secrets")
    assert result.exit_code == 0, result.output


def test_an_unintended_difference_exits_3(tmp_path: Path) -> None:
    repo = adopted("2024", tmp_path)
    # the pin moved in cert-manager.env after adoption: deploy.py would install another
    (repo / "cert-manager.env").write_text("export CERT_MANAGER_VERSION=v1.13.1\n")
    result = shadow(repo, "ovh2", "--yes")
    assert result.exit_code == 3, result.output
    assert ("[NOT INTENDED] release cert-manager in cert-manager: version v1.12.0 here, "
            "v1.13.1 in deploy.py") in result.stdout
    # a step deploy.py runs that federation.yaml lacks, and the other way round
    script = repo / "deploy.py"
    script.write_text(script.read_text().replace('ban = [sys.executable, "secrets/ban.py"]',
                                                 'ban = [sys.executable, "secrets/bans.py"]'))
    result = shadow(repo, "prod", "--yes")
    assert result.exit_code == 3
    assert "[NOT INTENDED] step command python secrets/bans.py: deploy.py runs it" \
        in result.stdout
    assert "[NOT INTENDED] step command python secrets/ban.py: deploy.py does not run it" \
        in result.stdout


def test_a_secret_value_that_differs_is_named_never_shown(tmp_path: Path) -> None:
    repo = adopted("2026", tmp_path)
    fed = load_federation(repo)
    member = fed.member("prod")
    rendered = render_releases(fed, member)
    mybinder = next(r for r in rendered if r.release.name == "mybinder")
    mybinder.values["federationRedirect"]["cookieSecret"] = "ours-differs"
    output = subprocess.run([sys.executable, "deploy.py", "prod", "--dry-run", "--local"],
                            cwd=repo, env={"CERT_MANAGER_VERSION": "v1.12.0", "PATH": ""},
                            capture_output=True, text=True, check=True).stdout
    report = compare(fed, member, output, rendered)
    text = "\n".join(d.render() for d in report.differences)
    assert "[NOT INTENDED] release prod in prod: value federationRedirect.cookieSecret " \
           "differs (a secret value: not shown)" in text
    assert "ours-differs" not in text and "prod-cookie-secret" not in text


def test_it_asks_first_and_refuses_a_script_without_dry_run(tmp_path: Path) -> None:
    repo = adopted("2025", tmp_path)
    result = shadow(repo, "prod")  # no --yes, no terminal: nothing runs
    assert result.exit_code == 2
    assert "runs the repository's own deploy.py in its dry-run mode with cert-manager.env " \
           "sourced" in result.stderr
    assert "needs confirmation: pass --yes" in result.stderr
    assert "shadow prod: compared" not in result.stdout
    old = adopted("2023", tmp_path)
    result = shadow(old, "prod", "--yes")
    assert result.exit_code == 2
    assert "deploy.py has no --dry-run mode" in result.stderr


def test_messages_name_the_directory_and_count_one_thing(tmp_path: Path) -> None:
    # without its chartpress step, the 2023 layout leaves one thing unmapped (the members'
    # Kubernetes versions): said in the singular
    old = build(LAYOUTS["2023"], tmp_path / "deploy-2023")
    cd = old / ".github" / "workflows" / "cd.yml"
    cd.write_text(cd.read_text().replace("      - name: Build and push images\n"
                                         "        run: chartpress --push\n", ""))
    first = CliRunner().invoke(cli, ["adopt", str(old)])
    assert first.exit_code == 0, first.output
    assert "1 thing adopt could not map:" in first.stderr and "1 things" not in first.stderr
    repo = adopted("2026", tmp_path)
    (repo / "deploy.py").unlink()
    result = shadow(repo, "prod", "--yes")
    assert result.exit_code == 2
    assert f"no deploy.py in {repo.resolve()} (the config directory, where shadow looks for " \
           "it)" in result.stderr
