"""What a maintainer trying the real mybinder.org-deploy found (issue 12 follow-up), each on
the fixture repository with real helm and real processes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from federation_deploy.adopt import adopt_repository
from tests.adopt.test_adopted_repo import HookRunner, add_hooks, deploy_recorded

# a network-ban script as deploy.py runs them: it writes a values file under config/common/
# (git-ignored in the real repository) and rewrites one the loader had already parsed
BANS = ("import pathlib; pathlib.Path('config/common/zz-datacenter-bans.yaml').write_text("
        "'binderhub:\\n  extraConfig:\\n    bans: written-by-the-hook\\n'); "
        "pathlib.Path('config/common/20-ingress.yaml').write_text("
        "'binderhub:\\n  replicaCount: 7\\n'); print('bans updated')")


def test_adopt_keeps_the_common_globs_when_the_directory_is_absent(deploy_repo: Path) -> None:
    shutil.rmtree(deploy_repo / "config" / "common")
    releases = adopt_repository(deploy_repo).document["members"]["staging"]["releases"]
    values = releases[-1]["values"]
    assert values[:2] == [
        {"path": "config/common/*.yaml", "optional": True},
        {"path": "secrets/config/common/*.yaml", "secret": True, "optional": True}]


def test_values_written_by_a_hook_after_auth_reach_helm(adopted: Path) -> None:
    add_hooks(adopted, "hetzner-2i2c", [
        {"name": "network-bans", "after": "auth", "argv": [sys.executable, "-c", BANS]}])
    assert not (adopted / "config" / "common" / "zz-datacenter-bans.yaml").exists()
    runner = HookRunner()
    messages: list[str] = []
    deploy_recorded(adopted, "hetzner-2i2c", runner, progress=messages.append)
    words = [c.words for c in runner.calls]
    hook = next(i for i, w in enumerate(words) if w[1] == "-c")
    upgrade = next(c for c in runner.calls
                   if c.words[1] == "upgrade" and c.words[3].endswith("/mybinder"))
    assert words.index(upgrade.words) > hook
    values = json.loads(upgrade.input or "")
    assert values["binderhub"]["extraConfig"]["bans"] == "written-by-the-hook"
    assert values["binderhub"]["replicaCount"] == 7  # the rewritten file, not the parsed one
    assert "stage releases: values rendered again with what the hooks after auth wrote" \
        in messages
