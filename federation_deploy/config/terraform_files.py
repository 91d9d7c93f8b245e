"""The stacks' .tf files read just enough: declared variables, the s3 backend, version pins."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from federation_deploy.config import Federation, display_path
from federation_deploy.errors import Problem, UsageError
from federation_deploy.yamlio import read_config_text

WORK_DIR = ".fd-work"  # git-ignored working area of the tool inside each stack
BOOTSTRAP_STACK = "aws/bootstrap"

REQUIRED_VERSION = re.compile(r'^\s*required_version\s*=\s*"([^"]*)"', re.MULTILINE)
_VARIABLE = re.compile(r'^\s*variable\s+"([A-Za-z0-9_-]+)"', re.MULTILINE)
_LOCAL_SOURCE = re.compile(r'^\s*source\s*=\s*"(\.\.?/[^"]+)"', re.MULTILINE)
_ASSIGNMENT = re.compile(r'^\s*([A-Za-z0-9_]+)\s*=\s*(?:"([^"]*)"|(\S+))\s*$')


@dataclass(frozen=True)
class S3Backend:
    """The `backend "s3"` block of a stack (what bootstrap must create)."""

    bucket: str
    key: str
    region: str
    dynamodb_table: str
    file: Path
    line: int



# --------------------------------------------------------------------------------------------
# Reading HCL just enough (no HCL parser is available to us; these are simple, formatted files)


def tf_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.tf") if p.is_file())


def stack_dirs(stack: Path) -> list[Path]:
    """The stack and every local module it calls, recursively (sources starting ./ or ../)."""
    seen: list[Path] = []
    todo = [stack.resolve()]
    while todo:
        directory = todo.pop()
        if directory in seen or not directory.is_dir():
            continue
        seen.append(directory)
        for path in tf_files(directory):
            for source in _LOCAL_SOURCE.findall(read_config_text(path, display_path(path))):
                todo.append((directory / source).resolve())
    return seen


def declared_variables(stack: Path) -> set[str]:
    names: set[str] = set()
    for path in tf_files(stack):
        names.update(_VARIABLE.findall(read_config_text(path, display_path(path))))
    return names


def _block_lines(text: str, opening: re.Pattern[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number of the opening, inner lines) of each block whose first line matches."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not opening.match(line):
            continue
        depth = line.count("{") - line.count("}")
        inner: list[str] = []
        for body in lines[i + 1 :]:
            depth += body.count("{") - body.count("}")
            if depth <= 0:
                break
            inner.append(body)
        yield i + 1, inner


def parse_s3_backend(stack: Path) -> S3Backend | None:
    """The `backend "s3"` settings of a stack, or None when it has no S3 backend."""
    opening = re.compile(r'^\s*backend\s+"s3"\s*\{')
    for path in tf_files(stack):
        for line, inner in _block_lines(read_config_text(path, display_path(path)), opening):
            values: dict[str, str] = {}
            for body in inner:
                match = _ASSIGNMENT.match(body.split("#", 1)[0])
                if match:
                    values[match.group(1)] = match.group(2) or match.group(3) or ""
            missing = [k for k in ("bucket", "key", "region", "dynamodb_table") if k not in values]
            if missing:
                raise UsageError(
                    f"{path}:{line}: backend \"s3\" needs {', '.join(missing)} as literal strings "
                    "(bootstrap creates what it names)"
                )
            return S3Backend(
                bucket=values["bucket"], key=values["key"], region=values["region"],
                dynamodb_table=values["dynamodb_table"], file=path, line=line,
            )
    return None


def _exact_pin(constraint: str) -> str | None:
    """The version an exact constraint (`1.2.3` or `= 1.2.3`) pins, None for ranges."""
    value = constraint.strip()
    if value.startswith("=") and not value.startswith("=="):
        value = value[1:].strip()
    return value if re.fullmatch(r"\d+\.\d+\.\d+", value) else None


def check_terraform_pins(fed: Federation) -> list[Problem]:
    """Every stack and module under the terraform root allows fed.terraform_version.

    Each `required_version` found must equal the pin or be a range that allows it; every
    stack a member uses (and the AWS bootstrap stack), or a local module it calls, must have
    one and must declare required_providers. Problems name the file
    and line. Pure reading: no terraform is run.
    """
    problems: list[Problem] = []
    pin = fed.terraform_version
    root = fed.terraform_root
    if not root.is_dir():
        return problems
    for path in sorted(root.rglob("*.tf")):
        if {".terraform", WORK_DIR} & set(path.relative_to(root).parts):
            continue
        text = read_config_text(path, display_path(path))
        for match in REQUIRED_VERSION.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            constraint = match.group(1)
            exact = _exact_pin(constraint)
            if exact is None:
                inside = satisfies(pin, constraint)
                if inside is None:
                    problems.append(Problem(
                        display_path(path), line, "required_version",
                        f"cannot read the range {constraint!r}: pin exactly {pin!r} (the "
                        f"version in {fed.path.name}) or write a range like \">= 1.4.6\""))
                elif not inside:
                    problems.append(Problem(
                        display_path(path), line, "required_version",
                        f"the range {constraint!r} does not allow terraform {pin!r}, the "
                        f"version {fed.path.name} pins: change one so that it lies inside"))
            elif exact != pin:
                problems.append(Problem(
                    display_path(path), line, "required_version",
                    f"says {exact!r}, but {fed.path.name} pins terraform {pin!r}: "
                    "change one so that they agree"))
    stacks = {m.terraform.directory for m in fed.members.values() if m.terraform}
    if any(m.cloud == "aws" and m.terraform for m in fed.members.values()):
        bootstrap = root / BOOTSTRAP_STACK
        if bootstrap.is_dir():
            stacks.add(bootstrap.resolve())
    for stack in sorted(stacks):
        # the pins of a stack may live in the local modules it calls (mybinder's gcp stacks)
        texts = "\n".join(read_config_text(p, display_path(p))
                          for d in stack_dirs(stack) for p in tf_files(d))
        if not REQUIRED_VERSION.search(texts):
            problems.append(Problem(display_path(stack), None, "required_version",
                                    f"the stack does not pin terraform: add required_version = "
                                    f"\"{pin}\" to its terraform block"))
        if not re.search(r"^\s*required_providers\s*\{", texts, re.MULTILINE):
            problems.append(Problem(display_path(stack), None, "required_providers",
                                    "the stack does not pin its providers: add a "
                                    "required_providers block with exact versions"))
    return problems


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def satisfies(version: str, constraint: str) -> bool | None:
    """Whether an exact version lies inside a terraform version constraint (`>= 1.4.6`,
    `~> 1.1`, `= 1.5.7`, `1.5.7`, comma-separated: all must hold); None when unreadable."""
    have = _version(version)
    for part in constraint.split(","):
        match = re.fullmatch(r"\s*(>=|<=|!=|~>|>|<|=)?\s*v?(\d+(?:\.\d+){0,2})\s*", part)
        if match is None:
            return None
        op, text = match[1] or "=", match[2]
        want = _version(text)
        padded = want + (0,) * (3 - len(want))
        ok = {
            "=": have == padded, "!=": have != padded, ">": have > padded, "<": have < padded,
            ">=": have >= padded, "<=": have <= padded,
            # ~> 1.1 allows 1.x >= 1.1; ~> 1.4.6 allows 1.4.x >= 1.4.6
            "~>": have >= padded and have[:len(want) - 1] == want[:len(want) - 1],
        }[op]
        if not ok:
            return False
    return True



# --------------------------------------------------------------------------------------------
# Lock files and filesystem mirrors of providers


def mirror_platforms(mirror: Path) -> set[str]:
    """Platforms (os_arch) present in a filesystem mirror, packed or unpacked layout."""
    platforms: set[str] = set()
    for path in mirror.glob("*/*/*/*/*"):  # host/namespace/type/version/os_arch (unpacked)
        if path.is_dir() and re.fullmatch(r"[a-z0-9]+_[a-z0-9]+", path.name):
            platforms.add(path.name)
    for path in mirror.glob("*/*/*/terraform-provider-*_*.zip"):  # packed
        match = re.search(r"_([a-z0-9]+_[a-z0-9]+)\.zip$", path.name)
        if match:
            platforms.add(match.group(1))
    return platforms


_LOCKED_PROVIDER = re.compile(
    r'^provider\s+"(?P<address>[^"]+)"\s*\{\s*\n\s*version\s*=\s*"(?P<version>[^"]+)"',
    re.MULTILINE,
)


def locked_providers(lock_file: Path) -> list[tuple[str, str]]:
    """(address, version) of every provider a .terraform.lock.hcl pins, in file order."""
    text = lock_file.read_text(encoding="utf-8")
    return [(m["address"], m["version"]) for m in _LOCKED_PROVIDER.finditer(text)]


def providers_missing_from_mirror(lock_file: Path, mirror: Path) -> list[str]:
    """The locked providers of which a filesystem mirror holds no version at all
    ("hashicorp/google 4.63.0").

    With a mirror the tool's CLI config disables the registry, so such a provider cannot be
    installed here: init would fail with terraform's generic "Failed to query" error. A mirror
    holding other versions is left to init, which names a lock that disagrees precisely.
    """
    missing = []
    for address, version in locked_providers(lock_file):
        base = mirror / address
        unpacked = any(p.is_dir() for p in base.glob("*/*_*"))
        packed = any(base.glob(f"terraform-provider-{base.name}_*_*.zip"))
        if not (unpacked or packed):
            missing.append(f"{address.split('/', 1)[-1]} {version}")
    return missing


# --------------------------------------------------------------------------------------------
# Remote state: no two stacks may share one (a copied stack keeps its original's backend)


@dataclass(frozen=True)
class StateBackend:
    """Where a stack keeps its state: s3 (bucket, key, DynamoDB lock table) or gcs (bucket,
    prefix); read leniently, for comparing stacks (parse_s3_backend insists for bootstrap)."""

    kind: str
    bucket: str
    key: str  # the s3 key, or the gcs prefix
    lock_table: str | None
    file: Path
    line: int
    # the line of each setting (bucket, key or prefix, dynamodb_table): refusals point there
    lines: tuple[tuple[str, int], ...] = ()

    def line_of(self, setting: str) -> int:
        return dict(self.lines).get(setting, self.line)

    def where(self, setting: str) -> str:
        return f"{display_path(self.file)}:{self.line_of(setting)}"

    @property
    def key_setting(self) -> str:
        return "key" if self.kind == "s3" else "prefix"


_BACKEND = re.compile(r'^\s*backend\s+"(s3|gcs)"\s*\{')


def parse_state_backend(stack: Path) -> StateBackend | None:
    """The s3 or gcs backend block of a stack, None when it has neither (local state)."""
    for path in tf_files(stack):
        text = read_config_text(path, display_path(path))
        for line, inner in _block_lines(text, _BACKEND):
            kind = _BACKEND.match(text.splitlines()[line - 1])
            assert kind is not None
            values: dict[str, str] = {}
            lines: dict[str, int] = {}
            for number, body in enumerate(inner, start=line + 1):
                match = _ASSIGNMENT.match(body.split("#", 1)[0])
                if match:
                    values[match.group(1)] = match.group(2) or match.group(3) or ""
                    lines[match.group(1)] = number
            key = values.get("key" if kind.group(1) == "s3" else "prefix", "")
            return StateBackend(kind=kind.group(1), bucket=values.get("bucket", ""), key=key,
                                lock_table=values.get("dynamodb_table"), file=path, line=line,
                                lines=tuple(sorted(lines.items())))
    return None


def state_backends(fed: Federation) -> dict[Path, StateBackend]:
    """Every stack under the terraform root with a remote backend (a copied stack counts before
    any member names it), by its directory."""
    root = fed.terraform_root
    found: dict[Path, StateBackend] = {}
    if not root.is_dir():
        return found
    for path in sorted(root.rglob("*.tf")):
        if {".terraform", WORK_DIR} & set(path.relative_to(root).parts):
            continue
        directory = path.parent.resolve()
        if directory not in found and (backend := parse_state_backend(directory)) is not None:
            found[directory] = backend
    return found


def shared_state_problems(fed: Federation) -> list[Problem]:
    """Two stacks sharing a state (bucket and key, or prefix) or a lock table, and two members
    naming one stack: either way one member's plan would change the other's resources."""
    problems: list[Problem] = []
    users: dict[Path, str] = {}
    for member in fed.members.values():
        if member.terraform is None:
            continue
        directory = member.terraform.directory.resolve()
        if directory in users:
            problems.append(Problem(
                str(member.location), None, f"members.{member.name}.terraform.stack",
                f"{member.terraform.path} is also the stack of member {users[directory]}: two "
                "members would share one terraform state. Copy the stack to its own directory "
                "and give it its own backend (bucket, key, dynamodb_table)"))
        else:
            users[directory] = member.name
    first_state: dict[tuple[str, str, str], StateBackend] = {}
    first_lock: dict[str, StateBackend] = {}
    order = list(users)
    # the members' stacks first, in federation.yaml's order: a copy is named as the copy
    ranked = sorted(state_backends(fed).items(), key=lambda item: (
        order.index(item[0]) if item[0] in users else len(order), str(item[0])))
    for directory, backend in ranked:
        owner = users.get(directory)
        named = f" (member {owner})" if owner else ""
        state = (backend.kind, backend.bucket, backend.key)
        if state in first_state:
            other = first_state[state]
            setting = backend.key_setting
            problems.append(Problem(
                display_path(backend.file), backend.line_of(setting),
                f"backend \"{backend.kind}\" {setting}",
                f"{display_path(directory)}{named} keeps its state in bucket "
                f"{backend.bucket!r} at {setting} "
                f"{backend.key!r}, as {display_path(other.file.parent)} does "
                f"({other.where(setting)}{_member_of(users, other)}): the two stacks would "
                "overwrite each other's state. Give this copy its own key (and bucket and "
                "dynamodb_table; README: Adding a member)"))
        else:
            first_state[state] = backend
        if backend.lock_table:
            if backend.lock_table in first_lock:
                other = first_lock[backend.lock_table]
                problems.append(Problem(
                    display_path(backend.file), backend.line_of("dynamodb_table"),
                    "dynamodb_table",
                    f"{display_path(directory)}{named} locks its state in DynamoDB table "
                    f"{backend.lock_table!r}, as {display_path(other.file.parent)} does "
                    f"({other.where('dynamodb_table')}{_member_of(users, other)}): its bootstrap "
                    "would take over "
                    "the other member's lock table. Name a table of its own"))
            else:
                first_lock[backend.lock_table] = backend
    problems.extend(module_argument_problems(ranked, users))
    return problems


_MODULE = re.compile(r'^\s*module\s+"[^"]*"\s*\{')
# arguments a stack passes its modules that name its own backend's bucket or lock table (the
# GitHub role's permissions on the state): a half-done copy passes the original's
_STATE_ARGUMENT = re.compile(r"state_bucket|lock_table|dynamodb_table")


def module_argument_problems(ranked: list[tuple[Path, StateBackend]],
                             users: dict[Path, str]) -> list[Problem]:
    """A stack's module arguments that name a state bucket or lock table must be its own
    backend's, never another stack's: a copy whose versions.tf was fixed but whose main.tf
    still passes the original's lock table gives its roles the other member's state."""
    problems: list[Problem] = []
    theirs: dict[str, StateBackend] = {}
    for _directory, backend in ranked:
        for name in (backend.bucket, backend.lock_table):
            if name:
                theirs.setdefault(name, backend)
    for directory, backend in ranked:
        own = {backend.bucket, backend.lock_table} - {None, ""}
        for path in tf_files(directory):
            text = read_config_text(path, display_path(path))
            for opening, inner in _block_lines(text, _MODULE):
                for number, body in enumerate(inner, start=opening + 1):
                    match = _ASSIGNMENT.match(body.split("#", 1)[0])
                    if not match or match.group(2) is None or match.group(2) in own:
                        continue
                    argument, value = match.group(1), match.group(2)
                    other = theirs.get(value)
                    if other is None and not _STATE_ARGUMENT.search(argument):
                        continue
                    lock = "lock" in argument or "dynamodb" in argument or (
                        other is not None and value == other.lock_table)
                    setting = "dynamodb_table" if lock else "bucket"
                    wanted = backend.lock_table if lock else backend.bucket
                    whose = "" if other is None else (
                        f", which is {display_path(other.file.parent)}'s "
                        f"({other.where(setting)}{_member_of(users, other)})")
                    problems.append(Problem(
                        display_path(path), number, argument,
                        f"{display_path(directory)} passes {value!r}{whose}, but its own "
                        f"backend ({backend.where(setting)}) names {wanted!r}: its roles would "
                        "be given another state's bucket or lock table. Pass its own"))
    return problems


def _member_of(users: dict[Path, str], backend: StateBackend) -> str:
    owner = users.get(backend.file.parent.resolve())
    return f", member {owner}" if owner else ""
