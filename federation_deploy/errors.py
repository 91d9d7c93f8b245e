"""The one error hierarchy; only the CLI layer turns these into messages and exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CHANGES = 3


class FederationDeployError(Exception):
    """Base of every error the tool reports to a user."""

    exit_code = EXIT_FAILED

    def render(self) -> str:
        return str(self)


# the loader's message for a missing config directory; the CLI names FEDERATION_DEPLOY_CONFIG_DIR
# in it when that is where the directory came from (e.g. exported for a sandbox since removed)
CONFIG_DIR_NOT_FOUND = "config directory not found (use --config-dir)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, located as precisely as we can."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


class ConfigError(FederationDeployError):
    """Invalid configuration: carries every problem found, each with file, line and key."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    @classmethod
    def single(cls, file: str, line: int | None, key: str, message: str) -> ConfigError:
        return cls([Problem(file, line, key, message)])

    def render(self) -> str:
        if len(self.problems) == 1:
            return f"invalid config: {self.problems[0]}"
        lines = [f"invalid config: {len(self.problems)} problems"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class UsageError(FederationDeployError):
    """The user asked for something that cannot be done as asked (unknown member, bad flag)."""

    exit_code = EXIT_USAGE


class LockedFilesError(UsageError):
    """Files a command needs are still git-crypt ciphertext: not a config error (the config
    is valid), the clone is not unlocked. Names every such file, so one unlock fixes all."""

    def __init__(self, member: str, files: Sequence[str]) -> None:
        self.member = member
        self.files = list(files)
        super().__init__(f"locked by git-crypt: {', '.join(self.files)}; run git-crypt unlock "
                         f"(member {member} needs {'it' if len(self.files) == 1 else 'them'})")


class Frozen(UsageError):
    """A command refused by the federation's freeze (exit 2). step_summary is the refusal as
    markdown for a CI job's summary page: the CLI writes it there before the error."""

    def __init__(self, message: str, step_summary: str) -> None:
        self.step_summary = step_summary
        super().__init__(message)


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.rstrip().splitlines())


class ToolError(FederationDeployError):
    """An external tool failed; carries its argv, exit code and (censored) output."""

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int | None,
        stdout: str = "",
        stderr: str = "",
        *,
        summary: str | None = None,
        hint: str | None = None,
        stage: str | None = None,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.stage = stage
        self.summary = summary
        self.hint = hint
        super().__init__(self.render())

    def with_context(
        self,
        summary: str | None = None,
        *,
        hint: str | None = None,
        stage: str | None = None,
    ) -> ToolError:
        """The same failure with more said about it: a summary, a hint, the stage it stopped.

        A stage names itself in the summary once (``stage 'auth' failed: ...``); an error that
        already carries a stage keeps it and its summary, so wrapping twice changes nothing.
        """
        if self.stage is not None and stage is not None:
            return self
        new_summary = summary if summary is not None else self.summary
        if stage is not None and new_summary is not None:
            new_summary = f"stage {stage!r} failed: {new_summary}"
        return ToolError(self.argv, self.returncode, self.stdout, self.stderr,
                         summary=new_summary, hint=hint if hint is not None else self.hint,
                         stage=stage if stage is not None else self.stage)

    def render(self) -> str:
        import shlex

        cmd = shlex.join(self.argv)
        head = self.summary or f"command failed (exit {self.returncode}): {cmd}"
        parts = [head]
        if self.summary:
            parts.append(f"  command (exit {self.returncode}): {cmd}")
        output = self.stderr.strip() or self.stdout.strip()
        if output:
            parts.append(_indent(output))
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class MissingToolError(FederationDeployError):
    """A required external binary is absent or of the wrong version."""


class VerificationError(FederationDeployError):
    """A member (or a stage of a deploy) did not pass its checks."""

    def __init__(self, message: str, *, stage: str | None = None) -> None:
        self.stage = stage
        super().__init__(message if stage is None else f"stage {stage!r} failed: {message}")


class TerraformVersionError(UsageError):
    """The terraform binary found is not the version federation.yaml pins (exit 2)."""


class LockFileError(FederationDeployError):
    """A stack's .terraform.lock.hcl is missing; only `terraform lock` may write one."""


class ProviderUnavailableError(LockFileError):
    """A provider the lock file pins cannot be installed here (not in the plugin mirror)."""


class WeightsConflict(FederationDeployError):
    """Another writer changed the weights (federation.yaml or the published config) since this
    process read them: nothing was written or published by the loser (exit 1)."""


class PublishFailed(FederationDeployError):
    """Publishing weights failed after federation.yaml was written (exit 1): the message says
    what federation.yaml holds and how to publish it."""
