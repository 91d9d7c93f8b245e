"""-v/-q anywhere on the line (before or after the command), and when tools may colour."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from federation_deploy.cli.context import Context, stderr_in_colour
from federation_deploy.cli.main import cli


@click.command()
@click.pass_obj
def probe(obj: Context) -> None:
    """Prints the verbosity the command sees."""
    runner = obj.runner()
    click.echo(f"{obj.verbosity} {runner.stream} {runner.full_output}")


@pytest.fixture
def with_probe() -> Iterator[None]:
    cli.add_command(probe)
    yield
    cli.commands.pop("probe")


@pytest.mark.parametrize("args,seen", [
    (["probe"], "0 True False"),
    (["-v", "probe"], "1 True True"),
    (["probe", "-v"], "1 True True"),
    (["-v", "probe", "-vv"], "3 True True"),
    (["probe", "--quiet"], "-1 False False"),
    (["-q", "probe", "-v"], "-1 False False"),  # quiet wins, wherever it is
    (["probe", "-v", "-q"], "-1 False False"),
])
def test_v_and_q_anywhere(with_probe: None, args: list[str], seen: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert (result.exit_code, result.stdout) == (0, seen + "\n"), result.output


def test_every_command_and_subcommand_takes_them(config_dir: Path) -> None:
    for args in (["deploy", "--help"], ["terraform", "plan", "--help"],
                 ["redirector", "serve", "--help"]):
        out = CliRunner().invoke(cli, args).stdout
        assert "-q, --quiet" in out and "-v, --verbose" in out, args


def test_quiet_after_the_command_silences_its_messages(config_dir: Path) -> None:
    loud = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "validate"])
    quiet = CliRunner().invoke(cli, ["--config-dir", str(config_dir), "validate", "-q"])
    assert loud.exit_code == quiet.exit_code == 0
    assert loud.stderr and quiet.stderr == ""


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

    assert not stderr_in_colour({})  # pytest's stderr is no terminal
    monkeypatch.setattr("sys.stderr", Terminal())
    assert stderr_in_colour({}) and stderr_in_colour({"NO_COLOR": ""})
    assert not stderr_in_colour({"NO_COLOR": "1"})
