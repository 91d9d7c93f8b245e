"""The one Progress: how long work talks (a line for stderr, never stdout), `quiet`, and the one
way free text is made printable (printable: logs, workflow commands, step summaries)."""

from __future__ import annotations

import re
from collections.abc import Callable

# Every command, adapter and ramp that talks while it works takes one of these; the CLI passes
# one that writes to stderr, tests pass list.append.
Progress = Callable[[str], None]


def quiet(_message: str) -> None:
    """The Progress that says nothing (the default where nobody listens)."""


# Free text as it may be printed -------------------------------------------------------------
#
# What people write (a drain reason), what members answer and what tools say reaches logs,
# GitHub's workflow commands (a log line that starts with `::error::` IS an annotation) and
# step summaries. A newline in a reason forged log lines and annotations, and a URL with a
# password (--redirector-url https://user:pw@host) was echoed in warnings (issue 29).

# C0/C1 controls (newline, carriage return, escape: terminal sequences), zero-width and
# direction marks, line and paragraph separators
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
_WORKFLOW_COMMAND = re.compile(r"^(\s*)::")
_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s@]+@")


def redact_userinfo(text: str) -> str:
    """Every URL in text with its user:password@ replaced by ***@."""
    return _USERINFO.sub(r"\1***@", text)


def printable(text: str, *, keep_lines: bool = False) -> str:
    """text as it may be written to a log, a workflow command or a step summary: control
    characters shown escaped (`\\n`, `\\x1b`), so free text stays on its line (keep_lines:
    the text's own line breaks are kept, each line made printable); a line that would start
    with `::` (a workflow command) escaped as `\\::`; URL credentials redacted. The one
    function for that, wherever text is printed."""
    if keep_lines:
        return "\n".join(printable(line) for line in text.split("\n"))
    shown = _UNPRINTABLE.sub(_escaped, redact_userinfo(text))
    return _WORKFLOW_COMMAND.sub(r"\1\\::", shown)


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")
