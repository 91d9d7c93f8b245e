"""The Click layer: parse options, call one command function, print its result, map errors."""

from __future__ import annotations

from federation_deploy.cli.main import main

__all__ = ["main"]
