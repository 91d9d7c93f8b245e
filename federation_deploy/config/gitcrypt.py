"""Recognise files still encrypted by git-crypt, so that they are never parsed as YAML."""

from __future__ import annotations

from pathlib import Path

# every file git-crypt encrypts starts with these bytes (its header)
GIT_CRYPT_MAGIC = b"\x00GITCRYPT\x00"
UNLOCK_HINT = "run git-crypt unlock"


def is_git_crypt_locked(path: Path) -> bool:
    """True when a file is still git-crypt ciphertext (the repository was not unlocked)."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(GIT_CRYPT_MAGIC)) == GIT_CRYPT_MAGIC
    except OSError:
        return False
