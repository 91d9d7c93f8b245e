"""Why a terraform run failed, read from terraform's own error text: a summary and a hint that
match the real cause (registry, credentials, lock file, state lock, a state bucket or lock
table that does not exist, resources left behind)."""

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
# The lock is held by another run only when DynamoDB refused the conditional put (terraform
# then prints the holder's Lock Info). Every other failure to take the lock says something
# else, and force-unlock advice there would be dangerous (issue 29: a missing table read as
# "locked by another terraform run").
_LOCK_HELD = re.compile(r"ConditionalCheckFailedException|The conditional request failed")
_TABLE_MISSING = re.compile(
    r"ResourceNotFoundException|Requested resource not found|non-existent table|"
    r"Table: \S+ not found")
_TABLE_NAME = re.compile(r'DynamoDB table "([^"]+)"')
_BUCKET_MISSING = re.compile(r'S3 bucket "?([^"\s]+?)"? does not exist|NoSuchBucket')
_ACCESS_DENIED = re.compile(r"AccessDenied(?:Exception)?|not authorized to perform")
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
             action: str, bootstrap_command: str = "`federation-deploy terraform bootstrap "
                                                   "MEMBER`") -> Diagnosis | None:
    """The cause of a failed `terraform <action>` in stack, or None when the text names none
    we know (the raw error then speaks for itself)."""
    errors = error_text(output)
    if not errors:
        return None
    # terraform wraps its messages at 80 columns: match on one line of single spaces
    flat = " ".join(errors.split())
    if (missing := _missing_backend(flat, stack, action, bootstrap_command)) is not None:
        return missing
    if _STATE_LOCK.search(flat) and not _LOCK_HELD.search(flat):
        return _lock_not_taken(flat, stack, action)
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


def _missing_backend(flat: str, stack: str, action: str,
                     bootstrap_command: str) -> Diagnosis | None:
    """The remote state's bucket or lock table does not exist (yet, or in this account and
    region): no run holds anything, the bootstrap creates both."""
    table = _TABLE_NAME.search(flat)
    if _STATE_LOCK.search(flat) and _TABLE_MISSING.search(flat):
        what = f"DynamoDB lock table {table.group(1)!r}" if table else "DynamoDB lock table"
    elif bucket := _BUCKET_MISSING.search(flat):
        what = (f"S3 state bucket {bucket.group(1)!r}" if bucket.group(1)
                else "S3 state bucket")
    else:
        return None
    return Diagnosis(
        "backend-missing",
        f"the {what} of {stack} does not exist (in this account and region); no other "
        f"terraform run holds a lock, nothing was {'applied' if action == 'apply' else 'done'} "
        "and the state is unchanged",
        f"create the state bucket and lock table with {bootstrap_command} (it applies "
        "terraform/aws/bootstrap with the names of the stack's `backend \"s3\"` block), then "
        f"{action} again; if they exist, check that the backend block names them and their "
        "region, and that the credentials are for their account. Do not force-unlock: "
        "there is no lock to release",
    )


def _lock_not_taken(flat: str, stack: str, action: str) -> Diagnosis:
    """terraform could not take the state lock, and not because another run holds it."""
    if _ACCESS_DENIED.search(flat):
        reason = "these credentials may not use its DynamoDB lock table"
        hint = ("give the identity terraform runs as dynamodb:GetItem, PutItem and DeleteItem "
                "on the lock table (`aws sts get-caller-identity` says who that is), then "
                f"{action} again")
    else:
        reason = "DynamoDB did not answer as expected (see terraform's error above)"
        hint = f"fix what the error says, then {action} again"
    return Diagnosis(
        "state-lock-failed",
        f"terraform could not take the state lock of {stack}: {reason}; no other terraform "
        "run holds it, and the state is unchanged",
        hint + ". Do not force-unlock: no run holds the lock",
    )
