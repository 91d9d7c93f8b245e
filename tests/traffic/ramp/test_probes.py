"""A probe's launch against real event streams on 127.0.0.1: a stream that trickles bytes but
never an event ends at the probe's timeout (issue 29, item 3)."""

from __future__ import annotations

import time

from federation_deploy.traffic.ramp.probes import launch
from tests.helpers.serve import http_head, scripted


def test_a_stream_that_trickles_without_an_event_fails_at_the_timeout() -> None:
    script = [(0.0, http_head(None)), (0.0, b"data: {\"phase\": \"building\"}\n")]
    script += [(0.1, b":")] * 100  # keep-alive comments, a byte at a time, for 10 s
    with scripted(script) as url:
        start = time.monotonic()
        result = launch(url + "/build/gh/org/repo/HEAD", timeout=0.5)
        seconds = time.monotonic() - start
    assert not result.ok and "not ready after 0.5s" in result.detail
    assert seconds < 1.5


def test_ready_is_read_as_it_arrives_on_an_open_stream() -> None:
    script = [(0.0, http_head(None)), (0.0, b'data: {"phase": "building"}\n\n'),
              (0.1, b'data: {"phase": "ready", "url": "x"}\n\n')] + [(0.1, b":")] * 100
    with scripted(script) as url:
        start = time.monotonic()
        result = launch(url + "/build/gh/org/repo/HEAD", timeout=5.0)
        seconds = time.monotonic() - start
    assert result.ok and result.detail == "ready"
    assert seconds < 1.5


def test_a_failed_launch_says_why() -> None:
    script = [(0.0, http_head(None)),
              (0.0, b'data: {"phase": "failed", "message": "no space"}\n\n')]
    with scripted(script) as url:
        result = launch(url + "/build/gh/org/repo/HEAD", timeout=5.0)
    assert not result.ok and result.detail == "failed: no space"
