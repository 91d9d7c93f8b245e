"""A ramping member's final weight (issue 17): published with the ramp, waited for in
/active_hosts, and published again by a resume when the target lacks it (an upgrade mid-ramp)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from federation_deploy.traffic.ramp.plan import weights_disagreement
from federation_deploy.traffic.ramp.watch import RampIO, RampSettings, RedirectorWatch
from tests.helpers.standin_federation import StandinFederation
from tests.traffic.test_one_writer import Process, RedirectorProcess, ramp_args, wait_for
from tests.traffic.test_one_writer import redirector_process as one_writer_redirector

# the same fixture as test_one_writer's: a `redirector serve` process on the published config
redirector_process = one_writer_redirector

EXPECTED = {"alpha": 60.0, "beta": 40.0, "gamma": 1.0101}
SERVED: dict[str, dict[str, Any]] = {
    "alpha": {"weight": 60}, "beta": {"weight": 40},
    "gamma": {"weight": 1.0101, "ramp": True, "final_weight": 80}}


def test_a_ramping_member_must_show_its_final_weight() -> None:
    assert weights_disagreement(SERVED, EXPECTED, "gamma", True, final_weight=80.0) is None
    before = {**SERVED, "gamma": {"weight": 1.0101, "ramp": True}}
    assert weights_disagreement(before, EXPECTED, "gamma", True, final_weight=80.0) == (
        "gamma has no final_weight there (expected 80; the redirector has not loaded it)")
    other = {**SERVED, "gamma": {**SERVED["gamma"], "final_weight": 100}}
    assert weights_disagreement(other, EXPECTED, "gamma", True, final_weight=80.0) == (
        "gamma has final_weight 100 there (expected 80)")
    wrong_type = {**SERVED, "gamma": {**SERVED["gamma"], "final_weight": "80"}}
    assert "gamma has final_weight '80' there" in str(
        weights_disagreement(wrong_type, EXPECTED, "gamma", True, final_weight=80.0))
    # the weight is still compared first: the first difference is the one said
    stale = {**before, "gamma": {"weight": 0.5, "ramp": True}}
    assert "gamma has weight 0.5 there" in str(
        weights_disagreement(stale, EXPECTED, "gamma", True, final_weight=80.0))
    # no ramp expected (the last step, an abort): a final weight is no business of the check
    done = {**SERVED, "gamma": {"weight": 80}}
    assert weights_disagreement(done, {**EXPECTED, "gamma": 80.0}, "gamma", False,
                                final_weight=80.0) is None


RAMPING = ("    weight: 0                  # zero until ramped\n",
           "    weight: 1.0101\n    ramp:\n      steps: [1, 100]\n      step: 0\n"
           "      to_weight: 80\n      hold: 1h\n")


def watch(hosts: dict[str, Any]) -> RedirectorWatch:
    io = RampIO(publish=lambda fed: None, active_hosts=lambda url, timeout: hosts,
                live_generation=lambda url, timeout: None)
    return RedirectorWatch("gamma", RampSettings(redirector_url="http://127.0.0.1:9"), io,
                           lambda: None)


def test_the_watch_expects_the_final_weight_the_config_publishes(
    federation: StandinFederation,
) -> None:
    text = federation.path.read_text()
    assert RAMPING[0] in text
    federation.path.write_text(text.replace(*RAMPING))
    fed = federation.load()
    answer, _ = watch(SERVED).agreement(fed, EXPECTED, ramp_flag=True)
    assert answer is None
    before = {**SERVED, "gamma": {"weight": 1.0101, "ramp": True}}
    answer, _ = watch(before).agreement(fed, EXPECTED, ramp_flag=True)
    assert answer is not None and "gamma has no final_weight there (expected 80" in answer
    # one-off changes (a restore that resumes the ramp) wait for it as well
    answer, _ = watch(before).agreement(fed, EXPECTED, ramp_flag=True, one_off=True)
    assert answer is not None and "no final_weight" in answer


def test_a_resume_publishes_a_final_weight_the_target_lacks(
    federation: StandinFederation, published: Path, redirector_process: RedirectorProcess,
    tmp_path: Path,
) -> None:
    """Step 1 publishes gamma's final weight (--to-weight, not its target_weight), and the
    redirector serves it. A config.json written again without it at the same generation (an
    older federation-deploy, i.e. a redirector upgraded mid-ramp) is no other writer's: the
    next --advance publishes the config's weights again and waits until the redirector has
    loaded the final weight."""
    args = ramp_args(published, redirector_process, "gamma", "--advance", "--steps", "5",
                     "--to-weight", "80", "--hold", "1h")
    first = Process(federation.config_dir, args, tmp_path / "first.log")
    assert first.wait() == 0, first.stderr()
    host = json.loads(published.read_text())["hosts"]["gamma"]
    assert host["ramp"] is True and host["final_weight"] == 80
    served, generation = redirector_process.state()
    assert served["gamma"]["final_weight"] == 80 and generation == federation.load().generation

    data = json.loads(published.read_text())
    del data["hosts"]["gamma"]["final_weight"]
    older = published.with_name(".older.json")
    older.write_text(json.dumps(data, indent=2))
    os.replace(older, published)
    wait_for(lambda: "final_weight" not in redirector_process.state()[0]["gamma"],
             "the redirector to load the config without a final weight")

    again = Process(federation.config_dir, ramp_args(published, redirector_process, "gamma",
                                                     "--advance"), tmp_path / "again.log")
    code = again.wait()
    log = again.stderr()
    assert code == 0, log
    assert "(ramp to 80) here" in log and "(ramp) published), not the config's" in log
    assert f"publishing generation {generation} from config" in log
    assert "rolled back" not in log and "rolling back" not in log
    assert json.loads(published.read_text())["hosts"]["gamma"]["final_weight"] == 80
    assert redirector_process.state()[0]["gamma"]["final_weight"] == 80
