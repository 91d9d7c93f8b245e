"""federation.yaml's `freeze:` and `notifications:` blocks: loaded with file:line:key errors,
and the freeze judged at a given time (pure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from federation_deploy.config import load_federation
from federation_deploy.config.freeze import active_freeze, expired_note, printable, refusal
from federation_deploy.errors import ConfigError

Edit = Callable[[str, str, str], None]
BEFORE_MEMBERS = "generation: 0\n"


def add(edit: Edit, block: str) -> None:
    edit("federation.yaml", BEFORE_MEMBERS, BEFORE_MEMBERS + block)


def problems(config_dir: Path) -> list[str]:
    """What is wrong: a load error, or (a `freeze:` block, which loads so that drain,
    restore and unfreeze still run) the federation's freeze problems."""
    try:
        fed = load_federation(config_dir)
    except ConfigError as raised:
        return [str(p) for p in raised.problems]
    assert fed.freeze_problems and fed.freeze is None
    return [str(p) for p in fed.freeze_problems]


def test_a_freeze_is_in_force_until_its_time(config_dir: Path, edit: Edit) -> None:
    add(edit, "freeze:\n  reason: demo\n  who: ada\n  until: 2026-12-09T08:00:00+01:00\n")
    fed = load_federation(config_dir)
    assert fed.freeze is not None
    assert fed.freeze.until == datetime(2026, 12, 9, 7, 0, tzinfo=UTC)
    assert fed.freeze.location.line is not None and fed.freeze.location.file.endswith(
        "federation.yaml")
    before, after = datetime(2026, 12, 9, 6, 59, tzinfo=UTC), datetime(2026, 12, 9, 7, 0,
                                                                        tzinfo=UTC)
    assert active_freeze(fed, before) is fed.freeze and expired_note(fed, before) is None
    assert active_freeze(fed, after) is None
    note = expired_note(fed, after)
    assert note is not None and "expired at 2026-12-09T07:00:00Z (by ada: demo): ignored" in note
    assert refusal(fed.freeze, "deploy gke").startswith(
        "refused: deploy gke: the federation is frozen until 2026-12-09T07:00:00Z by ada "
        "(reason: demo; ")


@pytest.mark.parametrize(("block", "expected"), [
    ("freeze:\n  reason: demo\n  who: ada\n  until: next week\n",
     "freeze.until: expected an ISO 8601 time with a zone, like 2024-05-03T12:00:00Z, got "
     "'next week'"),
    ("freeze:\n  reason: demo\n  who: ada\n  until: 2026-12-09T08:00:00\n",
     "freeze.until: expected an ISO 8601 time with a zone"),
    ("freeze:\n  who: ada\n  until: 2026-12-09T08:00:00Z\n",
     "freeze.reason: required key is missing"),
    ("freeze:\n  reason: demo\n  who: ada\n  until: 2026-12-09T08:00:00Z\n  by: me\n",
     "freeze.by: unknown key"),
    ("freeze: soon\n", "freeze: expected a mapping"),
    ("notifications:\n  webhook_env: https://hooks.example.org/secret\n",
     "notifications.webhook_env: expected the name of an environment variable"),
    ("notifications:\n  format: teams\n", "notifications.format: expected one of matrix, slack"),
    ("notifications:\n  timeout: 0\n", "notifications.timeout: expected a number of seconds > 0"),
])
def test_bad_blocks_name_file_line_and_key(config_dir: Path, edit: Edit, block: str,
                                            expected: str) -> None:
    add(edit, block)
    found = problems(config_dir)
    assert len(found) == 1, found
    assert "federation.yaml:" in found[0] and expected in found[0], found[0]
    line = int(found[0].split("federation.yaml:")[1].split(":")[0])
    text = (config_dir / "federation.yaml").read_text().splitlines()
    key = expected.split(":")[0].split(".")[-1]
    if "missing" not in expected:  # a missing key is said at its mapping's first line
        assert key in text[line - 1], (line, text[line - 1])


def test_a_webhook_url_in_webhook_env_is_never_printed_back(config_dir: Path,
                                                            edit: Edit) -> None:
    add(edit, "notifications:\n  webhook_env: https://hooks.example.org/T0/B0/s3cr3t\n")
    assert not any("s3cr3t" in p for p in problems(config_dir))


def test_notifications_defaults(config_dir: Path, edit: Edit) -> None:
    add(edit, "notifications:\n  webhook_env: FEDERATION_WEBHOOK_URL\n")
    settings = load_federation(config_dir).notifications
    assert settings is not None
    assert (settings.webhook_env, settings.format, settings.tags, settings.timeout) == (
        "FEDERATION_WEBHOOK_URL", "matrix", (), 5.0)


def test_printable_flattens_lines_and_breaks_workflow_commands() -> None:
    # the one sanitiser of free text (progress.printable): controls shown escaped
    assert printable("a\nb\r\n::warning::x") == "a\\nb\\r\\n: :warning: :x"
    assert printable("x" * 400, 10) == "x" * 9 + "…"
