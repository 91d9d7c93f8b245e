"""Announcing deploys and weight changes: a Grafana annotation (POST {GRAFANA_URL}/api/annotations
with the Bearer token GRAFANA_API_KEY, both from the environment, as mybinder.org-deploy's CD
does) and, when federation.yaml's `notifications:` names one, a webhook message (Matrix
hookshot or Slack format).

The payloads are made by pure functions (tested as data); the HTTP has a total deadline per
call, and a failure is a warning returned to the command, never an error: a deploy that
worked is not failed by a chat server. Secrets (the token, the webhook URL, which carries its
own) are never in a warning, a payload or a log line.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from federation_deploy.config import Federation, NotificationSettings
from federation_deploy.config.freeze import printable

GRAFANA_URL_ENV = "GRAFANA_URL"
GRAFANA_KEY_ENV = "GRAFANA_API_KEY"
DEFAULT_TIMEOUT = 5.0  # seconds, in all, per HTTP call (config: notifications.timeout)


@dataclass(frozen=True)
class Event:
    """One thing to announce. kind: deploy | weights | freeze; action: deploy, ramp-step,
    rollback, abort, drain, restore, set, freeze, unfreeze; text: one line for people."""

    kind: str
    action: str
    text: str
    member: str | None = None
    ok: bool = True


# --------------------------------------------------------------------------------------------
# The payloads (pure)


def headline(event: Event) -> str:
    """`federation-deploy deploy gke: failed: ...` on one line, free text made printable."""
    where = f" {event.member}" if event.member else ""
    state = "" if event.ok else "FAILED: "
    return f"federation-deploy {event.action}{where}: {state}{printable(event.text, 1000)}"


def annotation_tags(event: Event, extra: tuple[str, ...] = ()) -> list[str]:
    """Grafana tags: the tool, the kind and action, the member, `failed`, then config's."""
    tags = ["federation-deploy", event.kind, event.action]
    if event.member:
        tags.append(event.member)
    if not event.ok:
        tags.append("failed")
    return list(dict.fromkeys([*tags, *extra]))


def annotation_payload(event: Event, now_ms: int, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """The body of POST /api/annotations: a point in time (not a region), tagged."""
    return {"time": now_ms, "isRegion": False, "tags": annotation_tags(event, extra),
            "text": headline(event)}


def webhook_payload(event: Event, fmt: str) -> dict[str, Any]:
    """A Slack incoming webhook's {text} (mrkdwn), or a Matrix hookshot generic webhook's
    {text, html}."""
    text = headline(event)
    if fmt == "slack":
        # Slack's mrkdwn reads `<!channel>`, `<@U123>` and `<https://x|label>` as mentions
        # and links: its rules are to escape exactly these three (a drain reason is free text)
        return {"text": _escaped(text)}
    return {"text": text, "html": _escaped(text)}


def _escaped(text: str) -> str:
    """&, < and > as entities (HTML, and Slack's control characters)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------------------------
# HTTP with a total deadline


class NotifyFailed(Exception):
    """One HTTP call that did not succeed; its message never carries the URL or a token."""


Post = Callable[[str, bytes, Mapping[str, str], float], None]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib turns a 301/302/303 into a GET without the body (the
    announcement silently lost) and a 307/308 would resend the body elsewhere. The 30x is
    then an HTTPError, said as a warning."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        if 300 <= exc.code < 400:
            return f"HTTP {exc.code} (a redirect: not followed; set the final URL)"
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"unreachable ({type(exc.reason).__name__})" if not isinstance(
            exc.reason, str) else "unreachable"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    """POST body to url; NotifyFailed unless a 2xx answer came within timeout seconds in all
    (a server that accepts and never answers, or trickles, is given up on at the deadline).
    A redirect is never followed (NotifyFailed `HTTP 302 (a redirect: not followed ...)`)."""
    outcome: dict[str, BaseException | int] = {}

    def call() -> None:
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        for name, value in headers.items():
            request.add_unredirected_header(name, value)
        try:
            # the join below is the deadline; the socket's own timeout (per read) is longer,
            # so that a hanging server is always said as such, never as a socket timeout
            with _OPENER.open(request, timeout=timeout + 5) as response:
                response.read(65536)
                outcome["status"] = response.status
        except BaseException as exc:  # noqa: BLE001 -- reported as a warning, never raised
            outcome["error"] = exc

    worker = threading.Thread(target=call, name="notify", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise NotifyFailed(f"no answer within {timeout:g}s")
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise NotifyFailed(_describe(error))
    status = outcome.get("status")
    if not isinstance(status, int) or not 200 <= status < 300:
        raise NotifyFailed(f"HTTP {status}")


def _url_refusal(url: str) -> str | None:
    """A token goes only to https, or to http on this machine (tests, a sandbox)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost"):
        return None
    return "not an https URL (http only on 127.0.0.1): nothing sent"


# --------------------------------------------------------------------------------------------
# The notifier


class Notifier:
    """Sends each Event to Grafana (GRAFANA_URL set) and the webhook (configured); returns
    the warnings of what could not be sent."""

    def __init__(self, settings: NotificationSettings | None = None, *,
                 environ: Mapping[str, str] | None = None, post: Post = http_post,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.post = post
        self.now_ms = now_ms

    @classmethod
    def for_federation(cls, fed: Federation) -> Notifier:
        return cls(fed.notifications)

    @property
    def timeout(self) -> float:
        return self.settings.timeout if self.settings is not None else DEFAULT_TIMEOUT

    def send(self, event: Event) -> tuple[str, ...]:
        """Announce event everywhere configured; the warnings (empty: all sent, or nowhere
        to send). Never raises for a failed send."""
        warnings: list[str] = []
        grafana = self.environ.get(GRAFANA_URL_ENV, "").strip().rstrip("/")
        if grafana:
            warnings += self._grafana(grafana, event)
        settings = self.settings
        if settings is not None and settings.webhook_env:
            warnings += self._webhook(settings.webhook_env, settings.format, event)
        return tuple(warnings)

    def _grafana(self, base: str, event: Event) -> list[str]:
        where = f"Grafana annotation (${GRAFANA_URL_ENV})"
        key = self.environ.get(GRAFANA_KEY_ENV, "").strip()
        if not key:
            return [f"{where} not posted: ${GRAFANA_KEY_ENV} is not set"]
        if refusal := _url_refusal(base):
            return [f"{where} not posted: ${GRAFANA_URL_ENV} is {refusal}"]
        extra = self.settings.tags if self.settings is not None else ()
        body = json.dumps(annotation_payload(event, self.now_ms(), extra)).encode()
        return self._posted(where, f"{base}/api/annotations", body,
                            {"Authorization": f"Bearer {key}"}, (key, base))

    def _webhook(self, env: str, fmt: str, event: Event) -> list[str]:
        where = f"{fmt} webhook (URL in ${env})"
        url = self.environ.get(env, "").strip()
        if not url:
            return [f"{where} not sent: ${env} is not set (notifications.webhook_env)"]
        if refusal := _url_refusal(url):
            return [f"{where} not sent: ${env} is {refusal}"]
        body = json.dumps(webhook_payload(event, fmt)).encode()
        return self._posted(where, url, body, {}, (url,))

    def _posted(self, where: str, url: str, body: bytes, headers: Mapping[str, str],
                secrets: tuple[str, ...]) -> list[str]:
        try:
            self.post(url, body, headers, self.timeout)
        except Exception as exc:  # noqa: BLE001 -- a failed announcement is a warning
            shown = str(exc) if isinstance(exc, NotifyFailed) else type(exc).__name__
            for secret in secrets:
                shown = shown.replace(secret, "***")
            return [f"{where} not sent: {shown}"]
        return []


def warnings_markdown(warnings: tuple[str, ...]) -> str:
    """The failed announcements for a CI job's summary page (empty when none failed)."""
    if not warnings:
        return ""
    lines = ["", "**notifications not sent** (the command itself went on):", ""]
    lines += [f"- {printable(w)}" for w in warnings]
    return "\n".join(lines) + "\n"
