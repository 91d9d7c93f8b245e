"""Secret strings in text: censored wherever text reaches people (echo, tool errors, manifests)."""

from __future__ import annotations

from collections.abc import Iterable

CENSORED = "***"


def censor(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value (longest first, so overlaps cannot leak a tail) in text."""
    for secret in sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True):
        text = text.replace(secret, CENSORED)
    return text
