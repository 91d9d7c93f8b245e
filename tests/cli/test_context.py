"""The CLI context's one Runner (-q/-v) and emit, the one way results are printed."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from federation_deploy.cli.context import Context
from federation_deploy.cli.output import emit
from federation_deploy.commands.result import CommandResult


@pytest.mark.parametrize("verbosity,echo,plumbing_echo", [(-1, False, False), (0, True, False),
                                                          (1, True, True), (2, True, True)])
def test_runner_honours_quiet_and_verbose(verbosity: int, echo: bool,
                                          plumbing_echo: bool) -> None:
    obj = Context(config_dir=Path("config"), verbosity=verbosity)
    assert obj.runner().echo is echo
    assert obj.runner(plumbing=True).echo is plumbing_echo
    assert obj.runner() is not obj.runner()  # no state shared between commands' runs


def invoke(result: CommandResult, verbosity: int = 0) -> tuple[int, str, str]:
    @click.command()
    def command() -> None:
        emit(Context(config_dir=Path("config"), verbosity=verbosity), result)

    out = CliRunner().invoke(command, [])
    return out.exit_code, out.stdout, out.stderr


def test_emit_prints_data_then_messages_and_exits_with_the_code() -> None:
    code, out, err = invoke(CommandResult(exit_code=3, stdout="plan\n", messages=("a", "b")))
    assert (code, out, err) == (3, "plan\n", "a\nb\n")


def test_emit_adds_a_missing_newline_and_prints_nothing_for_nothing() -> None:
    assert invoke(CommandResult(stdout="{}")) == (0, "{}\n", "")
    assert invoke(CommandResult()) == (0, "", "")


def test_emit_is_quiet_with_q_but_keeps_data_and_code() -> None:
    assert invoke(CommandResult(exit_code=1, stdout="x\n", messages=("m",)), -1) == (1, "x\n", "")
