"""Chart version order (semver, dev versions only for dev pins) and index.yaml reading."""

from __future__ import annotations

import json

import pytest

from federation_deploy.config.chart_versions import (
    ChartStatus,
    index_entries,
    is_dev,
    is_newer,
    newest_version,
    report_json,
    report_table,
    short_error,
)

BINDERHUB_DEV = ["1.0.0-0.dev.git.3170.h1a2b3c4", "1.0.0-0.dev.git.3200.h0000000",
                 "1.0.0-0.dev.git.999.h1111111", "0.2.0"]


def test_dev_builds_order_by_their_number_not_as_text() -> None:
    assert newest_version(BINDERHUB_DEV, "1.0.0-0.dev.git.1.h0") == "1.0.0-0.dev.git.3200.h0000000"


def test_a_stable_pin_is_offered_stable_versions_only() -> None:
    assert newest_version(["1.2.0", "1.10.0", "2.0.0-beta.1", "not-a-version"], "1.2.0") == \
        "1.10.0"
    assert newest_version(["2.0.0-beta.1"], "1.2.0") is None


def test_a_leading_v_is_kept_and_compared() -> None:
    assert newest_version(["v1.12.3", "v1.14.1", "v1.9.0"], "v1.12.3") == "v1.14.1"
    assert is_newer("v1.14.1", "v1.12.3") and not is_newer("v1.12.3", "v1.12.3")


def test_a_release_beats_its_own_dev_builds() -> None:
    assert newest_version(["1.0.0", "1.0.0-0.dev.git.5.h0"], "1.0.0-0.dev.git.1.h0") == "1.0.0"
    assert is_dev("1.0.0-0.dev.git.5.h0") and not is_dev("1.0.0") and not is_dev("nonsense")


def test_index_entries() -> None:
    doc = {"apiVersion": "v1", "entries": {"demo": [
        {"version": "1.0.0", "sources": ["https://example.org/demo"]},
        {"version": "1.1.0", "home": "https://example.org"},
        {"name": "no version"},
    ]}}
    entries = index_entries(doc, "demo")
    assert [(e.version, e.sources, e.home) for e in entries] == [
        ("1.0.0", ("https://example.org/demo",), None), ("1.1.0", (), "https://example.org")]
    with pytest.raises(ValueError, match="the repository has no chart 'other'"):
        index_entries(doc, "other")
    with pytest.raises(ValueError, match="not a helm repository index"):
        index_entries(["a list"], "demo")


def test_the_table_states_each_row() -> None:
    text = report_table([
        ChartStatus("a", "a", "https://x", "1.0.0", newest="1.1.0"),
        ChartStatus("b", "b", "https://x", "1.0.0", newest="1.0.0", overrides={"staging": "1.1"}),
        ChartStatus("c", "c", "https://x", "1.0.0", error="cannot reach https://x"),
        ChartStatus("d", "d", "https://x", "1.0.0", error=LONG_ERROR),
    ])
    rows = [[cell.strip() for cell in line.split("  ") if cell.strip()]
            for line in text.splitlines()]
    # lower-case headers as members and traffic have; the error last, shortened
    assert rows == [
        ["chart", "pinned", "newest", "state", "overrides", "error"],
        ["a", "1.0.0", "1.1.0", "outdated", "-", "-"],
        ["b", "1.0.0", "1.0.0", "up to date", "staging=1.1", "-"],
        ["c", "1.0.0", "-", "error", "-", "cannot reach https://x"],
        ["d", "1.0.0", "-", "error", "-",
         "cannot reach https://charts.example.org/index.yaml"],
    ]


LONG_ERROR = ("cannot reach https://charts.example.org/index.yaml: "
              "HTTPSConnectionPool(host='charts.example.org', port=443): Max retries exceeded")


def test_errors_are_shortened_for_the_table_only() -> None:
    assert short_error("cannot reach https://x: refused") == "cannot reach https://x: refused"
    assert short_error(LONG_ERROR) == (
        "cannot reach https://charts.example.org/index.yaml")
    assert short_error("x" * 100) == "x" * 57 + "..."
    assert short_error("first line\nsecond line") == "first line"
    # JSON keeps the whole text, and says outdated: null when the repository was not asked
    (row,) = json.loads(report_json([ChartStatus("d", "d", "https://x", "1.0.0",
                                                 error=LONG_ERROR)]))
    assert row["error"] == LONG_ERROR and row["outdated"] is None
    (row,) = json.loads(report_json([ChartStatus("a", "a", "https://x", "1.0.0",
                                                 newest="1.0.0")]))
    assert row["outdated"] is False
