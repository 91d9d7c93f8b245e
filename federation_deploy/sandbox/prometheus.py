"""A Prometheus stand-in: scrapes the stand-in members' /metrics and answers the HTTP query API.

Enough of Prometheus for the ramp's evidence, over real HTTP on 127.0.0.1: `scrape(at)` reads
every target's /metrics now and stores it at the timestamp `at` (the caller's clock: tests
inject one and never sleep), each series labelled with the target's member name;
`GET /api/v1/query?query=...&time=T` answers instant queries of the two shapes the ramp asks
(a plain selector, and `sum by (labels) (increase(metric{matchers}[Ns]))`) from the stored
scrapes, in Prometheus' JSON format. Anything else is a 400 with Prometheus' error body.

As a process for the sandbox (`python -m federation_deploy.sandbox.prometheus --port N
--target gke=http://127.0.0.1:P/metrics ...`) it scrapes every --interval seconds of the wall
clock and answers /-/healthy, so `ramp --prometheus-url` works against the stand-ins.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from federation_deploy.health import http
from federation_deploy.traffic.live import parse_prometheus_text

SeriesKey = tuple[str, tuple[tuple[str, str], ...]]

_INCREASE = re.compile(r"^\s*sum\s+by\s*\(([\w\s,]*)\)\s*\(\s*increase\(\s*([a-zA-Z_:][\w:]*)"
                       r"\s*(?:\{(.*)\})?\s*\[(\d+)s\]\s*\)\s*\)\s*$")
_SELECTOR = re.compile(r"^\s*([a-zA-Z_:][\w:]*)\s*(?:\{(.*)\})?\s*$")
_MATCHER = re.compile(r'\s*([a-zA-Z_]\w*)\s*(=~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


class QueryError(ValueError):
    """A query this stand-in does not understand (HTTP 400, as Prometheus answers)."""


def _matchers(text: str | None) -> list[tuple[str, str, str]]:
    if not text:
        return []
    found = _MATCHER.findall(text)
    if not found:
        raise QueryError(f"cannot parse matchers {text!r}")
    return found


def _matches(labels: Mapping[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        got = labels.get(name, "")
        if op == "=" and got != value or op == "!=" and got == value:
            return False
        if op == "=~" and not re.fullmatch(value, got):
            return False
    return True


@dataclass
class PrometheusStandin:
    """The stored scrapes and the query engine (no HTTP: see PrometheusServer)."""

    targets: dict[str, str] = field(default_factory=dict)  # member -> its /metrics URL
    scrapes: list[tuple[float, dict[SeriesKey, float]]] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def scrape(self, at: float) -> None:
        """Read every target's /metrics now and keep it as the samples at timestamp at."""
        series: dict[SeriesKey, float] = {}
        for member, url in self.targets.items():
            text = http.get(url, 5, headers={"Connection": "close"}).text
            for sample in parse_prometheus_text(text):
                labels = {**sample.labels, "member": member}
                series[(sample.name, tuple(sorted(labels.items())))] = sample.value
        with self.lock:
            self.scrapes.append((at, series))
            self.scrapes.sort(key=lambda item: item[0])

    def _at(self, moment: float) -> dict[SeriesKey, float]:
        found: dict[SeriesKey, float] = {}
        for at, series in self.scrapes:
            if at > moment:
                break
            found = series
        return found

    def query(self, text: str, moment: float) -> list[dict[str, Any]]:
        """The instant vector of query at moment (Prometheus' `result` list)."""
        with self.lock:
            self.queries.append(text)
            if match := _INCREASE.match(text):
                by = [b.strip() for b in match.group(1).split(",") if b.strip()]
                return self._increase(match.group(2), _matchers(match.group(3)),
                                      float(match.group(4)), by, moment)
            if match := _SELECTOR.match(text):
                matchers = _matchers(match.group(2))
                return [_vector_item(dict(labels), value, moment)
                        for (name, labels), value in self._at(moment).items()
                        if name == match.group(1) and _matches(dict(labels), matchers)]
        raise QueryError(f"this stand-in does not evaluate {text!r}")

    def _increase(self, metric: str, matchers: list[tuple[str, str, str]], seconds: float,
                  by: list[str], moment: float) -> list[dict[str, Any]]:
        end, start = self._at(moment), self._at(moment - seconds)
        sums: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)
        for (name, labels), value in end.items():
            if name != metric or not _matches(dict(labels), matchers):
                continue
            before = start.get((name, labels), 0.0)
            increase = value - before if value >= before else value  # a reset: from 0
            kept = tuple((k, v) for k, v in labels if k in by)
            sums[kept] += increase
        return [_vector_item(dict(labels), value, moment) for labels, value in sums.items()]


def _vector_item(labels: Mapping[str, str], value: float, moment: float) -> dict[str, Any]:
    return {"metric": dict(labels), "value": [moment, repr(float(value))]}


class _QueryHandler(BaseHTTPRequestHandler):
    server: PrometheusServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        if parts.path == "/-/healthy":
            self._answer(200, {"status": "success"})
            return
        if parts.path != "/api/v1/query":
            self._answer(404, {"status": "error", "error": "not found"})
            return
        params = parse_qs(parts.query)
        try:
            moment = float(params.get("time", ["0"])[0])
            result = self.server.standin.query(params.get("query", [""])[0], moment)
        except ValueError as exc:
            self._answer(400, {"status": "error", "errorType": "bad_data", "error": str(exc)})
            return
        self._answer(200, {"status": "success",
                           "data": {"resultType": "vector", "result": result}})

    def _answer(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass


class PrometheusServer(ThreadingHTTPServer):
    """The stand-in's query API on 127.0.0.1 (a free port), served from a background thread."""

    daemon_threads = True

    def __init__(self, standin: PrometheusStandin, address: str = "127.0.0.1",
                 port: int = 0) -> None:
        super().__init__((address, port), _QueryHandler)
        self.standin = standin
        self.url = f"http://{address}:{self.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> PrometheusServer:
        self._thread = threading.Thread(target=self.serve_forever, name="prometheus-standin",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_prometheus(targets: Mapping[str, str]) -> PrometheusServer:
    """A running Prometheus stand-in scraping targets ({member: its /metrics URL})."""
    return PrometheusServer(PrometheusStandin(dict(targets))).start()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m federation_deploy.sandbox.prometheus",
        description="A Prometheus stand-in: scrapes the stand-in members' /metrics (each "
                    "series labelled member=NAME) and answers the instant-query API.")
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one, printed)")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--target", action="append", default=[], metavar="NAME=URL",
                        help="a member and its /metrics URL (repeat)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between scrapes")
    args = parser.parse_args(argv)
    targets = dict(item.split("=", 1) for item in args.target)
    server = PrometheusServer(PrometheusStandin(targets), args.address, args.port).start()
    print(f"prometheus stand-in listening on {server.url}", file=sys.stderr, flush=True)
    try:
        while True:
            try:
                server.standin.scrape(time.time())
            except requests.RequestException as exc:  # a member down: the next scrape retries
                print(f"scrape failed: {exc}", file=sys.stderr, flush=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
