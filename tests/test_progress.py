"""progress.printable: the one way free text is printed (logs, workflow commands, step
summaries), and URL credentials redacted wherever they are printed (issue 29)."""

from __future__ import annotations

import pytest

from federation_deploy.progress import printable, redact_userinfo


@pytest.mark.parametrize(("text", "shown"), [
    ("disk full\n::error::x", "disk full\\n: :error: :x"),
    ("::error::pwned", ": :error: :pwned"),
    ("  ::warning file=a::b", ": :warning file=a: :b"),
    ("red \x1b[31m", "red \\x1b[31m"),
    ("cr\rlf", "cr\\rlf"),
    ("rtl \u202eevil", "rtl \\u202eevil"),
    ("line\u2028sep", "line\\u2028sep"),
    ("50% done", "50% done"),
    ("see https://user:pw@example.org/x", "see https://***@example.org/x"),
])
def test_printable_keeps_free_text_on_its_line(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_cuts_at_the_limit() -> None:
    assert printable("x" * 400, 10) == "x" * 9 + "…"


def test_keep_lines_makes_each_line_printable() -> None:
    # whole lines the CLI prints: only a line that would be a workflow command is escaped;
    # `::` inside a line (IPv6 `[::1]`, `std::`) is left alone
    assert printable("a\n::error::b\nc\x07 http://[::1]:8/", keep_lines=True) == \
        "a\n\\::error::b\nc\\x07 http://[::1]:8/"


@pytest.mark.parametrize(("text", "shown"), [
    ("https://user:pw@host:8080/p", "https://***@host:8080/p"),
    ("http://token@host", "http://***@host"),
    ("a git@github.com:x/y and ssh://git@host/r", "a git@github.com:x/y and ssh://***@host/r"),
    ("mailto-free user@example.org", "mailto-free user@example.org"),
])
def test_redact_userinfo(text: str, shown: str) -> None:
    assert redact_userinfo(text) == shown
