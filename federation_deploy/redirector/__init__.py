"""The federation redirector: a drop-in replacement for mybinder.org's federation-redirect.

It imports nothing from the rest of federation_deploy so that it can be deployed on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from federation_deploy.redirector.config import (
    RedirectorConfig,
    RedirectorConfigError,
    load_config,
    parse_config,
)

if TYPE_CHECKING:
    from federation_deploy.redirector.app import make_app, serve


def __getattr__(name: str) -> Any:
    # the server (tornado, asyncio) only when asked for: every command that reads the config
    # imports this package for redirector.config, and would pay for the server's imports
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
