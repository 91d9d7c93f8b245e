"""Commands of the foundation: validate, members, render (pure data in, data out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, load_federation
from federation_deploy.errors import ConfigError, Problem, UsageError
from federation_deploy.traffic.formatting import (
    aligned_lines,
    dump_rows,
    paused_text,
    ramp_value,
    share_cell,
    share_value,
    weight_cell,
    weight_value,
)
from federation_deploy.traffic.shares import member_share
from federation_deploy.values.render import (
    RenderedRelease,
    missing_terraform_outputs,
    render_member,
    secrets_note,
)
from federation_deploy.yamlio import atomic_write_text, dump_plain


def validate(config_dir: Path, *, without_secrets: bool = False) -> CommandResult:
    """Load everything and check it; raise ConfigError listing every problem. Changes nothing.
    Messages: the warnings, then a count of what was checked. Files locked with git-crypt
    are warned about (the loader did), never read; without_secrets leaves out every secret
    layer (the stand-in in their place)."""
    fed = load_federation(config_dir)
    problems: list[Problem] = []
    problems += _terraform_pin_problems(fed)
    notes: list[str] = []
    for member in fed.members.values():
        if member.deployable:
            # renders every layer, so a values file that cannot merge is caught here too
            rendered = render_member(fed, member.name, without_secrets=without_secrets,
                                     skip_locked=True)
            note = secrets_note(rendered)
            if note and note not in notes:
                notes.append(note)
    if problems:
        raise ConfigError(problems)
    releases = sum(len(m.releases) for m in fed.members.values())
    return CommandResult(messages=(
        # a note (advice, nothing wrong) says so itself; anything else is a warning
        *(w if w.startswith("note: ") else f"warning: {w}" for w in fed.warnings),
        *notes,
        f"config valid: {len(fed.members)} members, {releases} releases",
    ))


def _terraform_pin_problems(fed: Federation) -> list[Problem]:
    from federation_deploy.commands.terraform import check_terraform_pins

    return check_terraform_pins(fed)


def members_rows(fed: Federation) -> list[dict[str, Any]]:
    """One row per member: name, cloud, url, weight, share (% of launches), prime, routed, ramp;
    weight and share typed as traffic's (tables.weight_value, tables.share_value)."""
    rows = []
    for m in fed.members.values():
        rows.append({
            "name": m.name,
            "cloud": m.cloud,
            "url": m.url,
            "weight": weight_value(m.weight) if m.routed else None,
            "share": share_value(member_share(fed, m)),
            "prime": m.prime,
            "routed": m.routed,
            "ramp": ramp_value(m.ramp),
        })
    return rows


MEMBER_COLUMNS = ["name", "cloud", "url", "weight", "share", "prime", "ramp"]


def _ramp_cell(member: str, ramp: dict[str, Any] | None) -> str:
    if ramp is None:
        return "-"
    if ramp.get("rolled_back"):
        return f"{ramp['percent']:g}%, {paused_text(member, ramp['rolled_back'])}"
    return f"{ramp['percent']:g}%"


def members(fed: Federation, output: str = "table") -> CommandResult:
    """The members as a table for people, or JSON or YAML for scripts."""
    rows = members_rows(fed)
    if output != "table":
        return CommandResult(stdout=dump_rows(rows, output))
    table = [MEMBER_COLUMNS] + [[
        r["name"], r["cloud"], r["url"], weight_cell(r["weight"]), share_cell(r["share"]),
        "yes" if r["prime"] else "no",
        _ramp_cell(r["name"], r["ramp"]),
    ] for r in rows]
    return CommandResult(stdout="\n".join(aligned_lines(table)) + "\n")


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
            return CommandResult(stdout="\n".join(matching[0].explain(path, show_secrets)) + "\n",
                                 messages=notes)
        if len(docs) == 1:
            return CommandResult(stdout="\n".join(docs[0][0].explain(explain, show_secrets)) + "\n",
                                 messages=notes)
        names = ", ".join(r.release.name for r, _ in docs)
        raise UsageError(f"--explain {explain}: start the path with a release name ({names}), "
                         "or pick one release with --release")
    if output_dir is not None:
        written = write_rendered(output_dir, docs)
        return CommandResult(messages=(*notes, *(f"wrote {path}" for path in written)))
    return CommandResult(stdout="---\n".join(text for _, text in docs), messages=notes)


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
