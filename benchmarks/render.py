"""Wall time of validate and render: the repo's federation and generated ones of N members.

Run: .venv/bin/python benchmarks/render.py   (prints a table; nothing is asserted)
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from federation_deploy.commands.validate import validate  # noqa: E402
from federation_deploy.config import load_federation  # noqa: E402
from federation_deploy.values.render import render_member  # noqa: E402

CLI = [sys.executable, "-m", "federation_deploy.cli.main"]


def generate(dest: Path, members: int) -> Path:
    """A federation like the repo's, with `members` kubeconfig members of 3 releases each."""
    config = dest / "config"
    (config / "values").mkdir(parents=True)
    (dest / "terraform").mkdir()
    lines = [
        "terraform:\n  version: 1.11.4\n  root: ../terraform\n",
        "redirector:\n  host: mybinder.org\n  member: m0000\n  release: binderhub\n",
        "members:\n",
    ]
    for i in range(members):
        name = f"m{i:04d}"
        lines.append(
            f"  {name}:\n    url: https://{name}.example.org\n    cloud: kubeconfig\n"
            f"    weight: {i % 7 + 1}\n    prime: {'true' if i == 0 else 'false'}\n"
            f"    kubernetes_version: \"1.28\"\n    cluster:\n      kubeconfig: {name}.yml\n"
            "    releases:\n"
            "      - name: ingress-nginx\n        chart: ingress-nginx\n"
            "        repo: https://kubernetes.github.io/ingress-nginx\n"
            "        version: 4.8.3\n        namespace: ingress-nginx\n"
            "      - name: cert-manager\n        chart: cert-manager\n"
            "        repo: https://charts.jetstack.io\n        version: v1.13.3\n"
            "        namespace: cert-manager\n"
            "      - name: binderhub\n        chart: binderhub\n"
            "        repo: https://jupyterhub.github.io/helm-chart/\n"
            "        version: 1.0.0-0.dev.git.3170.h4e5ff4a\n        namespace: binder\n"
        )
        (config / "values" / f"{name}.yaml").write_text(
            f"binderhub:\n  config:\n    BinderHub:\n      hub_url: https://hub.{name}.example.org\n"
            f"      pod_quota: {50 + i}\n  ingress:\n    hosts: [{name}.example.org]\n"
        )
    (config / "federation.yaml").write_text("".join(lines))
    shutil.copy(REPO / "config" / "values" / "common.yaml", config / "values" / "common.yaml")
    text = (config / "values" / "common.yaml").read_text()
    (config / "values" / "common.yaml").write_text(text.split("federation-redirect:")[0])
    return config


def timed(fn: object, repeat: int = 3) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def cli_seconds(config: Path, *args: str, repeat: int = 3) -> float:
    def go() -> None:
        subprocess.run([*CLI, "--config-dir", str(config), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return timed(go, repeat)


def render_all(config: Path) -> None:
    fed = load_federation(config)
    for member in fed.members.values():
        if member.deployable:
            render_member(fed, member.name)


def main() -> None:
    print(f"{'federation':<22}{'validate CLI (s)':>18}{'validate (s)':>14}{'render all (s)':>16}"
          f"{'per member (ms)':>17}")
    rows = [("repo (5 members)", REPO / "config", 5)]
    with tempfile.TemporaryDirectory() as tmp:
        for n in (50, 200, 1000):
            rows.append((f"generated {n}", generate(Path(tmp) / str(n), n), n))
        for label, config, n in rows:
            cli = cli_seconds(config, "validate", repeat=3 if n <= 200 else 1)
            val = timed(lambda c=config: validate(c), repeat=3 if n <= 200 else 1)
            ren = timed(lambda c=config: render_all(c), repeat=3 if n <= 200 else 1)
            print(f"{label:<22}{cli:>18.3f}{val:>14.3f}{ren:>16.3f}{1000 * ren / n:>17.2f}")


if __name__ == "__main__":
    main()
