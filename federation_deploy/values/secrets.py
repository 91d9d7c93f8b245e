"""Secret strings in text and data: censored wherever they reach people (echo, tool errors,
manifests, validator messages), in every form a tool may have reshaped them into."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

CENSORED = "***"

# Below this length a secret is censored only where it stands as a whole token: replacing every
# "ab" inside other words would shred the output and, by where the holes are, hint the value.
SHORT_SECRET = 4
_WORD = r"[A-Za-z0-9_]"


def _quoted_forms(value: str) -> set[str]:
    """value as JSON, YAML (double and single quoted) and Python repr spell it inside quotes."""
    return {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        value.replace("'", "''"),
        repr(value)[1:-1],
    }


def secret_forms(secret: str) -> set[str]:
    """Every literal rendering of secret we censor: itself, quoted/escaped, base64 (helm's
    b64enc), and each line of a multi-line secret (which helm re-indents line by line, and a
    diff prefixes with +/-). Lines too short to say anything are left alone."""
    forms = _quoted_forms(secret)
    raw = secret.encode("utf-8")
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms |= {text, text.rstrip("=")}
    lines = [line.strip() for line in secret.splitlines()]
    if len(lines) > 1:
        for line in lines:
            if len(line) >= SHORT_SECRET:
                forms |= _quoted_forms(line)
    return {f for f in forms if f}


def _form_pattern(form: str) -> str:
    """A regex for one form: whitespace inside it matches any run of whitespace (helm's
    re-indentation of block scalars, go-yaml's folding of long lines), and a short form must
    stand alone as a token."""
    tokens = form.split()
    if len(tokens) > 1 and form.strip() == form:
        body = r"\s+".join(re.escape(t) for t in tokens)
    else:
        body = re.escape(form)
    if len(form) < SHORT_SECRET:
        return rf"(?<!{_WORD}){body}(?!{_WORD})"
    return body


@dataclass(frozen=True)
class _Step:
    """One form to censor: plain text replacement when it can be (10x faster than a regex
    over megabytes of helm output), else a regex, tried only when its anchor is present."""

    anchor: str
    pattern: re.Pattern[str] | None


@lru_cache(maxsize=64)
def _ordered_forms(secrets: frozenset[str]) -> tuple[str, ...]:
    """Every form of every secret, longest first, so that an overlap cannot leave a tail of
    a longer secret behind."""
    forms = set().union(*(secret_forms(s) for s in secrets)) if secrets else set()
    return tuple(sorted(forms, key=lambda f: (-len(f), f)))


@lru_cache(maxsize=64)
def _censor_steps(secrets: frozenset[str]) -> tuple[_Step, ...]:
    steps = []
    for form in _ordered_forms(secrets):
        simple = len(form) >= SHORT_SECRET and len(form.split()) <= 1
        anchor = form if simple else (form.split() or [form])[0]
        steps.append(_Step(anchor, None if simple else re.compile(_form_pattern(form))))
    return tuple(steps)


@lru_cache(maxsize=64)
def _search_pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    forms = _ordered_forms(secrets)
    if not forms:
        return None
    return re.compile("|".join(_form_pattern(f) for f in forms))


def _wanted(secrets: Iterable[str]) -> frozenset[str]:
    return frozenset(s for s in secrets if isinstance(s, str) and s.strip())


def censor(text: str, secrets: Iterable[str]) -> str:
    """Replace every rendering of every secret value in text, whatever its length."""
    if not text:
        return text
    for step in _censor_steps(_wanted(secrets)):
        if step.anchor not in text:
            continue
        if step.pattern is None:
            text = text.replace(step.anchor, CENSORED)
        else:
            text = step.pattern.sub(CENSORED, text)
    return text


def contains_secret(value: Any, secrets: Iterable[str]) -> bool:
    """Whether any scalar in value (a parsed manifest, a validator's instance) carries a
    secret in any of its forms; data-level, so quoting and indentation do not matter."""
    pattern = _search_pattern(_wanted(secrets))
    if pattern is None:
        return False
    return any(pattern.search(str(leaf)) for leaf in scalar_leaves(value)
               if leaf is not None and not isinstance(leaf, bool))


def scalar_leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from scalar_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from scalar_leaves(item)
    else:
        yield value
