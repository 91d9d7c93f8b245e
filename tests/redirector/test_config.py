"""config.json parsing: mybinder's federationRedirect JSON loads; bad input names its key."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from federation_deploy.redirector.config import (
    CheckConfig,
    RedirectorConfigError,
    load_config,
    loads_config,
    parse_config,
)

# mybinder's chart writes all of .Values.federationRedirect (image, resources, ...) as JSON
MYBINDER_VALUES: dict[str, Any] = {
    "enabled": True,
    "image": {"name": "quay.io/mybinder/federation-redirect", "tag": "set-by-chartpress"},
    "host": "mybinder.org",
    "resources": {"requests": {"cpu": "0.1", "memory": "100Mi"}},
    "check": {"period": 10, "jitter": 0.1, "retries": 5, "timeout": 2, "failed_period": 300},
    "load_balancer": "rendezvous",
    "hosts": {
        "gke": {
            "prime": True,
            "url": "https://gke.mybinder.org/",
            "weight": 60,
            "health": "https://gke.mybinder.org/health",
            "versions": "https://gke.mybinder.org/versions",
        },
        "ovh2": {
            "url": "https://ovh2.mybinder.org",
            "weight": 40,
            "health": "https://ovh2.mybinder.org/health",
            "versions": "https://ovh2.mybinder.org/versions",
        },
        "gesis": {"url": "https://notebooks.gesis.org/binder", "weight": 0},
        "old": None,
    },
}


def test_mybinder_values_load() -> None:
    config = parse_config(MYBINDER_VALUES)
    assert [h.name for h in config.hosts] == ["gke", "ovh2"]
    gke = config.host("gke")
    assert gke is not None and gke.prime and gke.url == "https://gke.mybinder.org"
    assert config.dropped == ("gesis", "old")
    assert set(config.ignored_keys) == {"enabled", "image", "host", "resources"}
    assert config.pod_headroom == 10 and config.host_cookie_age_hours == 4


def test_defaults_fill_missing_settings() -> None:
    config = parse_config(
        {"hosts": {"a": {"url": "https://a.example.org//", "weight": 1, "prime": True}},
         "check": {"period": 3}}
    )
    (a,) = config.hosts
    assert a.url == "https://a.example.org"
    assert a.health == "https://a.example.org/health"
    assert a.versions == "https://a.example.org/versions"
    assert not a.ramp
    assert config.check == CheckConfig(period=3)
    assert config.load_balancer == "rendezvous"


def test_brief_example_with_ramp() -> None:
    config = parse_config(
        {
            "hosts": {
                "gke": {"url": "https://gke.mybinder.org", "weight": 60, "prime": True},
                "curvenote": {"url": "https://binder.curvenote.dev", "weight": 0.7,
                              "ramp": True},
                "old": None,
            },
            "check": {"period": 10, "jitter": 0.1, "retries": 5, "timeout": 2,
                      "failed_period": 300},
            "load_balancer": "rendezvous", "pod_headroom": 10, "host_cookie_age_hours": 4,
        }
    )
    curvenote = config.host("curvenote")
    assert curvenote is not None and curvenote.ramp and curvenote.weight == 0.7


PRIME = {"url": "https://a.org", "weight": 60, "prime": True}


def test_final_weight_of_a_ramping_host() -> None:
    config = parse_config({"hosts": {
        "a": PRIME,
        "new": {"url": "https://new.org", "weight": 0.5, "ramp": True, "final_weight": 20},
        "half": {"url": "https://half.org", "weight": 1, "ramp": True, "final_weight": 2.5},
        # a ramp published before final weights (or by hand) has none: still a ramp
        "old": {"url": "https://old.org", "weight": 1, "ramp": True, "final_weight": None}}})
    finals = {h.name: h.final_weight for h in config.hosts}
    assert finals == {"a": None, "new": 20.0, "half": 2.5, "old": None}
    assert config.ignored_keys == ()  # a known key, not one of mybinder's extras
    new, half, old, a = (config.host(n) for n in ("new", "half", "old", "a"))
    assert new is not None and half is not None and old is not None and a is not None
    # /active_hosts: an integer stays one, and the key is there only when set
    assert new.as_json()["final_weight"] == 20 and isinstance(new.as_json()["final_weight"], int)
    assert half.as_json()["final_weight"] == 2.5
    assert "final_weight" not in old.as_json() and "final_weight" not in a.as_json()
    assert set(a.as_json()) == {"url", "weight", "prime", "ramp", "health", "versions"}


@pytest.mark.parametrize(
    ("final_weight", "fragment"),
    [
        ("20", "expected a number, got a string"),
        (True, "expected a number, got a boolean"),
        (0, "expected a number > 0, got 0"),
        (-3, "expected a number > 0, got -3"),
        ([20], "expected a number, got a list"),
    ],
)
def test_bad_final_weight_names_the_key(final_weight: Any, fragment: str) -> None:
    with pytest.raises(RedirectorConfigError) as info:
        parse_config({"hosts": {"a": PRIME, "new": {
            "url": "https://new.org", "weight": 1, "ramp": True, "final_weight": final_weight}}})
    assert info.value.key == "hosts.new.final_weight"
    assert fragment in info.value.message


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_final_weight_must_be_finite(value: float) -> None:
    text = json.dumps({"hosts": {"a": PRIME, "new": {
        "url": "https://new.org", "weight": 1, "ramp": True, "final_weight": value}}})
    with pytest.raises(RedirectorConfigError,
                       match=r"^config.json: hosts.new.final_weight: expected a finite number"):
        loads_config(text, "config.json")


@pytest.mark.parametrize("ramp", [False, None, "absent"])
def test_final_weight_without_ramp_is_refused(ramp: Any) -> None:
    host: dict[str, Any] = {"url": "https://new.org", "weight": 1, "final_weight": 20}
    if ramp != "absent":
        host["ramp"] = ramp
    with pytest.raises(RedirectorConfigError) as info:
        parse_config({"hosts": {"a": PRIME, "new": host}})
    assert info.value.key == "hosts.new.final_weight"
    assert "only a ramping host has a final weight (set `ramp: true`" in info.value.message
    # the prime too: a final weight belongs to a ramp, whoever has it
    with pytest.raises(RedirectorConfigError, match="hosts.a.final_weight: only a ramping"):
        parse_config({"hosts": {"a": {**PRIME, "final_weight": 60}}})


def test_weight_zero_prime_is_kept() -> None:
    # the prime is the proxy target and versions reference even when it takes no launches
    config = parse_config(
        {"hosts": {"a": {"url": "https://a.org", "weight": 0, "prime": True},
                   "b": {"url": "https://b.org", "weight": 1}}}
    )
    assert [h.name for h in config.hosts] == ["a", "b"]


@pytest.mark.parametrize(
    ("data", "key", "fragment"),
    [
        ([], "(top level)", "expected an object"),
        ({}, "hosts", "missing"),
        ({"hosts": []}, "hosts", "expected an object"),
        ({"hosts": {"a": 3}}, "hosts.a", "expected an object"),
        ({"hosts": {"a": {"weight": 1, "prime": True}}}, "hosts.a.url", "missing"),
        ({"hosts": {"a": {"url": "https://a.org", "prime": True}}}, "hosts.a.weight", "missing"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": -1, "prime": True}}},
         "hosts.a.weight", ">= 0"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": "1", "prime": True}}},
         "hosts.a.weight", "expected a number"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": True, "prime": True}}},
         "hosts.a.weight", "expected a number"),
        ({"hosts": {"a": {"url": "ftp://a.org", "weight": 1, "prime": True}}},
         "hosts.a.url", "http(s) URL"),
        ({"hosts": {"a": {"url": "https://a.org?x=1", "weight": 1, "prime": True}}},
         "hosts.a.url", "no query"),
        ({"hosts": {"a": {"url": "https://a.org/x;y", "weight": 1, "prime": True}}},
         "hosts.a.url", "unexpected characters"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": "yes"}}},
         "hosts.a.prime", "true or false"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True, "ramp": 1}}},
         "hosts.a.ramp", "true or false"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "health": 5, "prime": True}}},
         "hosts.a.health", "URL"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1}}}, "hosts", "no prime"),
        ({"hosts": {"a": None}}, "hosts", "no host left"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True},
                    "b": {"url": "https://a.org/", "weight": 1}}}, "hosts.b.url", "also"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True}},
          "load_balancer": "round-robin"}, "load_balancer", "rendezvous, random"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True}},
          "check": {"period": 0}}, "check.period", "> 0"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True}},
          "check": {"retries": 0}}, "check.retries", ">= 1"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True}},
          "check": {"jitter": 3}}, "check.jitter", "<= 1"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True}},
          "check": "often"}, "check", "expected an object"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True}},
          "pod_headroom": 2.5}, "pod_headroom", "integer"),
        ({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True}},
          "host_cookie_age_hours": 0}, "host_cookie_age_hours", "> 0"),
    ],
)
def test_invalid_config_names_the_key(data: Any, key: str, fragment: str) -> None:
    with pytest.raises(RedirectorConfigError) as info:
        parse_config(data)
    assert info.value.key == key
    assert fragment in info.value.message


def test_json_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"hosts": {\n  "a": }\n}')
    with pytest.raises(RedirectorConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value) and "line 2" in str(info.value)
    with pytest.raises(RedirectorConfigError, match="file not found"):
        load_config(tmp_path / "missing.json")


def test_nan_weight_is_rejected() -> None:
    text = json.dumps({"hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True},
                                 "b": {"url": "https://b.org", "weight": float("nan")}}})
    with pytest.raises(RedirectorConfigError, match="hosts.b.weight: expected a finite"):
        loads_config(text, "config.json")


# issue 29 re-trial, item 2: numbers that passed validation and failed where they were used
# (host_cookie_age_hours: 1000000000 made every /build answer 500: an Expires past year 9999)
A_HOST = {"a": {"url": "https://a.org", "weight": 1, "prime": True}}


@pytest.mark.parametrize(("extra", "key", "fragment"), [
    ({"host_cookie_age_hours": 1_000_000_000}, "host_cookie_age_hours", "<= 87600"),
    ({"host_cookie_age_hours": 10**400}, "host_cookie_age_hours", "finite"),
    ({"check": {"retries": 10**12}}, "check.retries", "<= 100"),
    ({"check": {"timeout": 10_000_000_000}}, "check.timeout", "<= 2.592e+06"),
    ({"check": {"period": 10**30}}, "check.period", "<="),
    ({"check": {"failed_period": 1e300}}, "check.failed_period", "<="),
    ({"pod_headroom": 10**20}, "pod_headroom", "<= 100000"),
    ({"prime_fallback_after": 1e12}, "prime_fallback_after", "<="),
    ({"hosts": {"a": {"url": "https://a.org", "weight": 1e-300, "prime": True}}},
     "hosts.a.weight", "0 or a weight >= 0.0001"),
    ({"hosts": {"a": {"url": "https://a.org", "weight": 2e6, "prime": True}}},
     "hosts.a.weight", "<= 1e+06"),
])
def test_numbers_are_bounded_where_they_are_used(extra: dict[str, Any], key: str,
                                                 fragment: str) -> None:
    with pytest.raises(RedirectorConfigError) as info:
        parse_config({"hosts": A_HOST, **extra})
    assert info.value.key == key
    assert fragment in info.value.message
    assert len(info.value.message) < 120  # never a 300-digit number quoted


def test_the_largest_cookie_age_still_makes_a_cookie() -> None:
    # what cookie_lifetime does with it: an Expires date email.utils can format
    from email.utils import formatdate

    from federation_deploy.redirector.config import MAX_HOST_COOKIE_AGE_HOURS
    config = parse_config({"hosts": A_HOST, "host_cookie_age_hours": MAX_HOST_COOKIE_AGE_HOURS})
    max_age = int(config.host_cookie_age_hours * 3600)
    assert formatdate(time.time() + max_age, usegmt=True).endswith("GMT")
