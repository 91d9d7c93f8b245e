"""The live side's HTTP (redirector, Prometheus) against real servers on 127.0.0.1 that trickle:
each call ends at its timeout, counted for the whole answer (issue 29, item 3)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from federation_deploy.traffic.live import (
    LiveError,
    fetch_active_hosts,
    fetch_metrics,
    prometheus_query,
    read_live_state,
)
from tests.helpers.serve import trickling

TIMEOUT = 0.5
SLACK = 1.0


@pytest.mark.parametrize("call", [
    lambda url: fetch_active_hosts(url, TIMEOUT),
    lambda url: fetch_metrics(url, TIMEOUT),
    lambda url: prometheus_query(url, {"query": "up"}, TIMEOUT),
], ids=["active_hosts", "metrics", "prometheus"])
def test_a_trickling_endpoint_is_a_live_error_at_the_timeout(
        call: Callable[[str], object]) -> None:
    body = b'{"status": "success", "data": {}, "active_hosts": {}}'
    with trickling(body, interval=0.1) as url:
        start = time.monotonic()
        with pytest.raises(LiveError, match=r"no complete answer within 0\.5s"):
            call(url)
        assert time.monotonic() - start < TIMEOUT + SLACK


def test_the_live_state_reports_both_endpoints_late() -> None:
    with trickling(b'{"active_hosts": {}}', interval=0.1) as url:
        start = time.monotonic()
        state = read_live_state(url, TIMEOUT)
        assert time.monotonic() - start < 2 * TIMEOUT + SLACK
    assert not state.hosts_known and len(state.errors) == 2
