"""`traffic drain|restore|set` (issue 15) with real processes: a `redirector serve` process,
stand-in members and `federation-deploy` processes on 127.0.0.1, publishing with `file:`.

Every test asserts both places at the end: federation.yaml and the published config.json.
Waits are on conditions (a file's content, a log line, an open file), never fixed sleeps.
"""

from __future__ import annotations

import difflib
import fcntl
import http.client
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from federation_deploy.config import load_federation
from federation_deploy.traffic.weights import lock_path
from tests.helpers.standin_federation import StandinFederation, send_launches, zipf_launch_paths
from tests.traffic import test_one_writer
from tests.traffic.test_one_writer import (
    Process,
    RedirectorProcess,
    held_ramp,
    holding,
    published_state,
    ramp_args,
    wait_for,
)

# the real `redirector serve` process of the one-writer tests, as a fixture here too
redirector_process = test_one_writer.redirector_process

LAUNCHES = zipf_launch_paths(500, seed=15)


def traffic_args(published: Path, redirector: RedirectorProcess | None, *args: str) -> list[str]:
    extra = ["--yes", "--publish", f"file:{published}", "--settle-timeout", "30s"]
    if redirector is not None:
        extra += ["--redirector-url", redirector.url]
    return ["traffic", *args, *extra]


def run(federation: StandinFederation, args: list[str], log: Path) -> tuple[int, str, str]:
    process = Process(federation.config_dir, args, log)
    try:
        code = process.wait()
        assert process.proc.stdout is not None
        return code, process.proc.stdout.read(), process.stderr()
    finally:
        process.kill()


def changed_lines(before: str, after: str) -> list[str]:
    """The diff a reviewer sees, without its context lines."""
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                  lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def launch_with_cookie(redirector_url: str, path: str, member_url: str) -> str:
    """One launch by a browser whose `host` cookie names member_url: where it is sent."""
    parts = urlsplit(redirector_url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Cookie": f"host={member_url}"})
        response = conn.getresponse()
        response.read()
        assert response.status == 307, response.status
        return response.getheader("Location") or ""
    finally:
        conn.close()


def opened(pid: int, path: Path) -> bool:
    """Whether process pid has path open (it waits for the lock on it)."""
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return False


# --------------------------------------------------------------------------------------------


def test_drain_a_member_in_service_then_restore(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    original = federation.path.read_text()
    beta = federation.standins["beta"].url
    before = send_launches(redirector_process.url, LAUNCHES, federation.url_to_member())
    assert before["beta"] > 100  # in service: about 40% of launches

    code, out, err = run(federation, traffic_args(published, redirector_process, "drain",
                                                  "beta", "--reason", "quota exceeded"),
                         tmp_path / "drain.log")
    assert code == 0, err
    assert "beta drained: no new launches (was weight 40; reason: quota exceeded)" in out
    # the reviewable diff: the weight, the drained block, the generation; nothing else
    drained = federation.path.read_text()
    diff = changed_lines(original, drained)
    since = re.search(r"since: '(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)'", drained)
    assert since is not None
    assert diff == [
        "+generation: 1",
        "-    weight: 40",
        "+    weight: 0",
        "+    drained:",
        "+      reason: quota exceeded",
        f"+      since: '{since.group(1)}'",
        "+      previous_weight: 40",
    ], diff
    generation, hosts = published_state(published)
    assert generation == 1 and hosts["beta"] == (0, False)
    assert hosts["alpha"] == (60, False) and hosts["gamma"] == (0, False)
    live, live_generation = redirector_process.state()  # served: the drain waited for it
    assert set(live) == {"alpha"} and live_generation == 1

    # no launch of 500 goes to beta, and a browser remembering beta is not sent back there
    during = send_launches(redirector_process.url, LAUNCHES, federation.url_to_member())
    assert during["beta"] == 0 and sum(during.values()) == 500
    assert not launch_with_cookie(redirector_process.url, LAUNCHES[0], beta).startswith(beta)

    # `traffic` shows it (table and JSON)
    code, out, err = run(federation, ["traffic", "-o", "json"], tmp_path / "show.log")
    assert code == 0, err
    rows = {row["name"]: row for row in yaml.safe_load(out)}
    assert rows["beta"]["drained"] == {"reason": "quota exceeded", "since": since.group(1),
                                       "previous_weight": 40.0}
    assert rows["alpha"]["drained"] is None

    code, out, err = run(federation, traffic_args(published, redirector_process, "restore",
                                                  "beta"), tmp_path / "restore.log")
    assert code == 0, err
    assert "beta restored: weight 40" in out
    # the file is as it was, one generation on
    assert changed_lines(original, federation.path.read_text()) == ["+generation: 2"]
    generation, hosts = published_state(published)
    assert generation == 2 and hosts["beta"] == (40, False)
    wait_for(lambda: "beta" in redirector_process.state()[0], "beta back in rotation")
    after = send_launches(redirector_process.url, LAUNCHES, federation.url_to_member())
    assert after == before  # rendezvous: the same repositories on the same members again


def test_drain_during_a_ramp_hold_pauses_it_and_restore_resumes_it(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    held = held_ramp(federation, published, redirector_process, tmp_path)
    try:
        step_weight = federation.load().members["gamma"].weight
        assert step_weight > 0
        code, out, err = run(federation, traffic_args(published, redirector_process, "drain",
                                                      "gamma", "--reason", "bad upgrade"),
                             tmp_path / "drain.log")
        assert code == 0, err
        assert held.wait() == 1, held.stderr()
    finally:
        held.kill()
    assert "its ramp is paused (`traffic restore` resumes it)" in out
    stopped = held.stderr()
    assert "the ramp of gamma is paused: gamma was drained" in stopped
    assert "rolling back" not in stopped.replace("without rolling back", "")

    # the ramp block is kept (paused); weight 0 in both places
    fed = federation.load()
    gamma = fed.members["gamma"]
    assert gamma.weight == 0 and gamma.ramp is not None and gamma.ramp.step == 0
    assert gamma.drained is not None and gamma.drained.previous_weight == step_weight
    assert fed.generation == 2
    generation, hosts = published_state(published)
    assert generation == 2 and hosts["gamma"] == (0, False)
    assert hosts["alpha"] == (60, False) and hosts["beta"] == (40, False)

    # a ramp of a drained member is refused (exit 2), nothing written
    text = federation.path.read_text()
    code, _, err = run(federation, ramp_args(published, redirector_process, "gamma"),
                       tmp_path / "refused.log")
    assert code == 2 and "gamma is drained since" in err and "traffic restore gamma" in err
    code, _, err = run(federation, traffic_args(published, None, "set", "gamma", "--weight", "3"),
                       tmp_path / "set.log")
    assert code == 2 and "traffic restore gamma" in err
    code, _, err = run(federation, ramp_args(published, None, "gamma", "--abort"),
                       tmp_path / "abort.log")
    assert code == 2 and "its ramp is paused" in err
    assert federation.path.read_text() == text

    code, out, err = run(federation, traffic_args(published, redirector_process, "restore",
                                                  "gamma"), tmp_path / "restore.log")
    assert code == 0, err
    assert "gamma restored at step 1/2 of its ramp" in out
    assert "ramp gamma --advance" in out and "`federation-deploy ramp gamma`" in out
    fed = federation.load()
    gamma = fed.members["gamma"]
    assert gamma.drained is None and gamma.weight == step_weight
    assert gamma.ramp is not None and gamma.ramp.step == 0 and gamma.ramp.last_healthy is None
    generation, hosts = published_state(published)
    assert generation == fed.generation == 3 and hosts["gamma"] == (step_weight, True)


def test_drain_racing_a_ramp_step_one_wins(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    """The test holds federation.yaml's lock while a ramp and a drain both read it and wait
    to write: exactly one compare-and-swap succeeds; the other exits 1 saying what changed."""
    lock = lock_path(federation.path)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ramp = drain = None
    try:
        ramp = Process(federation.config_dir,
                       ramp_args(published, redirector_process, "gamma", "--steps", "5",
                                 "--hold", "120s"), tmp_path / "ramp.log")
        wait_for(lambda: opened(ramp.proc.pid, lock), "the ramp to wait for the lock")
        drain = Process(federation.config_dir,
                        traffic_args(published, redirector_process, "drain", "gamma",
                                     "--reason", "race"), tmp_path / "drain.log")
        wait_for(lambda: opened(drain.proc.pid, lock), "the drain to wait for the lock")
        os.close(fd)
        fd = -1
        drain_code = drain.wait()
        if drain_code == 0:
            assert ramp.wait() == 1, ramp.stderr()
            assert "gamma was drained" in ramp.stderr()
        else:
            # the ramp step came first: the drain says who changed what, and a second drain
            # then wins over the holding ramp
            assert drain_code == 1, drain.stderr()
            lost = drain.stderr()
            assert "drain of gamma not done: another writer came first" in lost
            assert "gamma weight 0 -> " in lost and "gamma ramp added" in lost
            wait_for(lambda: holding(ramp), "the ramp to hold")
            code, _, err = run(federation, traffic_args(published, redirector_process,
                                                        "drain", "gamma", "--reason", "again"),
                               tmp_path / "again.log")
            assert code == 0, err
            assert ramp.wait() == 1, ramp.stderr()
    finally:
        if fd >= 0:
            os.close(fd)
        for process in (ramp, drain):
            if process is not None:
                process.kill()
    fed = federation.load()
    gamma = fed.members["gamma"]
    assert gamma.weight == 0 and gamma.drained is not None
    generation, hosts = published_state(published)
    assert generation == fed.generation and hosts["gamma"] == (0, False)
    assert hosts["alpha"] == (60, False) and hosts["beta"] == (40, False)


def test_drains_from_two_checkouts_one_wins(
    federation: StandinFederation, published: Path, tmp_path: Path,
) -> None:
    """Two machines drain two members from the same generation: the published generation
    decides; the loser exits 1, names what is published, and puts its file back."""
    other = tmp_path / "other" / "config"
    other.mkdir(parents=True)
    (other / "federation.yaml").write_text(federation.path.read_text())
    code, _, err = run(federation, traffic_args(published, None, "drain", "beta", "--reason",
                                                "outage"), tmp_path / "first.log")
    assert code == 0, err
    before = (other / "federation.yaml").read_text()
    second = Process(other, traffic_args(published, None, "set", "alpha", "--weight", "50"),
                     tmp_path / "second.log")
    assert second.wait() == 1, second.stderr()
    lost = second.stderr()
    assert "refused to publish generation 1" in lost
    assert "beta: 40 here, 0 published" in lost and "put back to generation 0" in lost
    assert (other / "federation.yaml").read_text() == before
    generation, hosts = published_state(published)
    assert generation == 1 and hosts["beta"] == (0, False) and hosts["alpha"] == (60, False)
    assert load_federation(federation.config_dir).members["beta"].drained is not None


def test_set_refuses_a_ramping_member_and_the_prime(
    federation: StandinFederation, published: Path, tmp_path: Path,
) -> None:
    text = federation.path.read_text()
    code, _, err = run(federation, traffic_args(published, None, "drain", "alpha", "--reason",
                                                "x"), tmp_path / "prime.log")
    assert code == 2 and "alpha is the prime" in err
    code, _, err = run(federation, traffic_args(published, None, "restore", "beta"),
                       tmp_path / "restore.log")
    assert code == 2 and "beta is not drained" in err
    federation.path.write_text(text.replace(
        "    target_weight: 100 ",
        "    ramp:\n      steps: [5, 100]\n      step: -1\n      to_weight: 100\n"
        "    target_weight: 100 "))
    code, _, err = run(federation, traffic_args(published, None, "set", "gamma", "--weight",
                                                "3"), tmp_path / "set.log")
    assert code == 2 and "gamma is being ramped" in err and "ramp gamma --abort" in err
    generation, hosts = published_state(published)
    assert generation == 0 and hosts["gamma"] == (0, False)


def test_rerun_after_a_failed_publish_publishes(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    """A drain whose publish failed after federation.yaml was written (here: the published
    file put back to what it was, as if the write never reached it) is finished by running
    the same command again, not refused as "already drained"; the same for restore."""
    served = published.read_text()
    code, _, err = run(federation, traffic_args(published, redirector_process, "drain", "beta",
                                                "--reason", "outage"), tmp_path / "d1.log")
    assert code == 0, err
    published.write_text(served)  # the redirector serves generation 0 again: beta in
    code, out, err = run(federation, traffic_args(published, redirector_process, "drain", "beta",
                                                  "--reason", "outage"), tmp_path / "d2.log")
    assert code == 0, err
    assert "beta drained (federation.yaml already said so): weight 0 now published" in out
    generation, hosts = published_state(published)
    assert generation == 1 and hosts["beta"] == (0, False)
    # with nothing left to publish, the rerun is refused as before
    code, _, err = run(federation, traffic_args(published, redirector_process, "drain", "beta",
                                                "--reason", "outage"), tmp_path / "d3.log")
    assert code == 2 and "beta is already drained" in err
