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
                     "http://x.org", "https://x.org:99999", "https://x.org/?q#f"]),
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


MUTATIONS = st.one_of(
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


def mutated(config: Path, mutations: list[Mutation]) -> Iterator[None]:
    originals = {m.file: (config / m.file).read_bytes() for m in mutations}
    try:
        for m in mutations:
            path = config / m.file
            path.write_bytes(m.apply(path.read_bytes()))
        yield
    finally:
        for file, data in originals.items():
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
