"""The federation redirector: a drop-in replacement for mybinder.org's federation-redirect.

It imports nothing from the rest of federation_deploy so that it can be deployed on its own.
"""

from __future__ import annotations

from federation_deploy.redirector.app import make_app, serve
from federation_deploy.redirector.config import (
    RedirectorConfig,
    RedirectorConfigError,
    load_config,
    parse_config,
)

__all__ = [
    "RedirectorConfig",
    "RedirectorConfigError",
    "load_config",
    "make_app",
    "parse_config",
    "serve",
]
