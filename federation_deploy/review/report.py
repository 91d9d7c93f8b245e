"""The plan as people read it: a pull-request comment (markdown, one collapsed section per
member), a terminal table, or JSON. Secret values never reach here: only their key paths."""

from __future__ import annotations

import dataclasses
import html
import json
from typing import Any

from federation_deploy.review.changes import MemberChange, Plan, ReleaseChange
from federation_deploy.traffic.shares import plain_number

# the hidden line by which CI finds its own comment to update in place
MARKER = "<!-- federation-deploy plan -->"


def _num(value: float | None, unit: str = "") -> str:
    return "none" if value is None else f"{plain_number(round(value, 2))}{unit}"


def _pair(pair: tuple[Any, Any], unit: str = "") -> str:
    was, now = (_num(v, unit) if not isinstance(v, str) and v is not None else
                (v if v is not None else "none") for v in pair)
    return now if was == now else f"{was} -> {now}"


def weight_text(member: MemberChange) -> str:
    """`60 (60%) -> 50 (55.56%)`; a member out of rotation shows its weight without share."""
    def one(weight: float | None, share: float | None) -> str:
        if weight is None:
            return "none"
        return _num(weight) + ("" if share is None else f" ({_num(share, '%')})")

    was, now = one(member.weight[0], member.share[0]), one(member.weight[1], member.share[1])
    return now if was == now else f"{was} -> {now}"


def _summary_counts(release: ReleaseChange) -> str:
    plain, secret = len(release.plain_changes), len(release.secret_changes)
    parts = [f"{plain} key{'s' if plain != 1 else ''}"] if plain else []
    if secret:
        parts.append(f"{secret} secret")
    return ", ".join(parts)


def _values_summary(member: MemberChange) -> str:
    plain = sum(len(r.plain_changes) for r in member.releases)
    secret = sum(len(r.secret_changes) for r in member.releases)
    if not plain and not secret:
        return "-"
    return f"{plain} keys" + (f", {secret} secret changed" if secret else "")


def _terraform_summary(member: MemberChange) -> str:
    if member.terraform_stack is None:
        return "-"
    if not member.terraform_files:
        return f"{member.terraform_stack}: untouched"
    n = len(member.terraform_files)
    return f"{member.terraform_stack}: {n} file{'s' if n != 1 else ''}"


def _releases_summary(member: MemberChange) -> str:
    changed = [f"{r.name} ({r.status})" for r in member.releases if r.changed]
    return ", ".join(changed) or "-"


def _code(text: str) -> str:
    """Inline code safe inside a markdown table cell (pipes and backticks included)."""
    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"


def _heading(plan: Plan) -> list[str]:
    changed = plan.changed_members
    what = (f"**{len(changed)} member{'s' if len(changed) != 1 else ''} change:** "
            + ", ".join(changed)) if changed else "**No member changes.**"
    if plan.federation and not changed:
        what += " federation.yaml changes (below)."
    cd = ", ".join(plan.cd_members) or "no member"
    return [f"Compared with `{plan.ref}` (`{plan.commit[:12]}`), HEAD `{plan.head[:12]}`. "
            f"{what}", "", f"CD would deploy: {cd} (CD order: {', '.join(plan.cd_order)})."]


def markdown(plan: Plan) -> str:
    """The pull-request comment: the marker, a table of members, one <details> per changed
    member, the federation-wide changes and what could not be computed."""
    lines = [MARKER, "## federation-deploy plan", "", *_heading(plan), ""]
    lines += ["| member | status | releases | values | weight (share) | terraform | CD |",
              "|---|---|---|---|---|---|---|"]
    for m in plan.members:
        lines.append(f"| {m.name} | {m.status} | {_releases_summary(m)} | {_values_summary(m)}"
                     f" | {weight_text(m)} | {_terraform_summary(m)} | "
                     f"{'deploys' if m.deployed_by_cd else '-'} |")
    lines.append("")
    for m in plan.members:
        if m.changed:
            lines += _member_markdown(m)
    if plan.federation:
        lines += ["### federation.yaml", "", *(f"- {line}" for line in plan.federation), ""]
    deployed = [m for m in plan.members if m.deployed_by_cd]
    if deployed:
        lines += ["### Why CD deploys them", "",
                  *(f"- {m.name}: {cd_reason(m)}" for m in sorted(
                      deployed, key=lambda m: plan.cd_order.index(m.name)
                      if m.name in plan.cd_order else len(plan.cd_order))), ""]
    if plan.notes:
        lines += ["### Not computed", "", *(f"- {note}" for note in plan.notes), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _member_markdown(m: MemberChange) -> list[str]:
    lines = [f"<details><summary><b>{m.name}</b> ({m.cloud}): {m.status}</summary>", ""]
    for r in m.releases:
        if not r.changed:
            continue
        lines += [f"**release {r.name}**: {r.status}", ""]
        for label, pair in (("chart", r.chart), ("namespace", r.namespace), ("CRDs", r.crds)):
            if pair[0] != pair[1] and r.status == "changed":
                lines.append(f"- {label}: {_pair(pair)}")
            elif r.status == "added" and pair[1] is not None:
                lines.append(f"- {label}: {pair[1]}")
        if r.plain_changes:
            if lines[-1]:
                lines.append("")
            lines += ["| key | before | after |", "|---|---|---|"]
            for v in r.plain_changes:
                lines.append(f"| {_code(v.path)} | {_code(v.before) if v.before else '-'} | "
                             f"{_code(v.after) if v.after else '-'} |")
        if r.secret_changes or r.secrets_unchanged:
            named = "; ".join(f"{_code(v.path)}: {v.kind}" for v in r.secret_changes)
            unchanged = f"{r.secrets_unchanged} unchanged" if r.secrets_unchanged else ""
            if lines[-1]:
                lines.append("")
            lines += ["Secret values (never shown): "
                      + "; ".join(p for p in (named, unchanged) if p)]
        if lines[-1]:
            lines.append("")
    if m.weight[0] != m.weight[1] or m.share[0] != m.share[1]:
        lines += [f"- weight (launch share): {weight_text(m)}"]
    lines += [f"- {line}" for line in m.routing]
    lines += [f"- hook {line}" for line in m.hooks]
    lines += [f"- secrets file {file}: {state} (git-crypt locked: keys not compared)"
              for file, state in m.locked_secrets]
    if m.terraform_files:
        lines.append(f"- terraform {m.terraform_stack}: "
                     + ", ".join(f"`{f}`" for f in m.terraform_files))
        if m.terraform_plan:
            lines.append(f"  - terraform plan: {m.terraform_plan}")
    lines += [f"- not computed: {line}" for line in m.not_computed]
    cd = ("CD deploys it: " + "; ".join(m.cd_reasons)) if m.deployed_by_cd \
        else "CD does not deploy it"
    if m.deployed_by_cd and not m.changed_besides_cd:
        cd += " (its files changed; its rendered values did not)"
    lines += [f"- {cd}", "", "</details>", ""]
    return lines


def cd_reason(member: MemberChange) -> str:
    """The first reason CD deploys member, and how many more there are."""
    reasons = member.cd_reasons
    if not reasons:
        return "-"
    return reasons[0] + (f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else "")


def table(plan: Plan) -> str:
    """The terminal's view: one block per member, changed keys indented under it."""
    lines = [f"plan: compared with {plan.ref} ({plan.commit[:12]}), HEAD {plan.head[:12]}"]
    for m in plan.members:
        lines.append(f"{m.name} ({m.cloud}): {m.status}" + ("" if m.changed else ""))
        if not m.changed:
            continue
        for r in m.releases:
            if not r.changed:
                continue
            chart = f" chart {_pair(r.chart)}" if r.chart[0] != r.chart[1] else ""
            lines.append(f"  release {r.name}: {r.status}{chart}")
            if r.crds[0] != r.crds[1] and r.status == "changed":
                lines.append(f"    crds: {_pair(r.crds)}")
            for v in r.plain_changes:
                lines.append(f"    {v.path}: {v.before or '-'} -> {v.after or '-'}")
            for v in r.secret_changes:
                lines.append(f"    {v.path}: {v.kind} (secret)")
            if r.secrets_unchanged:
                lines.append(f"    {r.secrets_unchanged} secret keys unchanged")
        if m.weight[0] != m.weight[1] or m.share[0] != m.share[1]:
            lines.append(f"  weight (share): {weight_text(m)}")
        lines += [f"  {line}" for line in m.routing]
        lines += [f"  hook {line}" for line in m.hooks]
        lines += [f"  secrets file {f}: {s} (locked)" for f, s in m.locked_secrets]
        if m.terraform_files:
            lines.append(f"  terraform {m.terraform_stack}: {', '.join(m.terraform_files)}")
            if m.terraform_plan:
                lines.append(f"    plan: {m.terraform_plan}")
        lines += [f"  not computed: {line}" for line in m.not_computed]
        lines.append(("  CD deploys it" + ("" if m.changed_besides_cd else
                                           ": its files changed; its rendered values did not"))
                     if m.deployed_by_cd else "  CD does not deploy it")
    lines += [f"federation.yaml: {line}" for line in plan.federation]
    lines.append(f"CD order: {', '.join(plan.cd_order)}; "
                 f"would deploy: {', '.join(plan.cd_members) or 'none'}")
    by_name = {m.name: m for m in plan.members}
    lines += [f"  {name}: {cd_reason(by_name[name])}" for name in plan.cd_members]
    lines += [f"not computed: {note}" for note in plan.notes]
    return "\n".join(lines) + "\n"


def as_json(plan: Plan) -> str:
    data = dataclasses.asdict(plan)
    data["changed"] = plan.changed
    data["cd_members"] = plan.cd_members
    for member, obj in zip(data["members"], plan.members, strict=True):
        member["changed"] = obj.changed
    return json.dumps(data, indent=2, sort_keys=False) + "\n"
