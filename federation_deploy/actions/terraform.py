"""Pinned terraform for one stack: the only module importing python_terraform."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from python_terraform import IsFlagged
from python_terraform import Terraform as _CommandBuilder

from federation_deploy.actions.terraform_diagnosis import MIRROR_ENV, diagnose
from federation_deploy.config import display_path
from federation_deploy.config.terraform_files import (
    WORK_DIR,
    S3Backend,
    mirror_platforms,
    providers_missing_from_mirror,
    stack_dirs,
    tf_files,
)
from federation_deploy.errors import (
    FederationDeployError,
    LockFileError,
    ProviderUnavailableError,
    TerraformVersionError,
    ToolError,
    UsageError,
)
from federation_deploy.runner import Runner
from federation_deploy.yamlio import atomic_write_text

LOCK_FILE = ".terraform.lock.hcl"
PLAN_FILE = "plan.tfplan"
PLAN_META = "plan.json"
INIT_META = "init.json"
LOCK_PLATFORMS = ("linux_amd64", "darwin_arm64")
ENDPOINT_ENVS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")

_VERSION_TEXT = re.compile(r"Terraform v(\d+\.\d+\.\d+\S*)")
_PLAN_LINE = re.compile(r"^Plan: .*$", re.MULTILINE)
_COUNT = re.compile(r"(\d+) to (import|add|change|destroy)")
_PROGRESS = re.compile(
    r": (Refreshing state\.\.\.|Reading\.\.\.|Read complete after|Still reading\.\.\.)"
)


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class PlanSummary:
    """What a plan would do, from terraform's own `Plan: ...` / `No changes.` line."""

    changes: bool
    line: str
    counts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, changes: bool) -> PlanSummary:
        match = _PLAN_LINE.search(text)
        if match:
            line = match.group(0).strip()
            counts = {kind: int(n) for n, kind in _COUNT.findall(line)}
            return cls(changes=changes, line=line, counts=counts)
        if changes:  # only outputs change: terraform prints no `Plan:` line then
            return cls(changes=True, line="Plan: changes to outputs only.")
        return cls(changes=False, line="No changes. Infrastructure matches the configuration.")


@dataclass(frozen=True)
class PlanResult:
    stack: str
    plan_file: Path
    summary: PlanSummary
    text: str  # terraform's plan, progress lines dropped


@dataclass(frozen=True)
class SavedPlan:
    """The plan `plan` left in the working area, as `apply` finds it."""

    stack: str
    plan_file: Path
    summary: PlanSummary
    created: str
    fingerprint: str


@dataclass(frozen=True)
class ApplyResult:
    stack: str
    summary: PlanSummary
    text: str
    outputs: Mapping[str, Any]
    outputs_file: Path | None


@dataclass(frozen=True)
class LockResult:
    stack: str
    platforms: tuple[str, ...]
    skipped: tuple[str, ...]  # asked for, but not in the mirror
    changed: bool
    text: str


@dataclass(frozen=True)
class BootstrapResult:
    backend: S3Backend
    imported: tuple[str, ...]  # resources that existed already and were adopted
    changes: bool
    summary: str
    state_file: Path


# --------------------------------------------------------------------------------------------
# Command lines: python-terraform renders them, the Runner runs them.


def _render_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Our option values -> python-terraform's, absorbing its quirks.

    python-terraform renders a Python bool as `-flag=true/false`, and writes a `var` dict to a
    temporary var file that outlives the command unless its own `cmd()` runs. We pass True as a
    bare flag (IsFlagged), drop False/None, and pass variables as a list of `k=v` strings, which
    it renders as repeated `-var=k=v` (visible in the echoed command, no temporary file).
    """
    rendered: dict[str, Any] = {}
    for name, value in options.items():
        if value is True:
            rendered[name] = IsFlagged
        elif value is False or value is None:
            continue
        elif isinstance(value, Mapping):
            rendered[name] = [f"{k}={v}" for k, v in value.items()]
        elif isinstance(value, list | tuple):
            rendered[name] = [str(v) for v in value]
        else:
            rendered[name] = str(value)
    return rendered


def build_command(binary: str, subcommand: str, *args: str, **options: Any) -> list[str]:
    """The argv of one terraform command, e.g. build_command("terraform", "plan", out="p").

    We never call python-terraform's plan/apply/destroy/init/output helpers: apply always adds
    `-auto-approve=<skip_plan>`, destroy adds the obsolete `-force`, plan/init add temporary
    var files, `raise_on_error=True` treats plan's exit 2 (changes) as a failure, and
    `output(name)` breaks on current terraform. Only its option rendering is used.
    """
    # working_dir points into nothing: the constructor reads a state file from there if present.
    builder = _CommandBuilder(working_dir=os.devnull + ".d", terraform_bin_path=binary)
    argv = builder.generate_cmd_string(subcommand, *args, **_render_options(options))
    return [str(a) for a in argv]


# --------------------------------------------------------------------------------------------
# Environment


def _endpoint_problem(environ: Mapping[str, str]) -> str | None:
    """An emulator endpoint must be an IP address: S3 clients (backend and provider) switch to
    path-style addressing only for IP endpoints, and `bucket.localhost` does not resolve."""
    for name in ENDPOINT_ENVS:
        url = environ.get(name)
        if not url:
            continue
        host = urlsplit(url).hostname or ""
        if host == "localhost" or host.endswith(".localhost"):
            return (f"{name}={url}: use 127.0.0.1 instead of localhost (S3 requests to a "
                    "hostname use bucket.HOST addresses, which do not resolve)")
    return None


@contextmanager
def _cli_config(mirror: str | None) -> Iterator[dict[str, str]]:
    """Environment for one run: a private temporary directory (0700) as TMPDIR, where the
    provider plugins put their sockets, removed after the run, also on Ctrl-C (terraform
    killed in the middle left a 0-byte `plugin...` socket in /tmp); with a plugin mirror,
    the generated CLI config pointing at it (mode 0600) in the same directory."""
    directory = tempfile.mkdtemp(prefix="federation-deploy-terraform-")
    try:
        env = {"TMPDIR": directory}
        if mirror:
            path = os.path.join(directory, "mirror.tfrc")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(mirror_cli_config(mirror))
            env["TF_CLI_CONFIG_FILE"] = path
        yield env
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def mirror_cli_config(mirror: str) -> str:
    """A terraform CLI config that installs every provider from a filesystem mirror only."""
    return (
        "# generated by federation-deploy for one run (TF_PLUGIN_MIRROR)\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(str(Path(mirror).resolve()))}\n"
        '    include = ["*/*/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["*/*/*"]\n'
        "  }\n"
        "}\n"
    )


# --------------------------------------------------------------------------------------------
# The adapter


class PinnedTerraform:
    """Terraform at the pinned version, run in one stack directory through the Runner.

    ``env`` is added to the process environment of every terraform run (and is where
    TF_PLUGIN_MIRROR and the AWS endpoint variables are looked up), so the same stack runs
    against AWS or a local emulator by environment only.
    """

    def __init__(
        self,
        stack: Path,
        version: str,
        runner: Runner,
        *,
        name: str | None = None,
        member: str | None = None,
        variables: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        binary: str = "terraform",
    ) -> None:
        self.stack = Path(stack)
        self.name = name or self.stack.name
        self.member = member
        self.version = version
        self.runner = runner
        self.variables = dict(variables or {})
        self.env = dict(env or {})
        self.environ = {**os.environ, **self.env}
        self.binary = binary
        self._resolved: str | None = None
        self._checked = False

    # -- paths -------------------------------------------------------------------------------

    @property
    def work_dir(self) -> Path:
        return self.stack / WORK_DIR

    @property
    def lock_file(self) -> Path:
        return self.stack / LOCK_FILE

    @property
    def plan_file(self) -> Path:
        return self.work_dir / PLAN_FILE

    @property
    def mirror(self) -> str | None:
        return self.environ.get(MIRROR_ENV) or None

    def _command_hint(self, command: str) -> str:
        return f"`federation-deploy terraform {command}{f' {self.member}' if self.member else ''}`"

    # -- running -----------------------------------------------------------------------------

    def executable(self) -> str:
        if self._resolved is None:
            found = shutil.which(self.binary, path=self.environ.get("PATH"))
            if found is None:
                raise TerraformVersionError(
                    f"terraform not found on PATH; install terraform {self.version} (the version "
                    "config/federation.yaml pins) from https://releases.hashicorp.com/terraform/"
                    f"{self.version}/ and put it on PATH"
                )
            self._resolved = found
        return self._resolved

    def _run(
        self,
        subcommand: str,
        *args: str,
        ok_codes: Sequence[int] = (0,),
        live: bool = False,
        **options: Any,
    ) -> subprocess.CompletedProcess[str]:
        # live: progress shown as it comes (refresh lines only with -v), in colour where the
        # Runner may colour; else data we parse (only its stderr shown), never coloured
        if live and self.runner.color:
            options.pop("no_color", None)
        argv = build_command(self.executable(), subcommand, *args, **options)
        problem = _endpoint_problem(self.environ)
        if problem:
            raise UsageError(problem)
        base = {"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
        with _cli_config(self.mirror) as extra:
            env = {**base, **self.env, **extra}
            return self.runner.run(argv, cwd=self.stack, env=env, ok_codes=ok_codes,
                                   live="all" if live else "stderr", quiet_lines=_PROGRESS)

    def installed_version(self) -> str:
        proc = self._run("version", json=True)
        try:
            data = json.loads(proc.stdout)
            return str(data["terraform_version"])
        except (ValueError, KeyError, TypeError):
            match = _VERSION_TEXT.search(proc.stdout)
            if match:
                return match.group(1)
        raise TerraformVersionError(
            f"cannot tell the version of {self.executable()} (`terraform version` printed "
            f"{proc.stdout.strip()[:80]!r}); install terraform {self.version}"
        )

    def check_version(self) -> str:
        """Refuse (exit 2) any terraform but the pinned one, saying which and how to fix it."""
        if self._checked:
            return self.version
        found = self.installed_version()
        if found != self.version:
            raise TerraformVersionError(
                f"terraform {found} found at {self.executable()}, but config/federation.yaml "
                f"pins terraform {self.version} (terraform.version).\n"
                f"  fix: install terraform {self.version} "
                f"(https://releases.hashicorp.com/terraform/{self.version}/, or "
                f"`tfenv install {self.version}`) and put it first on PATH; or, to move the "
                "federation to another version, change terraform.version and every stack's "
                "required_version together (`federation-deploy validate` checks they agree)"
            )
        self._checked = True
        return found

    # -- fingerprints and the working area ---------------------------------------------------

    def fingerprint(self) -> str:
        """Hash of what a plan depends on besides state: the stack's and its local modules'
        *.tf files, the lock file, and the variables the tool passes."""
        digest = hashlib.sha256()
        for directory in stack_dirs(self.stack):
            for path in [*tf_files(directory), directory / LOCK_FILE]:
                if path.is_file():
                    digest.update(os.path.relpath(path, self.stack).encode())
                    digest.update(b"\0")
                    digest.update(path.read_bytes())
                    digest.update(b"\0")
        digest.update(json.dumps(self.variables, sort_keys=True).encode())
        return digest.hexdigest()

    def _make_work_dir(self) -> None:
        # Plan files hold variable values and state: readable by the owner only.
        self.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.work_dir.chmod(0o700)

    def _write_meta(self, name: str, data: Mapping[str, Any]) -> None:
        self._make_work_dir()
        atomic_write_text(self.work_dir / name, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def _read_meta(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.work_dir / name).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _discard_plan(self) -> None:
        for name in (PLAN_FILE, PLAN_META):
            (self.work_dir / name).unlink(missing_ok=True)

    # -- commands ----------------------------------------------------------------------------

    def require_lock_file(self) -> None:
        if not self.lock_file.is_file():
            raise LockFileError(
                f"terraform stack {self.name} has no {LOCK_FILE}: plan and apply need the "
                "provider versions and checksums pinned.\n"
                f"  fix: run {self._command_hint('lock')} on a machine that reaches "
                f"the provider registry (or with {MIRROR_ENV}=DIR set), review and commit "
                f"{display_path(self.lock_file)}"
            )
        # A stack whose locked providers the mirror lacks cannot be initialised here: say so
        # (and that it is skipped) instead of letting init fail with a registry error.
        missing = (providers_missing_from_mirror(self.lock_file, Path(self.mirror))
                   if self.mirror else [])
        if missing:
            raise ProviderUnavailableError(
                f"terraform stack {self.name}: {', '.join(missing)} (pinned by "
                f"{display_path(self.lock_file)}) is not in {MIRROR_ENV}={self.mirror}, and with "
                "a mirror the registry is not used: this stack is skipped here.\n"
                "  fix: run it where registry.terraform.io is reachable (unset "
                f"{MIRROR_ENV}), or add that provider version to the mirror"
            )

    def init(self) -> str:
        """`terraform init -lockfile=readonly`: a missing or mismatching lock file is an error
        and is never rewritten (only `lock` writes it)."""
        self.check_version()
        self.require_lock_file()
        before = self.lock_file.read_bytes()
        try:
            proc = self._run("init", input="false", no_color=True, lockfile="readonly", live=True)
        except ToolError as exc:
            raise self._explain(exc, "init",
                                fallback=f"terraform init failed in {self.name}") from None
        finally:
            if self.lock_file.is_file() and self.lock_file.read_bytes() != before:
                # terraform promises this with -lockfile=readonly; we enforce it regardless.
                self.lock_file.write_bytes(before)
        self._write_meta(INIT_META, {"fingerprint": self.fingerprint(), "mirror": self.mirror})
        return str(proc.stdout)

    def _explain(self, exc: ToolError, action: str, fallback: str | None = None) -> ToolError:
        """exc with a summary and hint read from terraform's own error text (diagnose)."""
        found = diagnose(exc.stderr + "\n" + exc.stdout, stack=self.name,
                         chdir=display_path(self.stack), lock_command=self._command_hint("lock"),
                         mirror=self.mirror, action=action,
                         bootstrap_command=self._command_hint("bootstrap"))
        if found is None:
            return exc.with_context(fallback) if fallback else exc
        return exc.with_context(found.summary, hint=found.hint)

    def ensure_initialised(self) -> None:
        """Run init unless it already ran for exactly these files (saves ~0.5 s per command)."""
        meta = self._read_meta(INIT_META)
        current = meta is not None and meta.get("fingerprint") == self.fingerprint() \
            and meta.get("mirror") == self.mirror and (self.stack / ".terraform").is_dir()
        if not current:
            self.init()

    def plan(self) -> PlanResult:
        """Plan and save it in the working area; `apply` applies exactly this plan."""
        self.check_version()
        self.require_lock_file()
        self.ensure_initialised()
        self._make_work_dir()
        self._discard_plan()
        fingerprint = self.fingerprint()
        try:
            proc = self._run("plan", input="false", no_color=True, detailed_exitcode=True,
                             out=str(self.plan_file), var=self.variables, ok_codes=(0, 2),
                             live=True)
        except ToolError as exc:
            raise self._explain(exc, "plan") from None
        text = _drop_progress(proc.stdout)
        summary = PlanSummary.parse(text, changes=proc.returncode == 2)
        self._write_meta(PLAN_META, {
            "stack": self.name,
            "fingerprint": fingerprint,
            "changes": summary.changes,
            "summary": summary.line,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "terraform_version": self.version,
        })
        return PlanResult(stack=self.name, plan_file=self.plan_file, summary=summary, text=text)

    def saved_plan(self) -> SavedPlan:
        """The plan `plan` saved; refuses when there is none or the stack changed since."""
        meta = self._read_meta(PLAN_META)
        if meta is None or not self.plan_file.is_file():
            raise UsageError(
                f"no saved plan for {self.name}: run {self._command_hint('plan')} first "
                "(apply applies only a plan you have seen)"
            )
        if meta.get("fingerprint") != self.fingerprint():
            self._discard_plan()
            raise UsageError(
                f"the saved plan of {self.name} is stale: the stack's files, its lock file or "
                f"its variables changed after the plan was made; run "
                f"{self._command_hint('plan')} again"
            )
        summary = PlanSummary.parse(str(meta.get("summary", "")), bool(meta.get("changes")))
        return SavedPlan(stack=self.name, plan_file=self.plan_file, summary=summary,
                         created=str(meta.get("created")), fingerprint=str(meta["fingerprint"]))

    def apply(self, confirm: Callable[[SavedPlan], None] | None = None) -> tuple[PlanSummary, str]:
        """Apply the saved plan (only it), then forget it; returns its summary and the log.

        ``confirm`` sees the saved plan before anything changes and raises to abort.
        """
        self.check_version()
        saved = self.saved_plan()
        if confirm is not None:
            confirm(saved)
        self.ensure_initialised()
        try:
            proc = self._run("apply", str(saved.plan_file), input="false", no_color=True,
                             lock_timeout="0s", live=True)
        except ToolError as exc:
            raise self._explain_apply_failure(exc) from None
        self._discard_plan()
        return saved.summary, _drop_progress(proc.stdout)

    def _explain_apply_failure(self, exc: ToolError) -> FederationDeployError:
        output = exc.stderr + "\n" + exc.stdout
        if "Saved plan is stale" in output:
            self._discard_plan()
            return exc.with_context(
                f"the saved plan of {self.name} is stale: the state changed after it "
                "was made (another apply ran); nothing was applied",
                hint=f"run {self._command_hint('plan')} again, review it, then apply",
            )
        return self._explain(exc, "apply")

    def check(self, *, live: bool = True) -> tuple[PlanSummary, str]:
        """Plan with -detailed-exitcode and save nothing: drift detection. live=False keeps
        the plan (attribute values) off the terminal: `drift` shows its resource lines only."""
        self.check_version()
        self.require_lock_file()
        self.ensure_initialised()
        try:
            proc = self._run("plan", input="false", no_color=True, detailed_exitcode=True,
                             var=self.variables, ok_codes=(0, 2),
                             live=live)
        except ToolError as exc:
            raise self._explain(exc, "plan") from None
        text = _drop_progress(proc.stdout)
        return PlanSummary.parse(text, changes=proc.returncode == 2), text

    def outputs(self) -> dict[str, Any]:
        """`terraform output -json`: {name: {value, type, sensitive}}."""
        self.check_version()
        self.ensure_initialised()
        proc = self._run("output", json=True, no_color=True)
        text = proc.stdout.strip()
        if not text:
            return {}
        data = json.loads(text)
        return data if isinstance(data, dict) else {}

    def lock(self, platforms: Sequence[str] = LOCK_PLATFORMS) -> LockResult:
        """`terraform providers lock`: the one command that writes the lock file."""
        self.check_version()
        wanted = tuple(platforms)
        skipped: tuple[str, ...] = ()
        options: dict[str, Any] = {}
        if self.mirror:
            mirror = Path(self.mirror)
            if not mirror.is_dir():
                raise UsageError(f"{MIRROR_ENV}={self.mirror}: no such directory")
            available = mirror_platforms(mirror)
            skipped = tuple(p for p in wanted if p not in available)
            wanted = tuple(p for p in wanted if p in available)
            if not wanted:
                raise UsageError(
                    f"the mirror {self.mirror} has none of the platforms "
                    f"{', '.join(platforms)} (it has: {', '.join(sorted(available)) or 'none'})"
                )
            options["fs_mirror"] = str(mirror.resolve())
        before = self.lock_file.read_bytes() if self.lock_file.is_file() else None
        # providers lock reads the whole configuration, local modules included; `get` installs
        # those (and nothing else: no backend, no providers)
        self._run("get", no_color=True, live=True)
        proc = self._run("providers lock", no_color=True, platform=[*wanted], live=True, **options)
        after = self.lock_file.read_bytes() if self.lock_file.is_file() else None
        return LockResult(stack=self.name, platforms=wanted, skipped=skipped,
                          changed=before != after, text=str(proc.stdout))

    def apply_local(self, *, state: Path, extra: Mapping[str, str] | None = None
                    ) -> tuple[bool, str]:
        """Plan-and-apply in one step into a local state file (the bootstrap stack only)."""
        try:
            proc = self._run("apply", input="false", no_color=True, auto_approve=True,
                             state=str(state), var={**self.variables, **(extra or {})},
                             live=True)
        except ToolError as exc:
            raise self._explain(exc, "apply") from None
        text = _drop_progress(proc.stdout)
        changed = not re.search(r"Resources: 0 added, 0 changed, 0 destroyed", text)
        return changed, text


def _drop_progress(text: str) -> str:
    """Terraform's output without the per-resource refresh lines (progress, not the plan)."""
    lines = [line for line in text.splitlines() if not _PROGRESS.search(line)]
    return "\n".join(lines).strip("\n") + "\n" if lines else ""
