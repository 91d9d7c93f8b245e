"""Terraform talks while it works, and Ctrl-C lets it finish cleanly: the real CLI, the real
terraform and AWS provider against moto_server, through a relay that holds one request.

While the relay holds a request terraform needs, terraform cannot finish: what the test reads
from the CLI's stderr then was streamed live, and a Ctrl-C then lands mid-apply. No timing.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import boto3
import pytest

from federation_deploy.commands import terraform as tf_commands
from federation_deploy.config import load_federation
from federation_deploy.runner import Runner
from tests.conftest import copy_federation
from tests.helpers.moto import MotoServer
from tests.helpers.relay import HoldingRelay

pytestmark = pytest.mark.terraform

MEMBER = "curvenote"
TABLE = "mybinder-curvenote-terraform-locks"
REGION = "us-east-2"
SAFETY = 240.0  # only keeps a broken test from hanging; never asserted on


@dataclass
class CliProcess:
    """`federation-deploy ...` in its own process group, stderr read line by line."""

    process: subprocess.Popen[str]
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def next_line(self) -> str | None:
        line = self.lines.get(timeout=SAFETY)
        if line is not None:
            self.seen.append(line)
        return line

    def read_until(self, text: str) -> str:
        while (line := self.next_line()) is not None:
            if text in line:
                return line
        raise AssertionError(f"{text!r} never came; stderr was:\n" + "".join(self.seen))

    def finish(self) -> int:
        while self.next_line() is not None:
            pass
        return self.process.wait(timeout=SAFETY)


def start_cli(config: Path, env: dict[str, str], *args: str) -> CliProcess:
    process = subprocess.Popen(
        [sys.executable, "-c", "from federation_deploy.cli.main import main; main()",
         "--config-dir", str(config), *args],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )
    cli = CliProcess(process)

    def pump(stream: IO[str]) -> None:
        for line in stream:
            cli.lines.put(line)
        cli.lines.put(None)

    assert process.stderr is not None
    threading.Thread(target=pump, args=(process.stderr,), daemon=True).start()
    return cli


def lock_items(moto: MotoServer) -> list[dict[str, Any]]:
    """The state locks in the DynamoDB table (terraform's `...-md5` digest items are not)."""
    dynamodb = boto3.client("dynamodb", endpoint_url=moto.url, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    items = dynamodb.scan(TableName=TABLE)["Items"]
    return [i for i in items if not i["LockID"]["S"].endswith("-md5")]


@dataclass
class Stack:
    config: Path
    env: dict[str, str]
    moto: MotoServer


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tf_env: dict[str, str],
          moto: MotoServer) -> Stack:
    config = copy_federation(tmp_path_factory.mktemp("streaming"), with_generated=False)
    tf_commands.bootstrap_member(load_federation(config), MEMBER, Runner(echo=False), env=tf_env)
    return Stack(config, tf_env, moto)


@dataclass
class StreamedPlan:
    first_line: str
    released_before_first_line: bool
    held: bool
    deadline_expired: bool
    exit_code: int
    after: list[str]


@pytest.fixture(scope="module")
def streamed_plan(stack: Stack) -> Iterator[StreamedPlan]:
    """`terraform plan curvenote -v` with the availability-zone lookup (which the plan needs)
    held: the first line of terraform plan is read while the plan cannot have finished."""
    relay = HoldingRelay(stack.moto.port, b"Action=DescribeAvailabilityZones", SAFETY)
    try:
        cli = start_cli(stack.config, {**stack.env, "AWS_ENDPOINT_URL": relay.url},
                        "terraform", "plan", MEMBER, "-v")
        cli.read_until(" plan ")  # the echoed `$ terraform plan ...` (init may come before)
        first = cli.next_line()
        released_early = relay.released.is_set()
        held = relay.held.wait(SAFETY)
        relay.release()
        done = len(cli.seen)
        code = cli.finish()
        yield StreamedPlan(first or "", released_early, held, relay.deadline_expired, code,
                           cli.seen[done:])
    finally:
        relay.close()


def test_plan_streams_its_first_line_while_terraform_still_runs(
        streamed_plan: StreamedPlan) -> None:
    assert streamed_plan.first_line.strip() and not streamed_plan.first_line.startswith("$ ")
    # the plan could not finish without the held answer, and it was let through only after
    # the line was read: the line came while terraform was still running
    assert streamed_plan.held and not streamed_plan.released_before_first_line
    assert not streamed_plan.deadline_expired
    assert streamed_plan.exit_code == 0
    assert any(line.startswith("Plan: ") for line in streamed_plan.after)


def test_ctrl_c_during_apply_leaves_no_stale_state_lock(stack: Stack,
                                                        streamed_plan: StreamedPlan) -> None:
    """SIGINT to the CLI's process group (a terminal's Ctrl-C) while terraform apply waits on
    CreateVpc: terraform is told once, finishes what it started and releases its lock."""
    assert streamed_plan.exit_code == 0  # the saved plan this applies
    relay = HoldingRelay(stack.moto.port, b"Action=CreateVpc", SAFETY)
    try:
        cli = start_cli(stack.config, {**stack.env, "AWS_ENDPOINT_URL": relay.url},
                        "terraform", "apply", MEMBER, "--yes")
        assert relay.held.wait(SAFETY), "apply never reached CreateVpc"
        assert lock_items(stack.moto), "terraform holds no lock mid-apply: nothing to prove"
        os.killpg(cli.process.pid, signal.SIGINT)
        cli.read_until("SIGINT: sent to terraform")
        relay.release()
        code = cli.finish()
    finally:
        relay.close()
    stderr = "".join(cli.seen)
    assert code == 130, stderr
    assert "Interrupt received" in stderr  # terraform's own acknowledgement, streamed
    assert "killed" not in stderr
    assert not relay.deadline_expired
    assert lock_items(stack.moto) == [], stderr
