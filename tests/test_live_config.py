"""The repository's own config/ is checked here, and only here: by `validate` (as CI does).
Every other test reads the fixture federation (tests/fixtures/federation/), so adding a member
to config/federation.yaml changes no test; the second test proves it on a copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.helpers.names import EXAMPLE, fresh_name, taken_names

pytestmark = pytest.mark.slow  # the CLI in subprocesses

# The tests that read config/federation.yaml before issue 30 (28 failed with a sixth member):
# golden files, ci-matrix, member counts and shares, completion, the chart table.
ONCE_BROKEN = (
    "tests/cli/test_completion.py",
    "tests/config/test_charts_table.py",
    "tests/config/test_loader.py",
    "tests/config/test_editor_schema.py",
    "tests/charts/test_federation_redirect.py",
    "tests/commands/test_charts_bump.py",
    "tests/cli/test_main.py",
    "tests/values/test_golden.py",
    "tests/values/test_render.py",
    "tests/config/test_ci_matrix.py",
    "tests/test_workflows.py",
)


def new_member(name: str) -> str:
    """A GCP member, as a maintainer adds one (README, "Adding a member")."""
    return f"""
  # added by tests/test_live_config.py: one more member, as a maintainer adds one
  {name}:
    url: https://binder.{name}.example.org
    cloud: gcp
    weight: 5
    kubernetes_version: "1.29"
    cluster:
      project: {name}-project
      location: europe-west1
      name: {name}
    releases:
      - name: binderhub
        chart: binderhub
        namespace: {name}
"""


def add_member(repo: Path, name: str) -> int:
    """Add member `name` (and its values file) to repo's config; return the member count."""
    federation = repo / "config" / "federation.yaml"
    federation.write_text(federation.read_text() + new_member(name))
    (repo / "config" / "values" / f"{name}.yaml").write_text("binderhub: {}\n")
    return len(yaml.safe_load(federation.read_text())["members"])


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "federation_deploy.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_live_config_is_valid() -> None:
    proc = cli("validate", cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "config valid:" in proc.stderr


def copy_repository(dest: Path) -> Path:
    """The files git tracks (and bin/helm), as a fresh clone has them."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            (dest / name).symlink_to(os.readlink(source))
        elif source.is_file():
            shutil.copy2(source, dest / name)
    return dest


@pytest.mark.parametrize("already_added", [False, True],
                         ids=["example-name-free", "example-name-taken"])
def test_a_member_added_to_the_live_config_breaks_no_test(
        tmp_path: Path, already_added: bool) -> None:
    """The member is named like the README's example when the live config lacks one of that
    name; when a maintainer has added it (the second case adds it first, as they would), the
    test picks another fresh name and still passes."""
    repo = copy_repository(tmp_path / "repo")
    if already_added and EXAMPLE not in taken_names(repo):
        add_member(repo, EXAMPLE)
    name = fresh_name(taken_names(repo))
    assert (name == EXAMPLE) == (EXAMPLE not in taken_names(repo))
    count = add_member(repo, name)
    proc = cli("validate", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert f"{count} members" in proc.stderr
    federation = repo / "config" / "federation.yaml"
    assert yaml.safe_load(federation.read_text())["members"][name]["weight"] == 5
    if already_added:
        return  # the suite's run below is the same with one member more; run it once

    path = os.pathsep.join([str(REPO / "bin"), str(Path(sys.executable).parent),
                            os.environ.get("PATH", "")])  # helm, federation-deploy
    env = {**os.environ, "PATH": path}
    env.pop("FEDERATION_DEPLOY_CONFIG_DIR", None)
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-n", "0", "-m", "not terraform", *ONCE_BROKEN],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert tests.returncode == 0, tests.stdout[-6000:]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_a_stack_copied_as_the_readme_says_is_valid_in_a_copy_of_the_repository(
        tmp_path: Path) -> None:
    """README, "Adding a member and ramping it", step 2, followed in a copy of the repository
    (never the repository's own tree) under a name neither it nor the live config holds."""
    repo = copy_repository(tmp_path / "repo")
    name = fresh_name(taken_names(repo, REPO))
    stack = repo / "terraform" / "aws" / name
    shutil.copytree(repo / "terraform" / "aws" / "curvenote", stack,
                    ignore=shutil.ignore_patterns(".terraform", ".fd-work"))
    federation = repo / "config" / "federation.yaml"
    federation.write_text(federation.read_text() + f"""
  {name}:
    url: https://binder.{name}.example.org
    cloud: aws
    weight: 0
    target_weight: 5
    kubernetes_version: "1.29"
    cluster: {{region: eu-west-1, name: {name}}}
    terraform: {{stack: aws/{name}}}
""")
    # the copy as it is shares curvenote's state: refused
    refused = cli("validate", cwd=repo)
    assert refused.returncode == 2, refused.stderr
    assert f"terraform/aws/{name}/versions.tf" in refused.stderr

    versions, main, variables = (stack / f for f in ("versions.tf", "main.tf", "variables.tf"))
    edit(versions, '"mybinder-curvenote-terraform-state"', f'"mybinder-{name}-terraform-state"')
    edit(versions, '"curvenote/terraform.tfstate"', f'"{name}/terraform.tfstate"')
    edit(versions, '"mybinder-curvenote-terraform-locks"', f'"mybinder-{name}-terraform-locks"')
    edit(versions, 'region         = "us-east-2"', 'region         = "eu-west-1"')
    # versions.tf done, main.tf not yet: the GitHub role would get curvenote's lock table
    half = cli("validate", cwd=repo)
    assert half.returncode == 2, half.stderr
    assert f"terraform/aws/{name}/main.tf:41: terraform_lock_table" in half.stderr, half.stderr

    edit(main, '"mybinder-curvenote-terraform-state"', f'"mybinder-{name}-terraform-state"')
    edit(main, '"mybinder-curvenote-terraform-locks"', f'"mybinder-{name}-terraform-locks"')
    edit(main, '"mybinder.org/member" = "curvenote"', f'"mybinder.org/member" = "{name}"')
    edit(main, '"curvenote:binderhub-container-registry-helper"',
         f'"{name}:binderhub-container-registry-helper"')
    edit(variables, "default     = true", "default     = false")
    edit(variables, 'default     = "binderhub"', f'default     = "{name}"')
    edit(main, 'registry_prefix                    = "binderhub"',
         f'registry_prefix                    = "{name}"')
    proc = cli("validate", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert not (REPO / "terraform" / "aws" / name).exists()
