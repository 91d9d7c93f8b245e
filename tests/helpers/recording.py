"""The real helm (or why not), and a Runner that records commands and answers like the tools."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation_deploy.errors import ToolError
from federation_deploy.runner import Runner

REPO = Path(__file__).resolve().parents[2]
HELM_VERSION = "v3.17.2"


def locate_helm() -> tuple[str | None, str]:
    """A helm 3 binary: $FEDERATION_DEPLOY_HELM, helm on PATH, or the checkout's bin/helm
    (scripts/fetch_helm.py puts it there; the README's test command runs that first)."""
    candidates = [os.environ.get("FEDERATION_DEPLOY_HELM") or None, shutil.which("helm"),
                  str(REPO / "bin" / "helm")]
    tried = []
    for candidate in candidates:
        if not candidate or not Path(candidate).is_file():
            continue
        try:
            proc = subprocess.run([candidate, "version", "--short"], capture_output=True,
                                  text=True, timeout=30)
        except OSError as exc:
            tried.append(f"{candidate}: {exc}")
            continue
        if proc.returncode == 0 and proc.stdout.startswith("v3."):
            return candidate, ""
        tried.append(f"{candidate}: {proc.stdout.strip() or proc.stderr.strip()}")
    why = "; ".join(tried) or "not on PATH, no $FEDERATION_DEPLOY_HELM, no bin/helm"
    return None, (f"needs a real helm 3 ({why}): run `python scripts/fetch_helm.py` "
                  "(`make test` does)")


# --------------------------------------------------------------------------------------------
# The recorder: a Runner that runs nothing and answers like the tools would


@dataclass
class Call:
    argv: list[str]
    env: dict[str, str] | None
    input: str | None
    kubeconfig_mode: int | None = None  # mode of the --kubeconfig/KUBECONFIG file, then
    live: str = "none"  # which of the tool's streams the Runner was asked to show live

    @property
    def tool(self) -> str:
        return os.path.basename(self.argv[0])

    @property
    def words(self) -> list[str]:
        """argv without the binary's directory: ["helm", "upgrade", ...]."""
        return [self.tool, *self.argv[1:]]


Answer = tuple[int, str, str]
Rule = Callable[[Call], Answer | None]


def _flag(argv: Sequence[str], name: str) -> str | None:
    for i, part in enumerate(argv):
        if part == name and i + 1 < len(argv):
            return argv[i + 1]
    return None


def default_answer(call: Call) -> Answer:
    """What each tool says when all goes well."""
    w = call.words
    if w[:3] == ["helm", "version", "--short"]:
        return 0, f"{HELM_VERSION}+gcc0bbbd\n", ""
    if w[:3] == ["helm", "show", "chart"]:
        ref = w[3]
        if Path(ref).is_dir():
            return 0, (Path(ref) / "Chart.yaml").read_text(), ""
        name = ref.rsplit("/", 1)[-1]
        return 0, f"apiVersion: v2\nname: {name}\nversion: {_flag(w, '--version')}\n", ""
    if w[:2] == ["helm", "upgrade"]:
        status = {
            "name": w[2], "namespace": _flag(w, "--namespace"), "version": 3,
            "info": {"status": "deployed", "last_deployed": "2026-01-01T00:00:00Z",
                     "description": "Upgrade complete"},
            "manifest": "",
        }
        return 0, json.dumps(status), ""
    if w[:2] == ["helm", "history"]:
        # a release deployed once and healthy (a test answers a pending one itself)
        return 0, json.dumps([{"revision": 1, "status": "deployed", "chart": "chart-1.0.0",
                               "app_version": "1.0", "description": "Install complete",
                               "updated": "2026-01-01T00:00:00Z"}]), ""
    if w[:2] == ["helm", "plugin"]:
        return 0, "NAME\tVERSION\tDESCRIPTION\n", ""
    if w[:3] == ["kubectl", "get", "--raw"]:
        return 0, json.dumps({"gitVersion": "v1.27.16-gke.100"}), ""
    if w[:3] == ["kubectl", "get", "deployments,daemonsets"]:
        ns = _flag(w, "--namespace")
        return 0, f"deployment.apps/{ns}-web\ndaemonset.apps/{ns}-agent\n", ""
    if w[:3] == ["kubectl", "rollout", "status"]:
        return 0, f'{w[3]} successfully rolled out\n', ""
    return 0, "", ""


class RecordingRunner(Runner):
    """Records every command (argv, env, stdin) and answers from rules, else like a healthy
    tool. Nothing runs. It sees exactly what a real Runner would be asked to run."""

    def __init__(self) -> None:
        super().__init__(echo=False)
        self.calls: list[Call] = []
        self.rules: list[Rule] = []

    def answer(self, prefix: Sequence[str], code: int = 0, out: str = "", err: str = "") -> None:
        """Answer commands whose words start with prefix (["helm", "upgrade", "binderhub"])."""
        wanted = list(prefix)

        def rule(call: Call) -> Answer | None:
            return (code, out, err) if call.words[:len(wanted)] == wanted else None

        self.rules.insert(0, rule)

    def run(  # type: ignore[override]
        self,
        argv: Sequence[str],
        *,
        cwd: Any = None,
        env: Any = None,
        input: str | None = None,
        check: bool = True,
        ok_codes: Sequence[int] = (0,),
        capture: bool = True,
        timeout: float | None = None,
        live: Any = "none",
        quiet_lines: Any = None,
        shown_secrets: Any = (),
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(a) for a in argv]
        call = Call(argv, dict(env) if env else None, input, live=str(live))
        kubeconfig = _flag(argv, "--kubeconfig") or (env or {}).get("KUBECONFIG")
        if kubeconfig and Path(kubeconfig).exists():
            call.kubeconfig_mode = stat.S_IMODE(Path(kubeconfig).stat().st_mode)
        self.calls.append(call)
        for rule in self.rules:
            found = rule(call)
            if found is not None:
                break
        else:
            found = default_answer(call)
        code, out, err = found
        out, err = self.censor(out), self.censor(err)
        if check and code not in ok_codes:
            raise ToolError([self.censor(a) for a in argv], code, out, err)
        return subprocess.CompletedProcess(argv, code, out, err)

    def words(self) -> list[list[str]]:
        return [c.words for c in self.calls]

    def tools(self) -> list[str]:
        return [" ".join(c.words[:2]) for c in self.calls]
