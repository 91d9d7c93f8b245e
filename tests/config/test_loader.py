"""Loading federation.yaml into the model, and one test per kind of bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from federation_deploy.config import load_federation
from federation_deploy.errors import ConfigError, UsageError

Edit = Callable[[str, str, str], None]


def problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_federation(config_dir)
    return [str(p) for p in info.value.problems]


def test_repo_config_loads(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    assert list(fed.members) == ["gke", "staging", "ovh2", "gesis", "curvenote"]
    gke = fed.member("gke")
    assert gke.prime and gke.cloud == "gcp" and gke.weight == 60
    assert gke.health_url == "https://gke.mybinder.org/health"
    assert [r.name for r in gke.releases] == [
        "cert-manager", "ingress-nginx", "binderhub", "federation-redirect"]
    assert fed.member("staging").routed is False
    assert fed.member("gesis").deployable is False
    curvenote = fed.member("curvenote")
    assert curvenote.cluster.region == "us-east-2" and curvenote.weight == 0
    assert curvenote.terraform is not None and curvenote.terraform.path == "aws/curvenote"
    assert fed.terraform_version == "1.11.4"
    assert fed.redirector.member == "gke" and fed.redirector.check.failed_period == 300


def test_unknown_member_is_usage_error(config_dir: Path) -> None:
    fed = load_federation(config_dir)
    with pytest.raises(UsageError, match="unknown member 'nope'.*gke"):
        fed.member("nope")


def test_yaml_syntax_error_names_file_and_line(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    weight: 15\n", "    weight: [15\n")
    (msg,) = problems(config_dir)
    assert "federation.yaml:" in msg and "YAML syntax error" in msg


def test_wrong_type_names_key_and_line(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    weight: 15\n", "    weight: fifteen\n")
    (msg,) = problems(config_dir)
    text = (config_dir / "federation.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if "weight: fifteen" in t)
    assert msg.startswith(f"config/federation.yaml:{line}: members.ovh2.weight:") or \
        f"federation.yaml:{line}: members.ovh2.weight: expected a number from 0 to 1,000,000" in msg


def test_negative_weight(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    weight: 15\n", "    weight: -1\n")
    assert any("members.ovh2.weight: expected a number from 0 to 1,000,000" in p
               for p in problems(config_dir))


def test_huge_weights_are_refused_not_turned_into_nan_shares(config_dir: Path,
                                                             edit: Edit) -> None:
    """1e308 twice sums to inf (shares nan); a 400-digit int does not fit a float at all."""
    edit("federation.yaml", "    weight: 15\n", "    weight: 1.0e+308\n")
    assert any("members.ovh2.weight: expected a number from 0 to 1,000,000" in p
               for p in problems(config_dir))
    edit("federation.yaml", "    weight: 1.0e+308\n", "    weight: " + "9" * 400 + "\n")
    assert any("members.ovh2.weight: expected a number from 0 to 1,000,000" in p
               for p in problems(config_dir))


def test_unknown_key(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    weight: 15\n", "    weight: 15\n    wieght: 3\n")
    assert any("members.ovh2.wieght: unknown key" in p for p in problems(config_dir))


def test_missing_required_key(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    cloud: external\n", "")
    assert any("members.gesis.cloud: required key is missing" in p for p in problems(config_dir))


def test_missing_file(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (msg,) = problems(tmp_path / "config")
    assert "federation.yaml" in msg and "file not found" in msg


def pinned(config_dir: Path, chart: str) -> str:
    """The version the repository's config pins for chart (tests never spell it)."""
    return load_federation(config_dir).chart(chart).version


def test_chart_version_must_be_exact(config_dir: Path, edit: Edit) -> None:
    version = pinned(config_dir, "ingress-nginx")
    edit("federation.yaml", f"version: {version}\n", "version: ^4.8\n")
    assert any("charts.ingress-nginx.version: chart versions must be pinned exactly" in p
               for p in problems(config_dir))


def test_unquoted_numeric_version_is_refused(config_dir: Path, edit: Edit) -> None:
    version = pinned(config_dir, "ingress-nginx")
    edit("federation.yaml", f"version: {version}\n", "version: 4.8\n")
    assert any("expected an exact version as a quoted string" in p for p in problems(config_dir))


def test_terraform_stack_must_exist(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "stack: aws/curvenote", "stack: aws/curvenot")
    assert any("members.curvenote.terraform.stack: terraform stack 'aws/curvenot' not found" in p
               for p in problems(config_dir))


def test_exactly_one_prime(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    cloud: kubeconfig\n", "    cloud: kubeconfig\n    prime: true\n")
    assert any("exactly one routed member must be prime (found: gke, ovh2)" in p
               for p in problems(config_dir))


def test_no_prime(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    prime: true\n", "")
    assert any("exactly one routed member must be prime (found: none)" in p
               for p in problems(config_dir))


@pytest.mark.parametrize("url,ok", [
    ("https://x.example.org", True),
    ("http://127.0.0.1:8080", True),
    ("http://localhost:9000", True),
    ("http://x.example.org", False),
    ("ftp://127.0.0.1", False),
    ("x.example.org", False),
])
def test_urls_must_be_https_except_loopback(
    config_dir: Path, edit: Edit, url: str, ok: bool
) -> None:
    edit("federation.yaml", "url: https://ovh2.mybinder.org", f"url: {url}")
    if ok:
        assert load_federation(config_dir).member("ovh2").url == url
    else:
        assert any("members.ovh2.url:" in p for p in problems(config_dir))


def test_bad_reference_redirector_member(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "  member: gke ", "  member: gkee ")
    assert any("redirector.member: unknown member 'gkee'" in p for p in problems(config_dir))


def test_external_member_cannot_have_releases(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    cloud: external\n    weight: 25\n",
         "    cloud: external\n    weight: 25\n    releases: []\n")
    assert any("members.gesis.releases: an external member is never deployed" in p
               for p in problems(config_dir))


def test_every_problem_is_listed(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    weight: 15\n", "    weight: -1\n")
    edit("federation.yaml", "    cloud: external\n", "    cloud: azure\n")
    found = problems(config_dir)
    assert any("members.ovh2.weight" in p for p in found)
    assert any("members.gesis.cloud: expected one of gcp, aws, kubeconfig, external" in p
               for p in found)


def test_values_file_for_unknown_member(config_dir: Path) -> None:
    (config_dir / "values" / "ovh3.yaml").write_text("binderhub: {}\n")
    assert any("values/ovh3.yaml: no member named 'ovh3'" in p for p in problems(config_dir))


def test_values_file_unknown_release(config_dir: Path) -> None:
    path = config_dir / "values" / "ovh2.yaml"
    path.write_text(path.read_text() + "\ncert-manager:\n  installCRDs: false\n")
    lines = path.read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if t.startswith("cert-manager:"))
    assert any(f"values/ovh2.yaml:{line}: cert-manager: not a release of member 'ovh2'" in p
               for p in problems(config_dir))


def test_secrets_values_syntax_error(config_dir: Path) -> None:
    (config_dir / "secrets" / "values" / "gke.yaml").write_text("binderhub:\n  a: 'x\n")
    assert any("secrets/values/gke.yaml" in p and "YAML syntax error" in p
               for p in problems(config_dir))


def test_ramp_block_validated(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    target_weight: 20 ",
         "    ramp:\n      steps: [5, 1]\n      step: 0\n      to_weight: 20\n"
         "    target_weight: 20 ")
    assert any("members.curvenote.ramp.steps: expected a list of increasing" in p
               for p in problems(config_dir))


DRAINED = ("    weight: 15\n",
           "    weight: 0\n    drained:\n      reason: quota exceeded\n"
           "      since: '2024-05-01T12:00:00Z'\n      previous_weight: 15\n")


def test_drained_block_loads(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", *DRAINED)
    drained = load_federation(config_dir).members["ovh2"].drained
    assert drained is not None
    assert (drained.reason, drained.since, drained.previous_weight) == (
        "quota exceeded", "2024-05-01T12:00:00Z", 15.0)


def test_drained_member_with_a_weight_is_refused(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", DRAINED[0], DRAINED[1].replace("weight: 0", "weight: 5", 1))
    found = problems(config_dir)
    line = next(p for p in found if "members.ovh2.weight" in p)
    # file:line:key, and what to do instead
    assert line.startswith("federation.yaml:") or "/federation.yaml:" in line
    assert "a drained member's weight stays 0" in line and "traffic restore ovh2" in line


def test_drained_block_validated(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", DRAINED[0],
         "    weight: 0\n    drained:\n      since: 5\n      previous_weight: -1\n"
         "      why: x\n")
    found = problems(config_dir)
    assert any("members.ovh2.drained.reason: required key is missing" in p for p in found)
    assert any("members.ovh2.drained.since: expected a UTC timestamp" in p for p in found)
    assert any("members.ovh2.drained.previous_weight: expected a number from 0 to 1,000,000" in p
               for p in found)
    assert any("members.ovh2.drained.why: unknown key" in p for p in found)


def test_ramp_policy_reaches_the_redirector_config(config_dir: Path, edit: Edit) -> None:
    """federation.yaml's redirector.ramp_policy is what the redirector's config.json says,
    and the redirector itself accepts the rendered config (it would refuse a bad policy)."""
    from federation_deploy.redirector.config import parse_config
    from federation_deploy.values.redirector_config import redirector_config

    fed = load_federation(config_dir)
    assert fed.redirector.ramp_policy == "sticky"
    edit("federation.yaml", "  ramp_policy: sticky", "  ramp_policy: per-launch")
    rendered = redirector_config(load_federation(config_dir))
    assert rendered["ramp_policy"] == "per-launch"
    assert parse_config(rendered).ramp_policy == "per-launch"
    edit("federation.yaml", "  ramp_policy: per-launch", "  ramp_policy: random")
    assert any("redirector.ramp_policy: expected one of sticky, per-launch" in p
               for p in problems(config_dir))


def test_credentials_in_a_url_are_refused_and_not_printed(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "url: https://ovh2.mybinder.org",
         "url: https://admin:hunter2pw@ovh2.mybinder.org")
    found = problems(config_dir)
    assert any("members.ovh2.url:" in p for p in found), found
    assert not any("hunter2pw" in p for p in found), found


def test_prime_fallback_after_is_read_and_checked(config_dir: Path,
                                                  edit: Callable[[str, str, str], None]) -> None:
    from federation_deploy.values.redirector_config import redirector_config

    assert load_federation(config_dir).redirector.prime_fallback_after == 600
    edit("federation.yaml", "  host_cookie_age_hours: 4\n",
         "  host_cookie_age_hours: 4\n  prime_fallback_after: 120\n")
    fed = load_federation(config_dir)
    assert redirector_config(fed)["prime_fallback_after"] == 120
    edit("federation.yaml", "prime_fallback_after: 120", "prime_fallback_after: 0")
    with pytest.raises(ConfigError) as caught:
        load_federation(config_dir)
    assert "redirector.prime_fallback_after" in str(caught.value)
    assert "a number of seconds > 0" in str(caught.value)
