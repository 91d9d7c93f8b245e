"""One GitHub issue per drifting member, kept up to date from a `drift -o json` report (the
drift workflow's second step): opened when a member drifts, its body edited while the drift
changes, closed (with a comment) once the member is clean; a member that could not be fully
checked leaves its issue as it is (not clean is not known clean), and so does a partial report
(`drift --part`: a skipped part is not known clean either); a partial report may open one.

An issue is found by its label (`drift`) and a marker in its body naming the member, so a
person may retitle it. The body holds only what the report holds: part statuses, resource
addresses, release names and values key paths; never a value (the report has none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from federation_deploy.actions.github import Issue
from federation_deploy.commands.drift import CLEAN, DRIFT, PARTS, SKIPPED
from federation_deploy.errors import ConfigError, UsageError

LABEL = "drift"
WORKFLOW = ".github/workflows/drift.yml"


def marker(member: str) -> str:
    return f"<!-- federation-deploy drift: {member} -->"


def title(member: str) -> str:
    return f"Drift on member {member}"


class Issues(Protocol):
    """What the keeper needs of GitHub (actions.github.GitHubIssues, or a test's)."""

    def open_issues(self, label: str) -> Sequence[Issue]: ...

    def create(self, title: str, body: str, labels: list[str]) -> Issue: ...

    def edit(self, number: int, **fields: Any) -> Issue: ...

    def comment(self, number: int, body: str) -> None: ...


@dataclass(frozen=True)
class IssueAction:
    member: str
    action: str  # opened | updated | unchanged | closed | none | left | partial
    number: int | None = None

    def describe(self) -> str:
        where = f" #{self.number}" if self.number is not None else ""
        return {
            "opened": f"{self.member}: drift issue{where} opened",
            "updated": f"{self.member}: drift issue{where} updated",
            "unchanged": f"{self.member}: drift issue{where} already says this",
            "closed": f"{self.member}: clean, drift issue{where} closed",
            "none": f"{self.member}: clean, no drift issue open",
            "left": f"{self.member}: not everything could be checked: drift issue{where} "
                    "left as it is",
            "partial": f"{self.member}: a partial report (--part): drift issue{where} left "
                       "as it is (only a full report updates or closes it)",
        }[self.action]


def read_report(path: Path) -> dict[str, Any]:
    """A `drift -o json` report; ConfigError naming the file when it is not one."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--report {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ConfigError.single(str(path), None, "", f"not a drift report: {exc}") from None
    members = data.get("members") if isinstance(data, dict) else None
    if not isinstance(members, list) or not all(
            isinstance(m, dict) and isinstance(m.get("member"), str)
            and isinstance(m.get("parts"), dict) for m in members):
        raise ConfigError.single(str(path), None, "members",
                                 "not a drift report (expected `federation-deploy drift -o "
                                 "json` output)")
    return data


def issue_body(entry: Mapping[str, Any]) -> str:
    member = entry["member"]
    lines = [marker(member),
             f"`federation-deploy drift {member}` finds that what runs differs from the "
             "config.", "", "| part | status | |", "|---|---|---|"]
    parts = entry["parts"]
    for part in PARTS:
        p = parts.get(part) or {}
        lines.append(f"| {part} | {p.get('status', '?')} | {_cell(str(p.get('detail', '')))} |")
    for part in PARTS:
        findings = (parts.get(part) or {}).get("findings") or []
        if findings:
            lines += ["", f"### {part}", *(f"- {_line(str(f))}" for f in findings)]
    lines += ["", f"Kept by `{WORKFLOW}`: this body is updated while the drift changes, and "
              "the issue is closed once the member is clean. Fix the drift (deploy, "
              "`terraform apply`, or publish the weights), or change the config to match."]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return _line(text).replace("|", "\\|")


def _line(text: str) -> str:
    return " ".join(text.split())


def keep_issues(report: Mapping[str, Any], issues: Issues) -> list[IssueAction]:
    """Open, update or close each reported member's issue (see the module's doc)."""
    open_now: dict[str, Issue] = {}
    for found in issues.open_issues(LABEL):
        for entry in report["members"]:
            if marker(entry["member"]) in found.body and entry["member"] not in open_now:
                open_now[entry["member"]] = found
    done = []
    for entry in report["members"]:
        member = entry["member"]
        status = entry.get("status")
        issue = open_now.get(member)
        skipped = [part for part in PARTS
                   if (entry["parts"].get(part) or {}).get("status", SKIPPED) == SKIPPED]
        if skipped and issue is not None:
            # a partial report (`--part`) knows nothing of the parts it skipped: the issue
            # may hold their drift, so it is neither rewritten nor closed
            done.append(IssueAction(member, "partial", issue.number))
        elif status == DRIFT:
            body = issue_body(entry)
            if issue is None:
                made = issues.create(title(member), body, [LABEL])
                done.append(IssueAction(member, "opened", made.number))
            elif issue.body != body:
                issues.edit(issue.number, body=body)
                done.append(IssueAction(member, "updated", issue.number))
            else:
                done.append(IssueAction(member, "unchanged", issue.number))
        elif status == CLEAN and not skipped:
            if issue is None:
                done.append(IssueAction(member, "none"))
            else:
                issues.comment(issue.number, f"`federation-deploy drift {member}` finds no "
                               "drift any more: closing.")
                issues.edit(issue.number, state="closed", state_reason="completed")
                done.append(IssueAction(member, "closed", issue.number))
        else:
            done.append(IssueAction(member, "left", None if issue is None else issue.number))
    return done
