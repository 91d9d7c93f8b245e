"""Wall time of `federation-deploy terraform plan` against bare `terraform plan`, same stack.

Run: .venv/bin/python benchmarks/terraform.py [ROUNDS]   (default 5; prints a table)

Starts moto_server, bootstraps and applies the curvenote stack once (in a temporary copy of
config/ and terraform/), then times ROUNDS interleaved pairs: the tool's plan as a user runs it
(the CLI: Python start, config load, version check, init check, plan saved with its summary)
and bare `terraform plan -out=...` in the same directory with the same variables, provider
mirror and moto. Target: the tool adds under 0.5 s.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from federation_deploy.actions import terraform as tf  # noqa: E402
from federation_deploy.commands import terraform as tf_commands  # noqa: E402
from federation_deploy.config import load_federation  # noqa: E402
from federation_deploy.runner import Runner  # noqa: E402
from tests.conftest import copy_federation  # noqa: E402
from tests.helpers.moto import start_moto_server  # noqa: E402

CLI = [str(Path(sys.executable).parent / "federation-deploy")]
MEMBER = "curvenote"


def timed(argv: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed


def row(name: str, values: list[float]) -> str:
    return (f"{name:<34} {min(values):7.2f} {statistics.median(values):7.2f} "
            f"{max(values):7.2f}")


def main(rounds: int) -> None:
    mirror = os.environ.get("TF_PLUGIN_MIRROR", "/opt/tf-plugins")
    with tempfile.TemporaryDirectory(prefix="tf-bench-") as tmp:
        moto = start_moto_server(Path(tmp))
        try:
            config = copy_federation(Path(tmp) / "fed", with_generated=False)
            env = {**moto.environment, "TF_PLUGIN_MIRROR": mirror}
            fed = load_federation(config)
            runner = Runner(echo=False)
            print("setting up: bootstrap, plan, apply of curvenote against moto ...",
                  file=sys.stderr)
            tf_commands.bootstrap_member(fed, MEMBER, runner, env=env)
            tf_commands.for_member(fed, MEMBER, runner, env=env).plan()
            tf_commands.apply_member(fed, MEMBER, runner, env=env)
            stack = tf_commands.for_member(fed, MEMBER, runner, env=env)

            rc = Path(tmp) / "mirror.tfrc"
            rc.write_text(tf.mirror_cli_config(mirror))
            bare_env = {**os.environ, **moto.environment, "TF_CLI_CONFIG_FILE": str(rc)}
            bare = [stack.executable(), "plan", "-input=false", "-no-color",
                    f"-out={Path(tmp) / 'bare.tfplan'}",
                    *[f"-var={k}={v}" for k, v in stack.variables.items()]]
            tool_env = {**os.environ, **env}
            tool = [*CLI, "-q", "--config-dir", str(config), "terraform", "plan", MEMBER]

            tool_times: list[float] = []
            bare_times: list[float] = []
            timed(bare, stack.stack, bare_env, (0,))  # warm caches once, untimed
            for _ in range(rounds):
                bare_times.append(timed(bare, stack.stack, bare_env, (0,)))
                tool_times.append(timed(tool, REPO, tool_env, (0,)))
        finally:
            moto.stop()

    diffs = [t - b for t, b in zip(tool_times, bare_times, strict=True)]
    print(f"terraform plan of {MEMBER} (32 resources, moto), {rounds} interleaved rounds, "
          f"seconds")
    print(f"{'':<34} {'min':>7} {'median':>7} {'max':>7}")
    print(row("bare terraform plan", bare_times))
    print(row("federation-deploy terraform plan", tool_times))
    print(row("added by the tool (per round)", diffs))
    verdict = "met" if statistics.median(diffs) < 0.5 else "NOT met"
    print(f"target: the tool adds under 0.5 s -> {verdict} "
          f"(median {statistics.median(diffs):+.2f} s)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
