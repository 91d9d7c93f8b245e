"""Why a terraform run failed, read from terraform's own error text: a summary and a hint that
match the real cause (registry, credentials, lock file, state lock, resources left behind)."""

from __future__ import annotations

import re
from dataclasses import dataclass

MIRROR_ENV = "TF_PLUGIN_MIRROR"

# terraform's error diagnostics, with or without the box drawing of a terminal
_BOX = re.compile(r"^[ \t]*[│╷╵|][ \t]?", re.MULTILINE)
_LOCK_INFO = re.compile(r"^\s+(ID|Path|Operation|Who|Created):\s+(.*)$", re.MULTILINE)
_RESOURCE = re.compile(r"^\s*with (\S+?),\s*$", re.MULTILINE)

# Patterns are matched against the error part only (from the first "Error:" on): terraform's
# normal progress says "Reusing previous version of hashicorp/aws from the dependency lock
# file", which must not read as a lock-file problem.
_STATE_LOCK = re.compile(r"Error acquiring the state lock")
_CREDENTIALS = re.compile(
    r"No valid credential sources found|failed to refresh cached credentials|"
    r"NoCredentialProviders|InvalidClientTokenId|UnrecognizedClientException|ExpiredToken|"
    r"SignatureDoesNotMatch|security token included in the request is invalid|"
    r"could not find default credentials|google: could not find default credentials",
    re.IGNORECASE,
)
_LOCK_MISMATCH = re.compile(
    r"does not match configured version constraint|checksums previously recorded|"
    r"doesn't match any of the checksums|Inconsistent dependency lock file|"
    r"not (?:yet )?(?:recorded )?in the dependency lock file|lock file is read-only|"
    r"-lockfile=readonly|Provider dependency changes detected",
)
_REGISTRY = re.compile(
    r"could not connect to registry|failed to request discovery document|"
    r"Failed to query available provider packages|could not query provider registry|"
    r"Failed to install provider|no available releases match",
)
_ALREADY_EXISTS = re.compile(
    r"EntityAlreadyExists|BucketAlreadyOwnedByYou|BucketAlreadyExists|"
    r"ResourceAlreadyExistsException|ResourceInUseException|AlreadyExistsException|"
    r"\balready exists\b",
)


@dataclass(frozen=True)
class Diagnosis:
    """What went wrong (a summary) and what to do (a hint); cause names the class."""

    cause: str
    summary: str
    hint: str


def error_text(output: str) -> str:
    """The error diagnostics of terraform's output: from its first `Error:` on, unboxed."""
    plain = _BOX.sub("", output)
    start = plain.find("Error:")
    return plain[start:] if start >= 0 else ""


def diagnose(output: str, *, stack: str, chdir: str, lock_command: str, mirror: str | None,
             action: str) -> Diagnosis | None:
    """The cause of a failed `terraform <action>` in stack, or None when the text names none
    we know (the raw error then speaks for itself)."""
    errors = error_text(output)
    if not errors:
        return None
    # terraform wraps its messages at 80 columns: match on one line of single spaces
    flat = " ".join(errors.split())
    if _STATE_LOCK.search(flat):
        info = dict(_LOCK_INFO.findall(errors))
        holder = ", ".join(f"{k.lower()} {v.strip()}" for k, v in info.items()
                           if k in ("Who", "Operation", "Created") and v.strip())
        lock_id = info.get("ID", "").strip()
        unlock = f"terraform -chdir={chdir} force-unlock {lock_id or 'LOCK_ID'}"
        return Diagnosis(
            "state-lock",
            f"the state of {stack} is locked by another terraform run"
            f"{f' ({holder})' if holder else ''}; nothing was "
            f"{'applied' if action == 'apply' else 'done'} and the state is unchanged",
            f"wait for that run to finish, then {action} again. Only if it died holding the "
            f"lock, release it with `{unlock}`",
        )
    if _CREDENTIALS.search(flat):
        return Diagnosis(
            "credentials",
            f"terraform {action} in {stack} found no valid cloud credentials",
            "log in to the cloud (AWS: AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
            "`aws sts get-caller-identity` to check; GCP: `gcloud auth application-default "
            "login`); against an emulator set AWS_ENDPOINT_URL and its test credentials",
        )
    if _LOCK_MISMATCH.search(flat):
        return Diagnosis(
            "lock-file",
            f"terraform {action} refused the lock file of {stack}; it was left unchanged",
            "the providers or versions the stack requires differ from the ones the lock file "
            "pins (or its checksums do not match the packages). If the change is intended, "
            f"run {lock_command} and commit the new lock file; init never rewrites it",
        )
    if _REGISTRY.search(flat):
        if mirror:
            hint = (f"providers come from {MIRROR_ENV}={mirror}: check that the mirror holds "
                    "the versions the lock file pins, for this platform")
        else:
            hint = (f"the provider registry cannot be reached from here: set {MIRROR_ENV}=DIR "
                    "to a filesystem mirror of the providers (`make` sets it for the tests "
                    "and the sandbox), or run where registry.terraform.io is reachable")
        return Diagnosis("registry", f"terraform {action} could not get the providers of "
                                     f"{stack}", hint)
    if _ALREADY_EXISTS.search(flat):
        addresses = sorted(set(_RESOURCE.findall(errors)))
        named = ", ".join(addresses) if addresses else "the resources named above"
        example = addresses[0] if addresses else "ADDRESS"
        return Diagnosis(
            "already-exists",
            f"terraform {action} in {stack} met resources that exist but are not in its state "
            f"({named}); an earlier apply was probably interrupted after creating them",
            f"import each into the state (`terraform -chdir={chdir} import {example} ID`) or "
            "delete it in the cloud, then plan and apply again",
        )
    return None
