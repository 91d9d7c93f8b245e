"""benchmarks/ramp_gates.py's command line (the benchmark itself is run by hand, not timed here):
an unknown gate or member is an error listing the valid names, and --help lists them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# the script in a subprocess (tests/conftest.py: such tests are the slow tier's)
pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ramp_gates.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_an_unknown_gate_or_member_is_an_error_naming_the_valid_ones() -> None:
    gates = run("--gates", "new,newest", "--ramps", "1")
    assert gates.returncode == 2
    assert ("--gates: unknown newest; valid: new, new_no_probes, new_no_preflight, fixed, "
            "argo") in gates.stderr
    kinds = run("--kinds", "good,broken", "--ramps", "1")
    assert kinds.returncode == 2
    assert "--kinds: unknown broken; valid: good, bad, slow, flaky" in kinds.stderr
    rates = run("--rates", "fast")
    assert rates.returncode == 2 and "--rates 'fast': comma-separated numbers" in rates.stderr


def test_help_lists_the_gates_members_and_rates() -> None:
    shown = run("--help")
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "of: new, new_no_probes, new_no_preflight, fixed, argo" in text
    assert "of: good, bad, slow, flaky" in text
    assert "federation launch rates, launches per second" in text
    assert "new_no_preflight the evidence gate before the pre-flight" in text  # the docstring
