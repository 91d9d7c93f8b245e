"""Commands `redirector config` and `redirector serve`: the redirector's config.json from
federation.yaml, and the redirector itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation
from federation_deploy.errors import ConfigError


def config(fed: Federation, output: Path | None, progress: Callable[[str], None]) -> CommandResult:
    """config.json on stdout, or written to output with the publish's compare-and-swap."""
    if output is None:
        from federation_deploy.values.redirector_config import redirector_config

        return CommandResult(stdout=json.dumps(redirector_config(fed), indent=2,
                                               sort_keys=False) + "\n")
    from federation_deploy.traffic.publish import publish_file

    # the same compare-and-swap as a ramp's publish: a running redirector may hot-reload
    # this file, and an older checkout must not put back weights a ramp has moved on from
    publish_file(fed, output, progress=progress)
    return CommandResult(messages=(f"wrote {output} (generation {fed.generation})",))


def serve(config_path: Path, port: int, address: str) -> CommandResult:
    """Run the redirector until SIGTERM or SIGINT; an invalid config at start is a ConfigError
    (exit 2) naming the file and key."""
    from federation_deploy.redirector import RedirectorConfigError
    from federation_deploy.redirector import serve as serve_redirector

    try:
        serve_redirector(config_path, port=port, address=address)
    except RedirectorConfigError as exc:
        raise ConfigError.single(exc.source or str(config_path), None, exc.key,
                                 exc.message) from None
    return CommandResult()
