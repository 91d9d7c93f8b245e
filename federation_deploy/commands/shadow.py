"""The shadow command: run the repository's own deploy.py dry run, compare it with our plan."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass

from federation_deploy.adopt.shadow import ShadowReport, compare
from federation_deploy.adopt.sources import read_env_file
from federation_deploy.commands.result import CommandResult
from federation_deploy.config import Federation, Member
from federation_deploy.errors import EXIT_CHANGES, EXIT_OK, UsageError
from federation_deploy.runner import Runner, censor
from federation_deploy.values.render import render_releases, require_deployable

DEPLOY_SCRIPT = "deploy.py"
ENV_FILE = "cert-manager.env"


@dataclass(frozen=True)
class ShadowRun:
    """What shadow will run, said (and confirmed) before it runs."""

    fed: Federation
    member: Member
    argv: tuple[str, ...]
    env: dict[str, str]
    sourced: bool  # cert-manager.env's variables are in env

    def describe(self) -> str:
        sourced = f" with {ENV_FILE} sourced" if self.sourced else ""
        return (f"runs the repository's own {DEPLOY_SCRIPT} in its dry-run mode{sourced}: "
                f"{shlex.join(self.argv)} (in {self.fed.config_dir}; it prints commands and "
                "touches no cluster)")


def prepare(fed: Federation, member_name: str) -> ShadowRun:
    """The deploy.py command line for member: `deploy.py MEMBER --dry-run --local`, with
    `--name` when the live release name differs (as cd.yml passes it)."""
    member = require_deployable(fed, member_name)
    script = fed.config_dir / DEPLOY_SCRIPT
    if not script.is_file():
        raise UsageError(f"no {DEPLOY_SCRIPT} in {fed.config_dir.resolve()} (the config "
                         "directory, where shadow looks for it): shadow compares an adopted "
                         "repository's own deploy script with federation-deploy's plan; run "
                         "it with --config-dir set to that repository")
    text = script.read_text(encoding="utf-8")
    if "--dry-run" not in text:
        raise UsageError(f"{script} has no --dry-run mode (mybinder.org-deploy added it in "
                         "June 2023): shadow cannot run it without touching a cluster (a "
                         "known limit: README, Adopting an existing deploy repository)")
    argv = [sys.executable, DEPLOY_SCRIPT, member.name]
    name = member.releases[-1].helm_name if member.releases else member.name
    if name != member.name and "--name" in text:
        argv += ["--name", name]
    argv += ["--dry-run", "--local"]
    # TERM empty: deploy.py colours its headings with tput only when TERM is set
    sourced = read_env_file(fed.config_dir / ENV_FILE)
    env = {"TERM": "", **sourced}
    return ShadowRun(fed, member, tuple(argv), env, bool(sourced))


def render_report(report: ShadowReport) -> str:
    lines = [f"shadow {report.member}: compared {', '.join(report.compared) or 'nothing'}"]
    if not report.differences:
        lines.append("no differences")
    lines += [d.render() for d in report.differences]
    unintended = len(report.unintended)
    lines.append(f"{unintended} unintended difference(s)" if unintended
                 else "every difference is intended (README: What changes compared with "
                      "deploy.py)")
    return "\n".join(lines) + "\n"


def shadow(run: ShadowRun, *, runner: Runner, without_secrets: bool = False) -> CommandResult:
    """Run deploy.py's dry run and compare what it prints with the member's plan and values.

    Secret values are compared and never shown (not even as digests); --without-secrets
    compares the secret files by path only. Exit 3 when a difference is not intended."""
    rendered = render_releases(run.fed, run.member, without_secrets=without_secrets)
    secrets = {s for release in rendered for s in release.secret_strings()}
    # censored in what is shown, not in what is compared: a censored `***` in deploy.py's
    # output would differ from our (uncensored) plan
    proc = runner.run(list(run.argv), cwd=run.fed.config_dir, env=run.env,
                      shown_secrets=secrets)
    report = compare(run.fed, run.member, proc.stdout, rendered,
                     without_secrets=without_secrets)
    return CommandResult(exit_code=EXIT_CHANGES if report.unintended else EXIT_OK,
                         stdout=censor(render_report(report), secrets))
