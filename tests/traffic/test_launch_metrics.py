"""The launch evidence read from a real Prometheus-API stand-in (its samples set directly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from federation_deploy.sandbox.prometheus import start_prometheus
from federation_deploy.traffic.launch_metrics import LAUNCH_BUCKETS, query_launches

SINCE = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)


def sample(value: float) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    labels = {"le": "+Inf", "status": "success", "member": "alpha"}
    return {(LAUNCH_BUCKETS, tuple(sorted(labels.items()))): value}


def test_a_growing_window_keeps_its_start_so_its_count_never_shrinks() -> None:
    # a scrape 0.3 s before the window's start (5 launches so far), one a second before
    # (none): a window whose start moved with the query's rounding saw 6, then 1
    server = start_prometheus({})
    try:
        t0 = SINCE.timestamp()
        server.standin.scrapes.extend([(t0 - 1.0, sample(0)), (t0 - 0.3, sample(5)),
                                       (t0 + 5, sample(5)), (t0 + 10, sample(6))])
        counts = [query_launches(server.url, SINCE, SINCE + timedelta(seconds=s))
                  .of("alpha").launches for s in (10.1, 10.4, 10.6, 10.9, 11.5)]
        assert counts == [1.0] * 5
    finally:
        server.stop()
