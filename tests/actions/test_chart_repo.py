"""A chart repository's index.yaml over HTTP: a server that trickles it fails at the timeout,
counted for the whole download (issue 29, item 3)."""

from __future__ import annotations

import time

import pytest

from federation_deploy.actions.chart_repo import ChartRepositoryError, repository_index
from tests.helpers.serve import trickling


def test_a_trickling_index_fails_at_the_timeout() -> None:
    with trickling(b"apiVersion: v1\nentries: {}\n", interval=0.1) as url:
        start = time.monotonic()
        with pytest.raises(ChartRepositoryError,
                           match=r"index\.yaml: no complete answer within 0\.5s"):
            repository_index(url, timeout=0.5)
        assert time.monotonic() - start < 1.5


def test_a_prompt_index_is_read() -> None:
    with trickling(b"apiVersion: v1\nentries: {}\n", interval=0.0) as url:
        assert repository_index(url, timeout=5.0) == {"apiVersion": "v1", "entries": {}}
