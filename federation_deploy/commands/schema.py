"""Command `schema`: the JSON Schema of federation.yaml, for editors and check-jsonschema."""

from __future__ import annotations

from federation_deploy.commands.result import CommandResult
from federation_deploy.config.editor_schema import federation_schema_text


def schema() -> CommandResult:
    """The schema generated from the config schema the loader uses."""
    return CommandResult(stdout=federation_schema_text())
