"""The redirector's HTTP handlers and its URL table; state comes in through initialize()."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tornado
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httputil import (
    HTTPHeaders,
    HTTPMessageDelegate,
    HTTPServerRequest,
    ResponseStartLine,
)
from tornado.web import HTTPError, RedirectHandler, RequestHandler

from federation_deploy.redirector.metrics import CONTENT_TYPE, render_metrics
from federation_deploy.redirector.routing import cookie_path, member_target
from federation_deploy.redirector.sticky import pool_top

if TYPE_CHECKING:
    from federation_deploy.redirector.app import Redirector

log = logging.getLogger("federation_deploy.redirector")

HOST_COOKIE = "host"
LAUNCH_HOST = "https://mybinder.org/"  # X-Binder-Launch-Host, as mybinder's proxy sends it
BADGE_BASE = "https://static.mybinder.org"

# Hop-by-hop and framing headers: never copied across the proxy (tornado sets its own).
_HOP_REQUEST = {
    "Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer",
    "Transfer-Encoding", "Upgrade", "Content-Length", "Host",
}
_HOP_RESPONSE = {"Content-Length", "Transfer-Encoding", "Content-Encoding", "Connection"}


class BaseHandler(RequestHandler):
    def initialize(self, redirector: Redirector) -> None:
        self.redirector = redirector

    def prepare(self) -> None:
        self.redirector.in_flight += 1

    def on_finish(self) -> None:
        self.redirector.in_flight -= 1

    def write_json(self, data: Any) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(data))


class BuildRedirectHandler(BaseHandler):
    """/build/...: 307 to a member, remembered in the `host` cookie.

    A GET with a well-formed target is answered by LaunchRedirect (the same answer without
    a RequestHandler); this handler answers the rest: other methods (405), bad targets (400).
    """

    def set_default_headers(self) -> None:
        for name, value in CORS_HEADERS:
            self.set_header(name, value)

    def get(self) -> None:
        if not launch_target_ok(self.request.uri):
            raise HTTPError(400, "malformed request target")
        location, cookie = launch_redirect(self.redirector, self.request)
        self.add_header("Set-Cookie", cookie)
        self.redirect(location, status=307)


# mybinder's headers: the launch page calls /build/ from the browser with fetch()
CORS_HEADERS = (("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Headers", "cache-control"))


def launch_target_ok(uri: str) -> bool:
    """True when any member URL + uri stays on that member (see routing.member_target)."""
    return member_target("", uri) is not None


def launch_redirect(redirector: Redirector, request: HTTPServerRequest) -> tuple[str, str]:
    """(Location, Set-Cookie) of a launch whose target passed launch_target_ok; counted."""
    path = request.path
    morsel = request.cookies.get(HOST_COOKIE) if "Cookie" in request.headers else None
    choice = redirector.route(path, morsel.value if morsel is not None else None)
    redirector.metrics.count_redirect(choice.name, choice.reason)
    max_age, expires = redirector.cookie_lifetime()
    cookie = host_cookie(choice.url, cookie_path(path), expires, max_age,
                         secure=request.protocol == "https")
    return choice.url + request.uri, cookie


class LaunchRedirect(HTTPMessageDelegate):
    """A GET /build/... answered straight on the HTTP connection: the 307 and the headers
    BuildRedirectHandler's answer has (tornado's defaults, CORS, Location, Set-Cookie).

    Launches are the redirector's load: a RequestHandler per launch (its set-up, its
    coroutine task, the router's regular expressions) cost a third of the CPU of a launch.
    """

    def __init__(self, redirector: Redirector, request: HTTPServerRequest,
                 log_launch: Callable[[HTTPServerRequest, int], None]) -> None:
        self.redirector = redirector
        self.request = request
        self.log_launch = log_launch

    def data_received(self, chunk: bytes) -> None:
        pass  # a GET's body (there should be none) is not read, as RequestHandler does

    def finish(self) -> None:
        request = self.request
        connection = request.connection
        assert connection is not None
        try:
            location, cookie = launch_redirect(self.redirector, request)
        except Exception:
            log.exception("launch %s failed", request.uri)
            status, reason = 500, "Internal Server Error"
            extra: tuple[tuple[str, str], ...] = ()
        else:
            status, reason = 307, "Temporary Redirect"
            if not location.isascii():
                # as RequestHandler.redirect writes it (and so mybinder's app): the URL's text
                # (raw bytes read as latin-1) encoded as UTF-8 once more
                location = location.encode("utf-8").decode("latin-1")
            extra = (("Location", location), ("Set-Cookie", cookie))
        headers = HTTPHeaders()
        headers["Server"] = SERVER_HEADER
        headers["Content-Type"] = "text/html; charset=UTF-8"
        headers["Date"] = self.redirector.http_date()
        for name, value in (*CORS_HEADERS, *extra):
            headers[name] = value
        headers["Content-Length"] = "0"
        connection.write_headers(ResponseStartLine("HTTP/1.1", status, reason), headers)
        connection.finish()
        self.log_launch(request, status)


SERVER_HEADER = f"TornadoServer/{tornado.version}"


def host_cookie(url: str, path: str, expires: str, max_age: int, secure: bool) -> str:
    """The Set-Cookie value for `host`, as tornado's set_cookie would write it.

    Written directly because set_cookie (a Morsel per response) costs more than the routing.
    Member URLs hold no quote, backslash or control character (config validation), so the
    quoted value needs no escaping.
    """
    value = (
        f'{HOST_COOKIE}="{url}"; expires={expires}; HttpOnly; Max-Age={max_age}; '
        f"Path={path}; SameSite=Lax"
    )
    return value + "; Secure" if secure else value


class ProxyHandler(BaseHandler):
    """Every other path: fetched from the prime (or the best healthy member) and passed back."""

    async def get(self) -> None:
        host = self.redirector.proxy_host()
        target = member_target(host.url, self.request.uri)
        if target is None:
            raise HTTPError(400, "malformed request target")
        request = HTTPRequest(
            target, method="GET", headers=proxy_request_headers(self.request.headers)
        )
        try:
            response = await self.redirector.proxy_client.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            log.warning("proxy to %s failed: %s", target, exc)
            raise HTTPError(502, f"{host.name} did not answer") from None
        if response.code == 599:
            log.warning("proxy to %s failed: %s", target, response.error)
            raise HTTPError(502, f"{host.name} did not answer")
        self.set_status(response.code, response.reason)
        self._headers = HTTPHeaders()  # only the member's headers, not tornado's defaults
        for name, value in response.headers.get_all():
            if name not in _HOP_RESPONSE:
                self.add_header(name, value)
        if response.body and response.code not in (204, 304):
            self.write(response.body)
        self.finish()


def proxy_request_headers(incoming: HTTPHeaders) -> HTTPHeaders:
    """The user's headers minus hop-by-hop ones, plus what mybinder's proxy adds.

    Host is left for the HTTP client to set from the target: forwarding ours would make the
    ingress route the request back to the redirector.
    """
    headers = HTTPHeaders()
    for name, value in incoming.get_all():
        if name not in _HOP_REQUEST:
            headers.add(name, value)
    host = incoming.get("Host")
    if host:
        headers.setdefault("X-Forwarded-Host", host)
        headers["Origin"] = f"https://{host}"
    headers["X-Binder-Launch-Host"] = LAUNCH_HOST
    return headers


class ActiveHostsHandler(BaseHandler):
    """{"active_hosts": {name: host config}} of the healthy members, as mybinder serves it,
    and beside it the `generation` of the config served (null when the config has none)."""

    def get(self) -> None:
        accepted = self.redirector.config.accepted_versions
        self.write_json({"active_hosts": self.redirector.active_hosts(),
                         "generation": self.redirector.config.generation,
                         # a rollout's accepted set while its rings run (absent otherwise)
                         **({"accepted_versions": {k: list(v) for k, v in accepted.items()}}
                            if accepted else {})})


class RampPoolHandler(BaseHandler):
    """/ramp_pool?member=M&final_weight=F&n=N: the N most launched repositories (as launch
    paths, with their estimated share) among those M gets at weight F, for warming its
    caches before a ramp; from this replica's popularity estimate."""

    def get(self) -> None:
        member = self.get_query_argument("member")
        try:
            final_weight = float(self.get_query_argument("final_weight"))
            count = int(self.get_query_argument("n", "10"))
        except ValueError:
            raise HTTPError(400, "final_weight and n must be numbers") from None
        table = self.redirector.table
        others = [c for c in table.sticky if c.name != member]
        self.redirector.ramp.settle()  # the launches counted so far, in the estimate
        top = pool_top(self.redirector.ramp.popularity, member, others, final_weight, count)
        self.write_json({"member": member, "repositories": [
            # a GitHub key has no ref (every ref of a repository is one key): warm HEAD
            {"path": key.removeprefix("/build/") + ("/HEAD" if key.startswith("/build/gh")
                                                     else ""), "share": share}
            for key, share in top]})


class HealthHandler(BaseHandler):
    """The redirector's own health: it is up and can route (to the primes at worst)."""

    def get(self) -> None:
        self.write_json(self.redirector.health_report())


class MetricsHandler(BaseHandler):
    def get(self) -> None:
        redirector = self.redirector
        redirector.ramp.settle()  # the launches counted so far, in the estimate
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(
            render_metrics(
                redirector.metrics,
                redirector.config,
                redirector.monitor.statuses(),
                redirector.table,
                redirector.monitor.check_counts,
                redirector.ramp,
                redirector.monitor.reference,
            )
        )


def routes(redirector: Redirector) -> list[tuple[str, type[RequestHandler], dict[str, Any]]]:
    """The handler table; order matters (the proxy catches everything else)."""
    deps = {"redirector": redirector}
    return [
        (r"/build/.*", BuildRedirectHandler, deps),
        # mybinder's badge URLs, kept so that README badges pointing at mybinder.org still work
        (r"/badge_logo\.svg", RedirectHandler, _permanent(f"{BADGE_BASE}/badge_logo.svg")),
        (r"/badge\.svg", RedirectHandler, _permanent(f"{BADGE_BASE}/badge.svg")),
        (r"/assets/images/badge\.svg", RedirectHandler, _permanent(f"{BADGE_BASE}/badge.svg")),
        (r"/active_hosts", ActiveHostsHandler, deps),
        (r"/ramp_pool", RampPoolHandler, deps),
        (r"/health", HealthHandler, deps),
        (r"/metrics", MetricsHandler, deps),
        (r".*", ProxyHandler, deps),
    ]


def _permanent(url: str) -> dict[str, Any]:
    return {"url": url, "permanent": True}
