"""The one HTTP GET with a total deadline, against real servers on 127.0.0.1 that trickle
(issue 29, item 3: a /health answering 200 with a body a byte a second hung verify and a
ramp, because requests' timeout bounds each read, not the request)."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation_deploy.config import load_federation
from federation_deploy.errors import VerificationError
from federation_deploy.health import http
from federation_deploy.health.probe import (
    CheckResult,
    Retry,
    check_member_health,
    verify_member,
)
from tests.helpers.serve import http_head, scripted, trickling

DEADLINE = 0.5
TRICKLE = 0.1
# what the deadline may be overrun by on a loaded 2-core machine (thread wake-ups), far
# below what a trickle of 30+ bytes at 0.1 s each would take (3 s and more)
SLACK = 1.0
HEALTHY = json.dumps({"ok": True, "checks": [{"service": "Hub", "ok": True}]}).encode()


def timed(call: object) -> tuple[object, float]:
    start = time.monotonic()
    try:
        result: object = call()  # type: ignore[operator]
    except Exception as exc:  # noqa: BLE001 - the test looks at what was raised
        result = exc
    return result, time.monotonic() - start


@pytest.mark.parametrize("kind", [
    {"trickle_headers": False},
    {"trickle_headers": True},
    {"content_length": False},
], ids=["body", "headers", "no-content-length"])
def test_a_trickling_answer_ends_at_the_deadline(kind: dict[str, bool]) -> None:
    with trickling(HEALTHY, interval=TRICKLE, **kind) as url:
        result, seconds = timed(lambda: http.get(url + "/health", DEADLINE))
    assert isinstance(result, http.DeadlineExceeded), result
    assert isinstance(result, requests.Timeout)  # every caller's except clause catches it
    assert "no complete answer within 0.5s" in str(result)
    assert DEADLINE <= seconds < DEADLINE + SLACK


def test_through_a_proxy_that_trickles_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # HTTP_PROXY (a CI runner's): the connection cut at the deadline is the proxy's; the
    # member's name is never resolved (the proxy, on 127.0.0.1, is asked for it)
    with trickling(HEALTHY, interval=TRICKLE, trickle_headers=True) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.setenv("NO_PROXY", "")
        result, seconds = timed(lambda: http.get("http://member.invalid/health", DEADLINE))
    assert isinstance(result, http.DeadlineExceeded), result
    assert seconds < DEADLINE + SLACK


def test_a_prompt_answer_is_read_whole() -> None:
    with trickling(HEALTHY, interval=0.0) as url:
        answer = http.get(url + "/health", DEADLINE)
    assert answer.status == 200 and json.loads(answer.text)["ok"] is True


def test_on_chunk_stops_reading_an_endless_stream() -> None:
    # an event stream that says what the reader waits for, then keeps going for ever
    script = [(0.0, http_head(None)), (0.0, b"data: ready\n")] + [(TRICKLE, b".")] * 100
    seen = bytearray()

    def until_ready(chunk: bytes) -> bool:
        seen.extend(chunk)
        return b"ready\n" in seen

    with scripted(script) as url:
        answer, seconds = timed(lambda: http.get(url, 5.0, on_chunk=until_ready))
    assert isinstance(answer, http.HttpAnswer) and b"data: ready" in answer.content
    assert seconds < 1.0


def test_verify_fails_a_trickling_member_within_its_timeout(config_dir: Path) -> None:
    with trickling(HEALTHY, interval=TRICKLE) as url:
        member = dataclasses.replace(load_federation(config_dir).member("gke"),
                                     health_url=url + "/health", versions_url=url + "/versions")
        result, seconds = timed(lambda: verify_member(
            member, Retry(attempts=2, delay=0.0, timeout=DEADLINE), sleep=lambda _s: None))
    assert isinstance(result, VerificationError), result
    assert "no complete answer within 0.5s" in str(result)
    assert seconds < 2 * DEADLINE + SLACK


def test_the_ramp_health_gate_fails_a_trickling_member() -> None:
    with trickling(HEALTHY, interval=TRICKLE) as url:
        result, seconds = timed(lambda: check_member_health(url + "/health", DEADLINE))
    assert isinstance(result, CheckResult), result
    assert not result.ok and "no complete answer within 0.5s" in result.reason
    assert seconds < DEADLINE + SLACK


# --------------------------------------------------------------------------------------------
# Property: however an answer trickles (headers, body, lengths that lie), the health gate
# answers within its deadline, never raises, and never passes an answer that could not
# arrive whole in time.

PIECES = st.lists(st.tuples(st.sampled_from([0.0, 0.0, 0.05, 0.15, 0.3]),
                            st.integers(min_value=1, max_value=8)),
                  min_size=1, max_size=6)


@st.composite
def slow_answers(draw: st.DrawFn) -> tuple[list[tuple[float, bytes]], float]:
    """A scripted answer (head and body cut into pieces, each after a pause) and the time
    its last byte is sent."""
    body = draw(st.sampled_from([HEALTHY, b'{"ok": false}', b"not json", b""]))
    length = draw(st.sampled_from(["exact", "absent", "longer"]))
    head = http_head({"exact": len(body), "absent": None, "longer": len(body) + 5}[length])
    data = head + body
    script: list[tuple[float, bytes]] = []
    position = 0
    for pause, size in draw(PIECES):
        if position >= len(data):
            break
        script.append((pause, data[position:position + size]))
        position += size
    if position < len(data):
        script.append((draw(st.sampled_from([0.0, 0.5])), data[position:]))
    if length == "longer":
        script.append((draw(st.sampled_from([0.0, 5.0])), b""))  # holds the connection open
    return script, sum(pause for pause, _data in script)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(slow_answers())
def test_slow_bodies_never_hang_and_never_pass_late(answer: tuple[list[tuple[float, bytes]],
                                                                   float]) -> None:
    script, last_byte_at = answer
    deadline = 0.4
    with scripted(script) as url:
        result, seconds = timed(lambda: check_member_health(url + "/health", deadline))
    assert isinstance(result, CheckResult), result
    assert seconds < deadline + SLACK
    if last_byte_at > deadline + 0.1:
        assert not result.ok, (script, result)


def test_a_declared_huge_body_is_refused_at_once() -> None:
    # issue 29 re-trial: a 1 GB Content-Length was gathered whole (~2.9 GB RSS in verify)
    gigabyte = 1024 ** 3
    with scripted([(0.0, http_head(gigabyte)), (0.0, b"x" * 4096)]) as url:
        authed = url.replace("http://", "http://user:PASS@") + "/health"
        result, seconds = timed(lambda: http.get(authed, 30))
    assert isinstance(result, http.BodyTooLarge), result
    assert isinstance(result, requests.RequestException)  # every caller's except clause
    message = str(result)
    assert "PASS" not in message and "***@127.0.0.1" in message
    assert f"declares a body of {gigabyte} bytes" in message
    assert str(http.MAX_BODY) in message
    assert seconds < 5


def test_a_body_sent_beyond_the_limit_stops_being_read() -> None:
    # no Content-Length: reading stops once max_body is passed, not at the end of the stream
    chunk = b"x" * 65536
    with scripted([(0.0, http_head(None))] + [(0.0, chunk)] * 64) as url:
        result, _ = timed(lambda: http.get(url + "/health", 30, max_body=200_000))
        small, _ = timed(lambda: http.get(url + "/health", 30, max_body=10 * 1024 * 1024))
    assert isinstance(result, http.BodyTooLarge), result
    assert "sent more than the 200000 bytes accepted" in str(result)
    assert isinstance(small, http.HttpAnswer) and len(small.content) == 64 * 65536


def test_verify_fails_a_member_declaring_a_huge_body(config_dir: Path) -> None:
    with scripted([(0.0, http_head(1024 ** 3))]) as url:
        member = dataclasses.replace(load_federation(config_dir).member("gke"),
                                     health_url=url + "/health", versions_url=url + "/versions")
        result, seconds = timed(lambda: verify_member(
            member, Retry(attempts=1, delay=0.0, timeout=5), sleep=lambda _s: None))
    assert isinstance(result, VerificationError), result
    assert "bytes accepted" in str(result)
    assert seconds < 5
