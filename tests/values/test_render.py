"""Layered values: merge rules, provenance, redaction, explain, the redirector config."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from federation_deploy.config import load_federation
from federation_deploy.redirector.config import parse_config
from federation_deploy.redirector.routing import build_table
from federation_deploy.values.redirector_config import redirector_config
from federation_deploy.values.render import (
    REDACTED,
    Layer,
    SharedMerges,
    merge_layer,
    render_member,
    split_keypath,
)
from federation_deploy.yamlio import loads_located


def merged(*docs: str) -> dict:
    values: dict = {}
    origins: dict = {}
    for i, doc in enumerate(docs):
        merge_layer(values, loads_located(doc, f"l{i}.yaml"),
                    Layer(f"layer{i}", f"l{i}.yaml", None, False), origins)
    return values


def test_dicts_merge_deeply() -> None:
    assert merged("a: {b: 1, c: {d: 2}}", "a: {c: {e: 3}}") == {
        "a": {"b": 1, "c": {"d": 2, "e": 3}}}


def test_lists_replace() -> None:
    assert merged("a: [1, 2, 3]", "a: [4]") == {"a": [4]}


def test_null_is_kept_for_helm_unless_a_later_layer_sets_the_key() -> None:
    # as helm merges -f files: the null reaches helm, which deletes the chart's default
    assert merged("a: {b: 1, c: 2}", "a: {b: null}") == {"a": {"b": None, "c": 2}}
    assert merged("a: {b: 1}", "a: {b: null}", "a: {b: 3}") == {"a": {"b": 3}}
    assert merged("a: {b: 1}", "a: null", "a: {c: 3}") == {"a": {"c": 3}}


def test_scalar_replaced_by_dict_and_back() -> None:
    assert merged("a: 1", "a: {b: 2}") == {"a": {"b": 2}}
    assert merged("a: {b: 2}", "a: 1") == {"a": 1}


def test_split_keypath_escapes_dots() -> None:
    assert split_keypath(r"sa.annotations.eks\.amazonaws\.com/role-arn") == (
        "sa", "annotations", "eks.amazonaws.com/role-arn")


def test_member_layers_and_null_deletion(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    (binderhub,) = render_member(fed, "staging", ["binderhub"])
    bh = binderhub.values["config"]["BinderHub"]
    assert bh["use_registry"] is True  # common
    assert bh["pod_quota"] == 20  # member
    # null: kept, so that helm deletes the chart's default (as `helm -f` of the files would)
    assert binderhub.values["config"]["GitHubRepoProvider"]["banned_specs"] is None


def write_secrets(config_dir: Path) -> None:
    secrets = config_dir / "secrets" / "values"
    (secrets / "common.yaml").write_text(
        "binderhub:\n  config:\n    GitHubRepoProvider:\n      access_token: ghp_common_token\n"
        "  jupyterhub:\n    proxy:\n      secretToken: abcdef0123456789\n")
    (secrets / "gke.yaml").write_text(
        "binderhub:\n  config:\n    GitHubRepoProvider:\n      access_token: ghp_gke_token\n"
        "  registry:\n    password: hunter2-registry\n")


def test_secrets_are_layered_and_redacted(config_dir: Path) -> None:
    write_secrets(config_dir)
    fed = load_federation(config_dir)
    (rendered,) = render_member(fed, "gke", ["binderhub"])
    assert rendered.values["config"]["GitHubRepoProvider"]["access_token"] == "ghp_gke_token"
    red = rendered.redacted()
    assert red["config"]["GitHubRepoProvider"]["access_token"] == REDACTED
    assert red["registry"]["password"] == REDACTED
    assert red["registry"]["url"] == "https://us-central1-docker.pkg.dev"  # not a secret
    assert red["jupyterhub"]["proxy"]["secretToken"] == REDACTED
    assert "hunter2-registry" not in json.dumps(red)
    assert {"ghp_gke_token", "hunter2-registry", "abcdef0123456789"} <= rendered.secret_strings()


def test_plain_value_overriding_a_secret_is_not_redacted(config_dir: Path) -> None:
    write_secrets(config_dir)
    path = config_dir / "values" / "gke.yaml"
    fed = load_federation(config_dir)
    (rendered,) = render_member(fed, "gke", ["binderhub"])
    assert rendered.redacted()["registry"]["url"] == "https://us-central1-docker.pkg.dev"
    assert path.exists()


def test_explain_lists_every_layer_with_file_and_line(config_dir: Path) -> None:
    write_secrets(config_dir)
    fed = load_federation(config_dir)
    (rendered,) = render_member(fed, "gke", ["binderhub"])
    lines = rendered.explain("config.GitHubRepoProvider.access_token")
    assert lines[0] == 'binderhub.config.GitHubRepoProvider.access_token = "<redacted>"'
    assert lines[1] == "  secrets/values/common.yaml:4 (secrets common): set"
    assert lines[2] == "  secrets/values/gke.yaml:4 (secrets member): set"
    shown = rendered.explain("config.GitHubRepoProvider.access_token", show_secrets=True)
    assert shown[0].endswith('"ghp_gke_token"')


def test_explain_deleted_key(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    (rendered,) = render_member(fed, "staging", ["binderhub"])
    lines = rendered.explain("config.GitHubRepoProvider.banned_specs")
    assert lines[0] == ("binderhub.config.GitHubRepoProvider.banned_specs = null (passed to "
                        "helm, which deletes the chart's default)")
    assert lines[1].startswith("  values/common.yaml:")
    assert lines[2].startswith("  values/staging.yaml:") and "deleted (null)" in lines[2]


def test_terraform_outputs_layered_last(config_dir: Path) -> None:
    generated = config_dir / "generated"
    generated.mkdir(exist_ok=True)
    (generated / "curvenote.terraform.json").write_text(json.dumps({
        "registry_url": {"value": "https://1234.dkr.ecr.us-east-2.amazonaws.com",
                         "type": "string", "sensitive": False},
        "image_prefix": {"value": "1234.dkr.ecr.us-east-2.amazonaws.com/binderhub/",
                         "type": "string", "sensitive": False},
        "registry_helper_role_arn": {"value": "arn:aws:iam::1234:role/helper",
                                     "type": "string", "sensitive": False},
    }))
    fed = load_federation(config_dir)
    by_name = {r.release.name: r for r in render_member(fed, "curvenote")}
    bh = by_name["binderhub"]
    assert bh.values["registry"]["url"] == "https://1234.dkr.ecr.us-east-2.amazonaws.com"
    assert bh.values["config"]["BinderHub"]["image_prefix"].startswith("1234.dkr.ecr")
    helper = by_name["registry-helper"].values
    assert helper["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] == \
        "arn:aws:iam::1234:role/helper"
    explained = bh.explain("registry.url")
    assert explained[-1].startswith("  generated/curvenote.terraform.json (terraform outputs)")


def test_redirector_config_matches_federation(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    cfg = redirector_config(fed)
    assert list(cfg["hosts"]) == ["gke", "ovh2", "gesis", "curvenote"]  # staging is not routed
    assert cfg["hosts"]["gke"] == {
        "url": "https://gke.mybinder.org", "weight": 60, "prime": True,
        "health": "https://gke.mybinder.org/health",
        "versions": "https://gke.mybinder.org/versions"}
    assert cfg["check"] == {"period": 10, "jitter": 0.1, "retries": 5, "timeout": 2,
                            "failed_period": 300}
    assert cfg["load_balancer"] == "rendezvous" and cfg["host_cookie_age_hours"] == 4
    (release,) = render_member(fed, "gke", ["federation-redirect"])
    assert release.values["federationRedirect"] == cfg
    assert release.values["ingress"]["hosts"] == ["mybinder.org"]


# curvenote at the first step (1%) of a ramp that ends at weight 30 (its target_weight is 20:
# the ramp's own to_weight is what the redirector gets)
CURVENOTE_RAMPING = ("    weight: 0\n    target_weight: 20 ",
                     "    weight: 1.0101\n    ramp:\n      steps: [1, 5, 100]\n      step: 0\n"
                     "      to_weight: 30.5\n      hold: 30m\n    target_weight: 20 ")


def test_a_ramping_member_publishes_its_final_weight(
    config_dir: Path, edit: Callable[[str, str, str], None]
) -> None:
    edit("federation.yaml", *CURVENOTE_RAMPING)
    cfg = redirector_config(load_federation(config_dir))
    assert cfg["hosts"]["curvenote"] == {
        "url": "https://binder.curvenote.dev", "weight": 1.0101, "ramp": True,
        "final_weight": 30.5,
        "health": "https://binder.curvenote.dev/health",
        "versions": "https://binder.curvenote.dev/versions"}
    # nobody else ramps, so nobody else has a final weight
    assert [n for n, h in cfg["hosts"].items() if "final_weight" in h] == ["curvenote"]
    # and the redirector takes the rendered config: the candidate carries the final weight
    parsed = parse_config(cfg)
    curvenote = parsed.host("curvenote")
    assert curvenote is not None and curvenote.final_weight == 30.5
    table = build_table(parsed.hosts, {h.name for h in parsed.hosts}, parsed.load_balancer)
    assert {c.name: c.final_weight for c in table.candidates} == {
        "gke": None, "ovh2": None, "gesis": None, "curvenote": 30.5}


def test_a_drained_members_paused_ramp_publishes_no_final_weight(
    config_dir: Path, edit: Callable[[str, str, str], None]
) -> None:
    edit("federation.yaml", *CURVENOTE_RAMPING)
    edit("federation.yaml", "    weight: 1.0101\n",
         "    weight: 0\n    drained:\n      reason: outage\n"
         "      since: '2024-05-01T12:00:00Z'\n      previous_weight: 1.0101\n")
    host = redirector_config(load_federation(config_dir))["hosts"]["curvenote"]
    assert host["weight"] == 0 and "ramp" not in host and "final_weight" not in host


def test_external_member_has_nothing_to_render(config_dir: Path) -> None:
    from federation_deploy.errors import UsageError
    with pytest.raises(UsageError, match="external"):
        render_member(load_federation(config_dir), "gesis")


def test_a_shared_common_merge_renders_what_a_fresh_merge_renders(config_dir: Path) -> None:
    # validate renders every member with one SharedMerges: the common layer merged once
    fed = load_federation(config_dir)
    shared: SharedMerges = {}
    for member in (m for m in fed.members.values() if m.deployable):
        for fresh, reused in zip(render_member(fed, member.name),
                                 render_member(fed, member.name, shared=shared), strict=True):
            assert reused.values == fresh.values
            assert reused.origins == fresh.origins
    assert shared  # the common layer was shared
    # a release's values are its own: changing one leaves the next release's alone
    first, second = (render_member(fed, m.name, shared=shared)[0]
                     for m in list(fed.members.values())[:2])
    first.values.clear()
    assert second.values
