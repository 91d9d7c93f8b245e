"""The federation redirector: a drop-in replacement for mybinder.org's federation-redirect.

It imports nothing from the rest of federation_deploy so that it can be deployed on its own.
"""

from __future__ import annotations

from typing import Any

from federation_deploy.redirector.config import (
    RedirectorConfig,
    RedirectorConfigError,
    load_config,
    parse_config,
)


def __getattr__(name: str) -> Any:
    """The server (tornado) only when asked for: the deploy side imports this package for its
    config parser, and every CLI start would otherwise pay for tornado.web."""
    if name in ("make_app", "serve"):
        from federation_deploy.redirector import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "RedirectorConfig",
    "RedirectorConfigError",
    "load_config",
    "make_app",
    "parse_config",
    "serve",
]
