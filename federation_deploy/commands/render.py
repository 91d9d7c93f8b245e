"""Command `render`: a member's merged Helm values per release, files, or --explain's lines."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation
from federation_deploy.config.problems import one_resolution
from federation_deploy.errors import UsageError
from federation_deploy.values.render import (
    RenderedRelease,
    missing_terraform_outputs,
    render_member,
    secrets_note,
)
from federation_deploy.yamlio import atomic_write_text, dump_plain


def render_documents(
    fed: Federation, member: str, releases: list[str] | None, show_secrets: bool,
    without_secrets: bool = False,
) -> list[tuple[RenderedRelease, str]]:
    """Each release's merged values as YAML text, headed by a comment naming member/release."""
    out = []
    for rendered in render_member(fed, member, releases, without_secrets=without_secrets):
        values = rendered.values if show_secrets else rendered.redacted()
        release = rendered.release
        chart = release.chart if release.local_chart is not None else \
            f"{release.chart}@{release.version}"
        head = f"# member: {member}  release: {release.name}  chart: {chart}\n"
        body = dump_plain(values) if values else "{}\n"
        out.append((rendered, head + body))
    return out


# one load: each path's links resolved once for all the releases rendered
@one_resolution
def render(
    fed: Federation,
    member: str,
    releases: list[str] | None = None,
    *,
    show_secrets: bool = False,
    output_dir: Path | None = None,
    explain: str | None = None,
    without_secrets: bool = False,
) -> CommandResult:
    """The render command: YAML documents on stdout, files in output_dir, or --explain's
    lines for one key path (which starts with a release name unless one release is chosen)."""
    docs = render_documents(fed, member, releases, show_secrets, without_secrets)
    note = secrets_note([r for r, _ in docs]) if without_secrets else None
    notes = (note,) if note else ()
    missing = missing_terraform_outputs(fed, fed.member(member), releases)
    if missing:
        notes = (*notes, f"warning: {missing}")
    if explain:
        if output_dir is not None:
            raise UsageError("--explain prints to stdout; it cannot be used with --output-dir")
        key_release = explain.split(".", 1)[0]
        matching = [r for r, _ in docs if r.release.name == key_release]
        if matching:
            path = explain.split(".", 1)[1] if "." in explain else ""
            if not path:
                raise UsageError(f"--explain needs a key below the release: {explain}.KEY")
            return _explained(fed, matching[0], path, show_secrets, notes)
        if len(docs) == 1:
            return _explained(fed, docs[0][0], explain, show_secrets, notes)
        names = ", ".join(r.release.name for r, _ in docs)
        raise UsageError(f"--explain {explain}: start the path with a release name ({names}), "
                         "or pick one release with --release")
    if output_dir is not None:
        written = write_rendered(output_dir, docs)
        return CommandResult(messages=(*notes, *(f"wrote {path}" for path in written)))
    return CommandResult(stdout="---\n".join(text for _, text in docs), messages=notes)


def _explained(fed: Federation, rendered: RenderedRelease, path: str, show_secrets: bool,
               notes: tuple[str, ...]) -> CommandResult:
    """--explain's lines for one key of one release. A key a terraform output sets, not saved
    yet, says so; a key no layer sets is an error (exit 2) with the nearest key that is set."""
    lines = rendered.explain(path, show_secrets)
    if not lines[-1].startswith("  no layer sets it"):
        return CommandResult(stdout="\n".join(lines) + "\n", messages=notes)
    member = fed.member(rendered.member)
    release = rendered.release.name
    full = f"{release}.{path}"
    stack = member.terraform
    outputs = {target: name for name, target in (stack.outputs if stack else {}).items()}
    if full in outputs:
        file = fed.generated_outputs_file(member.name)
        lines[-1] = (f"  not set yet: terraform output {outputs[full]!r} of "
                     f"{stack.path if stack else ''} sets it ({member.location}: "
                     f"members.{member.name}.terraform.outputs) once `federation-deploy "
                     f"terraform apply {member.name}` has saved "
                     f"{file.relative_to(fed.config_dir.parent)}")
        return CommandResult(stdout="\n".join(lines) + "\n", messages=notes)
    known = [f"{release}.{key}" for key in value_paths(rendered.values)] + list(outputs)
    close = difflib.get_close_matches(full, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise UsageError(f"--explain {full}: no layer of {member.name}/{release} sets it (the "
                     f"chart's default applies, if the chart has this key){hint}")


def value_paths(values: Any, prefix: str = "") -> list[str]:
    """Every key path of a values tree, dots in keys escaped as --explain takes them."""
    paths: list[str] = []
    if isinstance(values, dict):
        for key, value in values.items():
            escaped = str(key).replace(".", "\\.")
            path = f"{prefix}.{escaped}" if prefix else escaped
            paths.append(path)
            paths += value_paths(value, path)
    return paths


def write_rendered(output_dir: Path, documents: list[tuple[RenderedRelease, str]]) -> list[Path]:
    """Write <release>.yaml files with mode 0600 (they may carry secrets)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for rendered, text in documents:
        path = output_dir / f"{rendered.release.name}.yaml"
        # a new file (mode 0600 from its creation) renamed over the old one: truncating an
        # existing 0644 file would expose the values between the write and a chmod
        atomic_write_text(path, text, mode=0o600)
        written.append(path)
    return written
