"""Property: whatever is done to the repository's config (types, values, bytes, aliases,
paths), `validate` exits 0 or 2 with a message, never a traceback, never a hang (issue 14).

The command function runs in-process for speed (a bounded number of examples); a few
subprocess runs check the same through the real entry point.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation_deploy.commands.validate import validate
from federation_deploy.errors import EXIT_USAGE, FederationDeployError
from tests.conftest import copy_federation

FILES = ("federation.yaml", "values/gke.yaml", "values/curvenote.yaml", "values/common.yaml",
         "secrets/values/gke.yaml")

# Values of every kind a person (or an attacker) might put after `key:`.
SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: ".nan" if f != f else (".inf" if f == float("inf") else
                                         "-.inf" if f == float("-inf") else repr(f))),
    st.sampled_from(["true", "no", "null", "~", "''", '""', "[]", "{}", "- x", "[1, [2]]",
                     "{a: {b: c}}", "&a x", "*a", "*nothere", "!!binary aGk=", "!!set {a}",
                     "!!python/object/apply:os.system [ls]", "2001-01-01", "0x1F", "1e400",
                     "'unterminated", "{", "]", "\t", "|", ">", "%TAG", "=", "<<: *a",
                     "../../etc/passwd", "/etc/passwd", "aws/../../..", "\\x00",
                     "https://user:pw@x.org", "https://x.org/a b", "https://gkë.org",
                     "http://x.org", "https://x.org:99999", "https://x.org/?q#f",
                     # YAML 1.1 as helm reads it (issue 29): sexagesimal, y/n, 1e3, 0o17
                     "1:20", "-1:30", "12:30:00", "y", "N", "off", "1e+3", "1e3", "0o17",
                     "017", "08", "1_000", "+12", ".5_0", "null: x", "~: y"]),
    st.text(min_size=0, max_size=30).map(json.dumps),
)


@dataclass(frozen=True)
class Mutation:
    file: str
    kind: str
    position: float  # 0..1: which line / byte
    payload: str
    raw: bytes = b""

    def apply(self, original: bytes) -> bytes:
        if self.kind == "bytes":
            at = int(self.position * len(original))
            return original[:at] + self.raw + original[at:]
        # lines of bytes: an earlier mutation may have left bytes that are not UTF-8
        lines = original.splitlines(keepends=True)
        if not lines:
            return original
        index = min(int(self.position * len(lines)), len(lines) - 1)
        line = lines[index]
        payload = self.payload.encode("utf-8")
        if self.kind == "value" and b":" in line:
            lines[index] = line.split(b":", 1)[0] + b": " + payload + b"\n"
        elif self.kind == "delete":
            del lines[index]
        elif self.kind == "duplicate":
            lines.insert(index, line)
        elif self.kind == "indent":
            lines[index] = b"  " * int(self.position * 7) + line.lstrip()
        else:  # insert a line, keeping the indentation of the one it precedes
            indent = line[: len(line) - len(line.lstrip())]
            lines.insert(index, indent + payload + b"\n")
        return b"".join(lines)


def alias_bomb(depth: int) -> str:
    parts = ["b0: &b0 [x, x, x, x, x, x, x, x, x, x]"]
    parts += [f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 10) + "]" for i in range(1, depth)]
    return "{" + ", ".join(parts) + "}"


# Issue 29: links, resolved then confined. Where a values file may point: out of the
# repository (a file, a directory, /etc), into secrets/, at another plain file, at nothing,
# at itself. "{outside}" is a directory beside the config, holding OUTSIDE-CONTENT.
LINK_TARGETS = ("/etc/passwd", "/etc", "{outside}/stolen.yaml", "{outside}",
                "../secrets/values/gke.yaml", "{config}/secrets/values/gke.yaml",
                "../values/gke.yaml", "gke.yaml", "missing.yaml", "{self}")
LINKED_FILES = ("values/common.yaml", "values/curvenote.yaml", "secrets/values/gke.yaml")
# Where a plain values file may not lead: validate must refuse (exit 2), whatever else.
REFUSED_FROM_PLAIN = ("/etc/passwd", "{outside}/stolen.yaml", "../secrets/values/gke.yaml",
                      "{config}/secrets/values/gke.yaml", "{self}")
SECRET_VALUE = "REPLACE_ME_SERVICE_ACCOUNT_JSON"

MUTATIONS = st.one_of(
    st.builds(Mutation, st.sampled_from(LINKED_FILES), st.just("symlink"), st.just(0.0),
              st.sampled_from(LINK_TARGETS)),
    st.builds(Mutation, st.sampled_from(FILES), st.just("value"), st.floats(0, 1), SCALARS),
    st.builds(Mutation, st.sampled_from(FILES),
              st.sampled_from(["delete", "duplicate", "indent"]), st.floats(0, 1), st.just("")),
    st.builds(Mutation, st.sampled_from(FILES), st.just("insert"), st.floats(0, 1),
              st.one_of(st.integers(2, 12).map(lambda d: "bomb: " + alias_bomb(d)),
                        st.sampled_from(["x: &a [*a]", "prime: true", "weight: .inf",
                                         "members: {}", "stack: ../../..", "? [a]: b",
                                         "root: /", "kubeconfig: ../../../etc/shadow"]))),
    st.builds(Mutation, st.sampled_from(FILES), st.just("bytes"), st.floats(0, 1),
              st.just(""), st.binary(min_size=1, max_size=8)),
)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = copy_federation(tmp_path_factory.mktemp("props"))
    example = config / "secrets" / "values" / "gke.example.yaml"
    (config / "secrets" / "values" / "gke.yaml").write_bytes(example.read_bytes())
    return config


def link_target(config: Path, m: Mutation) -> str:
    outside = config.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "stolen.yaml").write_text("gke:\n  stolen: OUTSIDE-CONTENT\n")
    return m.payload.format(outside=outside, config=config, self=config / m.file)


def mutated(config: Path, mutations: list[Mutation]) -> Iterator[None]:
    originals = {m.file: (config / m.file).read_bytes() for m in mutations}
    try:
        for m in mutations:
            path = config / m.file
            if m.kind == "symlink":
                path.unlink()
                path.symlink_to(link_target(config, m))
            elif path.is_symlink():
                continue  # bytes through a link would change its target, outside the copy
            else:
                path.write_bytes(m.apply(path.read_bytes()))
        yield
    finally:
        for file, data in originals.items():
            (config / file).unlink(missing_ok=True)
            (config / file).write_bytes(data)


def validate_exit_code(config: Path) -> int:
    """validate's exit code as the CLI would give it; any other exception propagates."""
    try:
        validate(config)
    except FederationDeployError as exc:
        assert str(exc).strip(), "an error without a message"
        return exc.exit_code
    return 0


def test_the_unmodified_config_is_valid(config: Path) -> None:
    assert validate_exit_code(config) == 0


# deadline: a hang guard (the alias bombs expand to 10**12 values if nothing stops them), not
# a speed figure; benchmarks/ measures speed.
@settings(max_examples=80, deadline=20_000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(MUTATIONS, min_size=1, max_size=3))
@pytest.mark.slow  # the CLI in a subprocess
def test_validate_exits_0_or_2_and_never_tracebacks(config: Path,
                                                    mutations: list[Mutation]) -> None:
    for _ in mutated(config, mutations):
        assert validate_exit_code(config) in (0, EXIT_USAGE)


def refused_link(config: Path, mutations: list[Mutation]) -> bool:
    """Whether a plain values file is left linked out of the repository or into secrets/."""
    final = {m.file: m for m in mutations}
    return any(m.kind == "symlink" and not m.file.startswith("secrets/")
               and m.payload in REFUSED_FROM_PLAIN for m in final.values())


# links alone, checked harder: a link out or into secrets/ from a plain file is refused, and
# no message carries what is behind it
@settings(max_examples=25, deadline=20_000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.builds(Mutation, st.sampled_from(LINKED_FILES), st.just("symlink"),
                          st.just(0.0), st.sampled_from(LINK_TARGETS)), min_size=1, max_size=3))
def test_links_are_resolved_then_confined(config: Path, mutations: list[Mutation]) -> None:
    for _ in mutated(config, mutations):
        try:
            validate(config)
            code, message = 0, ""
        except FederationDeployError as exc:
            code, message = exc.exit_code, str(exc)
        assert code in (0, EXIT_USAGE)
        if refused_link(config, mutations):
            assert code == EXIT_USAGE, [m.payload for m in mutations]
        assert "OUTSIDE-CONTENT" not in message and SECRET_VALUE not in message
        assert "root:" not in message  # /etc/passwd's first line


@pytest.mark.parametrize("mutation", [
    Mutation("federation.yaml", "bytes", 0.5, "", b"\xc3\x28"),
    Mutation("values/gke.yaml", "insert", 0.5, "bomb: " + alias_bomb(12)),
    Mutation("federation.yaml", "insert", 0.0, "redirector: [1"),
    Mutation("secrets/values/gke.yaml", "value", 0.9, ".nan"),
])
@pytest.mark.slow  # the CLI in a subprocess
def test_validate_in_a_subprocess(config: Path, mutation: Mutation) -> None:
    for _ in mutated(config, [mutation]):
        proc = subprocess.run(
            [sys.executable, "-c", "from federation_deploy.cli import main; main()",
             "--config-dir", str(config), "validate"],
            capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == EXIT_USAGE, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: invalid config: ")
