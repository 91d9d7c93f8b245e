"""Prometheus text exposition, written by hand."""

from __future__ import annotations

from federation_deploy.redirector.config import parse_config
from federation_deploy.redirector.health_checks import MemberStatus
from federation_deploy.redirector.metrics import Metrics, family, format_value, render_metrics
from federation_deploy.redirector.routing import build_table


def test_family_format_and_escaping() -> None:
    lines = family("x_total", "counter", "Things.", [({"member": 'a"b\\c\nd'}, 3.0),
                                                      ({}, 0.5)])
    assert lines == [
        "# HELP x_total Things.",
        "# TYPE x_total counter",
        'x_total{member="a\\"b\\\\c\\nd"} 3',
        "x_total 0.5",
    ]


def test_format_value() -> None:
    assert format_value(2.0) == "2"
    assert format_value(0.7) == "0.7"
    assert format_value(float("inf")) == "+Inf"
    assert format_value(float("nan")) == "NaN"


def test_render_metrics() -> None:
    config = parse_config({"hosts": {
        "gke": {"url": "https://gke.org", "weight": 3, "prime": True},
        "new": {"url": "https://new.org", "weight": 1, "ramp": True},
    }})
    metrics = Metrics()
    metrics.count_redirect("new", "ramp")
    metrics.count_redirect("new", "cookie")
    metrics.count_reload(False)
    statuses = {"gke": MemberStatus(True, True, "", "", {"Hub": True, "versions": True}),
                "new": MemberStatus(False, True, "versions", "differ", {"versions": False})}
    table = build_table(config.hosts, {"gke"}, config.load_balancer)
    text = render_metrics(metrics, config, statuses, table, {("gke", True): 4})
    for line in [
        'federation_health{member="gke",reason=""} 1',
        'federation_health{member="new",reason="versions"} 0',
        'federation_health_check{member="new",check="versions"} 0',
        'federation_health_checks_total{member="gke",result="healthy"} 4',
        'federation_redirects_total{member="new",reason="ramp"} 1',
        'federation_redirect_count{member="new"} 2',
        'federation_member_weight{member="gke"} 3',
        'federation_member_ramp{member="new"} 1',
        'federation_member_share{member="gke"} 1',
        'federation_member_share{member="new"} 0',
        'federation_config_reloads_total{result="failure"} 1',
        "federation_config_last_reload_ok 0",
    ]:
        assert line in text.splitlines(), line
    # every sample line belongs to a family declared with HELP and TYPE
    declared = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert line.split("{")[0].split(" ")[0] in declared
