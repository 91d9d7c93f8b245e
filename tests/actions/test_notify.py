"""The notifier (issue 26): payloads as data, then real HTTP to stand-ins on 127.0.0.1: what
Grafana and the webhook receive, secrets nowhere but the Authorization header, and failures
(HTTP 500, a server that hangs, settings missing) as warnings."""

from __future__ import annotations

import time

import pytest

from federation_deploy.actions.notify import (
    Event,
    Notifier,
    annotation_payload,
    headline,
    webhook_payload,
)
from federation_deploy.config import NotificationSettings
from tests.helpers.announcements import hanging_standin, http_standin

TOKEN = "glsa_T0KEN_never_shown"
HOOK_SECRET = "B0T-s3cr3t-path"
EVENT = Event("weights", "drain", "ovh2 drained: no new launches (reason: disk\n::error::x)",
              "ovh2")


def settings(fmt: str = "matrix", timeout: float = 5.0) -> NotificationSettings:
    return NotificationSettings(webhook_env="FEDERATION_WEBHOOK_URL", format=fmt,
                                tags=("mybinder",), timeout=timeout)


def test_payloads_are_data() -> None:
    assert headline(EVENT) == ("federation-deploy drain ovh2: ovh2 drained: no new launches "
                               "(reason: disk\\n: :error: :x)")
    assert annotation_payload(EVENT, 1700000000000, ("mybinder",)) == {
        "time": 1700000000000, "isRegion": False,
        "tags": ["federation-deploy", "weights", "drain", "ovh2", "mybinder"],
        "text": headline(EVENT)}
    failed = Event("deploy", "deploy", "stage 'releases' failed", "gke", ok=False)
    assert annotation_payload(failed, 1)["tags"] == [
        "federation-deploy", "deploy", "gke", "failed"]  # each tag once
    assert headline(failed) == "federation-deploy deploy gke: FAILED: stage 'releases' failed"
    assert webhook_payload(EVENT, "slack") == {"text": headline(EVENT)}
    injected = Event("weights", "drain", "disk <!channel> <https://evil.example|docs> & co",
                     "ovh2")
    assert webhook_payload(injected, "slack") == {"text": (
        "federation-deploy drain ovh2: disk &lt;!channel&gt; "
        "&lt;https://evil.example|docs&gt; &amp; co")}
    lt = Event("freeze", "freeze", "<b>", None)
    assert webhook_payload(lt, "matrix") == {"text": "federation-deploy freeze: <b>",
                                             "html": "federation-deploy freeze: &lt;b&gt;"}


def test_grafana_and_the_webhook_receive_the_event_and_no_secret() -> None:
    with http_standin() as grafana, http_standin() as hook:
        environ = {"GRAFANA_URL": grafana.url + "/", "GRAFANA_API_KEY": TOKEN,
                   "FEDERATION_WEBHOOK_URL": f"{hook.url}/hooks/{HOOK_SECRET}"}
        notifier = Notifier(settings(), environ=environ, now_ms=lambda: 1234)
        assert notifier.send(EVENT) == ()
    [annotation] = grafana.received
    assert annotation.path == "/api/annotations"
    assert annotation.headers["Authorization"] == f"Bearer {TOKEN}"
    assert annotation.headers["Content-Type"] == "application/json"
    assert annotation.body == annotation_payload(EVENT, 1234, ("mybinder",))
    [message] = hook.received
    assert message.path == f"/hooks/{HOOK_SECRET}"
    assert message.body == webhook_payload(EVENT, "matrix")
    assert "Authorization" not in message.headers  # Grafana's token goes to Grafana only
    for received in (annotation, message):
        assert TOKEN.encode() not in received.raw and HOOK_SECRET.encode() not in received.raw


def test_failures_are_warnings_without_secrets() -> None:
    with http_standin(500) as grafana, http_standin(503) as hook:
        environ = {"GRAFANA_URL": grafana.url, "GRAFANA_API_KEY": TOKEN,
                   "FEDERATION_WEBHOOK_URL": f"{hook.url}/hooks/{HOOK_SECRET}"}
        warnings = Notifier(settings("slack"), environ=environ).send(EVENT)
    assert warnings == ("Grafana annotation ($GRAFANA_URL) not sent: HTTP 500",
                        "slack webhook (URL in $FEDERATION_WEBHOOK_URL) not sent: HTTP 503")


def test_a_server_that_hangs_is_given_up_on_at_the_deadline() -> None:
    with hanging_standin() as hook:
        environ = {"FEDERATION_WEBHOOK_URL": f"{hook.url}/hooks/{HOOK_SECRET}"}
        started = time.monotonic()
        warnings = Notifier(settings(timeout=0.3), environ=environ).send(EVENT)
        took = time.monotonic() - started
    assert hook.arrived.is_set()
    assert warnings == ("matrix webhook (URL in $FEDERATION_WEBHOOK_URL) not sent: no answer "
                        "within 0.3s",)
    assert took < 3  # the deadline, not a socket default


def test_nothing_to_send_or_refused_to_send() -> None:
    assert Notifier(None, environ={}).send(EVENT) == ()  # nothing configured: silent
    assert Notifier(settings(), environ={}).send(EVENT) == (
        "matrix webhook (URL in $FEDERATION_WEBHOOK_URL) not sent: $FEDERATION_WEBHOOK_URL "
        "is not set (notifications.webhook_env)",)
    assert Notifier(None, environ={"GRAFANA_URL": "https://grafana.example.org"}).send(
        EVENT) == ("Grafana annotation ($GRAFANA_URL) not posted: $GRAFANA_API_KEY is not set",)
    sent: list[str] = []
    refused = Notifier(settings(), post=lambda url, *_: sent.append(url), environ={
        "GRAFANA_URL": "http://grafana.example.org", "GRAFANA_API_KEY": TOKEN,
        "FEDERATION_WEBHOOK_URL": f"http://chat.example.org/{HOOK_SECRET}"}).send(EVENT)
    assert sent == []  # a token never travels in clear over the network
    assert all("not an https URL" in w and HOOK_SECRET not in w for w in refused)


def test_an_unreachable_server_and_an_error_naming_the_url() -> None:
    def failing(url: str, *_: object) -> None:
        raise RuntimeError(f"cannot reach {url}")

    environ = {"FEDERATION_WEBHOOK_URL": f"https://chat.example.org/{HOOK_SECRET}"}
    [warning] = Notifier(settings(), environ=environ, post=failing).send(EVENT)
    assert HOOK_SECRET not in warning and "RuntimeError" in warning
    with http_standin() as standin:
        url = standin.url
    environ = {"FEDERATION_WEBHOOK_URL": f"{url}/{HOOK_SECRET}"}  # closed: refused
    [closed] = Notifier(settings(timeout=2), environ=environ).send(EVENT)
    assert closed.endswith("not sent: unreachable (ConnectionRefusedError)")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_is_a_warning(status: int) -> None:
    # urllib would follow a 302 as a GET without the body: the announcement silently lost
    with http_standin() as elsewhere, \
            http_standin(status, location=f"{elsewhere.url}/moved") as moved:
        environ = {"FEDERATION_WEBHOOK_URL": f"{moved.url}/hooks/{HOOK_SECRET}",
                   "GRAFANA_URL": moved.url, "GRAFANA_API_KEY": TOKEN}
        warnings = Notifier(settings(), environ=environ).send(EVENT)
    assert warnings == (
        f"Grafana annotation ($GRAFANA_URL) not sent: HTTP {status} (a redirect: not "
        "followed; set the final URL)",
        f"matrix webhook (URL in $FEDERATION_WEBHOOK_URL) not sent: HTTP {status} (a "
        "redirect: not followed; set the final URL)")
    assert elsewhere.received == []  # nothing followed, with or without the body
    assert [r.method for r in moved.received] == ["POST", "POST"]


@pytest.mark.parametrize("fmt", ["matrix", "slack"])
def test_each_format_is_posted(fmt: str) -> None:
    with http_standin() as hook:
        environ = {"FEDERATION_WEBHOOK_URL": hook.url + "/x"}
        assert Notifier(settings(fmt), environ=environ).send(EVENT) == ()
    assert hook.received[0].body == webhook_payload(EVENT, fmt)
