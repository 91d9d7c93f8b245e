"""The one Progress: how long work talks (a line for stderr, never stdout), `quiet`, and the one
way free text is made printable (printable: logs, workflow commands, step summaries)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

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


def printable(text: str, limit: int | None = None, *, keep_lines: bool = False) -> str:
    """Free text (a drain or freeze reason, who, a member's answer) as it may be written into
    a log line, a workflow command or a step summary: control characters shown escaped
    (`\\n`, `\\x1b`), so it stays on its line; every `::` broken up (`: :`), so that no CI
    runner reads a workflow command in it; URL credentials redacted; at most limit
    characters (`…`). The one function for that, wherever free text is printed.

    keep_lines: whole lines the CLI prints (messages, warnings, errors, whatever they
    quote): their own line breaks kept, controls escaped and credentials redacted in each,
    and only a line that would start with `::` escaped (`\\::`: `::1`, `std::` elsewhere
    in a line are left as they are)."""
    if keep_lines:
        lines = (_UNPRINTABLE.sub(_escaped, redact_userinfo(line)) for line in text.split("\n"))
        return "\n".join(_WORKFLOW_COMMAND.sub(r"\1\\::", line) for line in lines)
    flat = _UNPRINTABLE.sub(_escaped, redact_userinfo(text)).strip().replace("::", ": :")
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"


def _escaped(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


def kind_of_answer(data: Any) -> str:
    """What a server's JSON answer is, never what it says: a server may echo our request
    (headers, Authorization included) back in its body, so no body is quoted whole into a
    message; answer_excerpt for a short error text."""
    if isinstance(data, dict):
        return f"an object with {len(data)} key{'s' if len(data) != 1 else ''}"
    if isinstance(data, list):
        return f"a list of {len(data)}"
    return "null" if data is None else f"a {type(data).__name__}"


def answer_excerpt(text: str, url: str = "", *secrets: str, limit: int = 120) -> str:
    """A short, printable excerpt of a server's error message, or a placeholder when it could
    quote credentials: ours (url's user or password, the secrets given: a token) or anyone's
    (an Authorization header)."""
    parts = urlsplit(url) if url else None
    ours = [s for s in (*secrets, parts.password if parts else None,
                        parts.username if parts else None) if s]
    if any(s in text for s in ours) or "authorization" in text.lower():
        return "(its answer is not shown: it may quote credentials)"
    return printable(text, limit)
