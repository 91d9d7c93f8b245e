"""Publish the redirector's weights: a helm upgrade of its release, or its config.json file."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import Federation
from ..errors import UsageError
from ..render import redirector_config
from ..runner import Runner
from ..yamlio import atomic_write_text

Publisher = Callable[[Federation], None]


@dataclass(frozen=True)
class PublishTarget:
    """Where weights go: `helm` (the redirector release on its member) or `file:PATH`."""

    kind: str  # "helm" or "file"
    path: Path | None = None

    def __str__(self) -> str:
        return "helm" if self.kind == "helm" else f"file:{self.path}"


def parse_publish_target(text: str) -> PublishTarget:
    """`helm` or `file:PATH`; UsageError otherwise."""
    if text == "helm":
        return PublishTarget("helm")
    if text.startswith("file:") and text[len("file:"):]:
        return PublishTarget("file", Path(text[len("file:"):]))
    raise UsageError(f"invalid --publish {text!r}: expected `helm` or `file:PATH`")


def redirector_config_text(fed: Federation) -> str:
    return json.dumps(redirector_config(fed), indent=2, sort_keys=False) + "\n"


def publish_file(fed: Federation, path: Path) -> None:
    """Write the redirector's config.json to path atomically (the redirector hot-reloads it,
    and never reads half a file)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UsageError(f"cannot publish to {path}: directory {path.parent} does not exist")
    atomic_write_text(path, redirector_config_text(fed), mode=0o644)


def publish_helm(
    fed: Federation, runner: Runner, progress: Callable[[str], None] | None = None
) -> None:
    """Upgrade the redirector's release on its member with the weights in fed (the deploy
    code's helm adapter does it, so credentials and chart pins are handled in one place)."""
    # imported lazily: the helm adapter pulls in pyhelm3, which traffic and file publishing
    # never need
    from .helm import upgrade_redirector_release

    upgrade_redirector_release(fed, runner, progress=progress)


def make_publisher(
    target: PublishTarget,
    runner: Runner | None = None,
    progress: Callable[[str], None] | None = None,
) -> Publisher:
    """A function publishing a federation's weights to target."""
    if target.kind == "file":
        assert target.path is not None
        path = target.path
        return lambda fed: publish_file(fed, path)
    if runner is None:
        # the CLI context makes the one Runner (honouring -q/-v); a file target needs none
        raise ValueError("publishing with helm runs helm: pass the command's Runner")
    helm_runner = runner
    return lambda fed: publish_helm(fed, helm_runner, progress)
