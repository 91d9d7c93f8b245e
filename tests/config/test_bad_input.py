"""Bad input through the CLI: every case exits 2 naming file:line:key, hangs nowhere, leaks no
secret value (issue 14)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from federation_deploy.cli.main import cli
from federation_deploy.redirector.config import RedirectorConfigError, parse_config

Edit = Callable[[str, str, str], None]


def run(config_dir: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--config-dir", str(config_dir), *args])
    assert "Traceback" not in result.stderr, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def alias_bomb(levels: int = 12) -> str:
    """A billion laughs: 10**levels values once expanded, a few hundred bytes on disk."""
    lines = ["  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


# -- input that used to hang or crash --------------------------------------------------------


@pytest.mark.slow  # the CLI in a subprocess
def test_alias_bomb_in_a_values_file_is_refused_in_a_subprocess(config_dir: Path) -> None:
    # a subprocess with a timeout: without the cap this grows memory until killed
    (config_dir / "values" / "gke.yaml").write_text("binderhub:\n" + alias_bomb())
    proc = subprocess.run(
        [sys.executable, "-c", "from federation_deploy.cli import main; main()",
         "--config-dir", str(config_dir), "render", "gke"],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "values/gke.yaml:" in proc.stderr and "alias" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_alias_bomb_in_federation_yaml(config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text() + "bomb:\n" + alias_bomb())
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "federation.yaml:" in err and "alias" in err


def test_self_referencing_alias(config_dir: Path) -> None:
    (config_dir / "values" / "gke.yaml").write_text("binderhub: &a\n  x: *a\n")
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "values/gke.yaml:" in err and "itself" in err


def test_small_aliases_still_work(config_dir: Path) -> None:
    (config_dir / "values" / "gke.yaml").write_text(
        "binderhub:\n  a: &x {k: v}\n  b: *x\n")
    code, out, _ = run(config_dir, "render", "gke", "--release", "binderhub")
    assert code == 0 and out.count("k: v") == 2


@pytest.mark.parametrize("relative", ["federation.yaml", "values/gke.yaml"])
def test_non_utf8_bytes_name_file_line_and_byte_offset(config_dir: Path, relative: str) -> None:
    path = config_dir / relative
    raw = path.read_bytes()
    offset = raw.index(b"\n", 10) + 1  # start of the second line
    path.write_bytes(raw[:offset] + b"\xff\xfe" + raw[offset:])
    code, _, err = run(config_dir, "validate")
    line = raw[:offset].count(b"\n") + 1
    assert code == 2, err
    assert f"{relative}:{line}:" in err and f"byte offset {offset}" in err and "0xff" in err


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN"])
def test_non_finite_weights_are_refused(config_dir: Path, edit: Edit, value: str) -> None:
    edit("federation.yaml", "weight: 60", f"weight: {value}")
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "members.gke.weight: expected a number from 0 to 1,000,000" in err
    code, out, _ = run(config_dir, "members")
    assert code == 2 and "nan" not in out


def test_non_finite_numbers_in_values_are_refused(config_dir: Path, edit: Edit) -> None:
    edit("values/gke.yaml", "pod_quota: 300", "pod_quota: .inf")
    code, _, err = run(config_dir, "validate")
    assert code == 2
    assert "values/gke.yaml:" in err and "binderhub.config.BinderHub.pod_quota" in err
    assert "finite" in err


BAD_URLS = [
    "https://user:secret@gke.mybinder.org",
    "https://gke.mybinder.org/a path",
    'https://gke.mybinder.org/"x',
    "https://gkë.mybinder.org",
    "https://gke.mybinder.org:99999",
    "https://gke.mybinder.org/?q=1",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_every_url_the_redirector_refuses_validate_refuses(
        config_dir: Path, edit: Edit, url: str) -> None:
    with pytest.raises(RedirectorConfigError):
        parse_config({"hosts": {"gke": {"url": url, "weight": 1, "prime": True}}})
    edit("federation.yaml", "url: https://gke.mybinder.org", f"url: '{url}'")
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "federation.yaml:" in err and "members.gke.url:" in err, err
    code, _, err = run(config_dir, "redirector", "config")
    assert code == 2


def test_what_validate_accepts_the_redirector_accepts(config_dir: Path) -> None:
    code, out, _ = run(config_dir, "redirector", "config")
    assert code == 0
    import json

    parse_config(json.loads(out))  # raises on any host it would refuse


@pytest.mark.parametrize("stack", ["../../etc", "/etc", "aws/../../../terraform-elsewhere"])
def test_terraform_stack_outside_its_root(config_dir: Path, edit: Edit, stack: str) -> None:
    edit("federation.yaml", "stack: aws/curvenote", f"stack: {stack}")
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "members.curvenote.terraform.stack: expected a path under" in err


@pytest.mark.parametrize("path", ["../../../etc/passwd", "/etc/passwd", "values/../../x.yml"])
def test_kubeconfig_outside_the_secrets_directory(config_dir: Path, edit: Edit,
                                                  path: str) -> None:
    edit("federation.yaml", "kubeconfig: ovh2-kubeconfig.yml", f"kubeconfig: {path}")
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "members.ovh2.cluster.kubeconfig: expected a path under secrets/" in err


def test_two_primes_name_the_line_of_the_second(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    weight: 15\n", "    weight: 15\n    prime: true\n")
    text = (config_dir / "federation.yaml").read_text().splitlines()
    second = [i + 1 for i, line in enumerate(text) if line.strip() == "prime: true"][1]
    code, _, err = run(config_dir, "validate")
    assert code == 2
    assert f"federation.yaml:{second}: members.ovh2.prime: exactly one routed member" in err


# -- secrets in config errors ----------------------------------------------------------------

MARK = "ghp_MRKsecretTokenValue42"


def test_config_errors_never_echo_a_value_from_a_secrets_file(config_dir: Path) -> None:
    secrets = config_dir / "secrets" / "values" / "gke.yaml"
    secrets.write_text(f"binderhub: {MARK}\n")
    code, out, err = run(config_dir, "validate")
    assert code == 2 and "secrets/values/gke.yaml:1: binderhub:" in err
    assert "a secret value" in err and "MRK" not in out + err
    secrets.write_text("binderhub:\n  config:\n    x: .inf\n")
    code, out, err = run(config_dir, "validate")
    assert code == 2 and "binderhub.config.x: expected a finite number, got a secret value" in err
    # the same value in a non-secret file is shown: it helps and hides nothing
    (config_dir / "values" / "gke.yaml").write_text(f"binderhub: {MARK}\n")
    secrets.unlink()
    code, _, err = run(config_dir, "validate")
    assert code == 2 and MARK in err


# -- files with secrets ----------------------------------------------------------------------


def test_render_output_dir_never_writes_into_an_existing_0644_file(config_dir: Path,
                                                                    tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    existing = out_dir / "binderhub.yaml"
    existing.write_text("old\n")
    existing.chmod(0o644)
    # a second name for the old file: if render wrote into it (then chmod-ed), this would see
    # the new content through a 0644 inode
    witness = tmp_path / "witness"
    os.link(existing, witness)
    code, _, err = run(config_dir, "render", "gke", "--release", "binderhub",
                       "--output-dir", str(out_dir))
    assert code == 0, err
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600
    assert witness.read_text() == "old\n" and "binderhub" in existing.read_text()
    assert [p.name for p in out_dir.iterdir()] == ["binderhub.yaml"]  # no temp file left


# -- terraform outputs that were never saved -------------------------------------------------


def test_render_warns_and_deploy_refuses_without_terraform_outputs(config_dir: Path) -> None:
    generated = config_dir / "generated" / "curvenote.terraform.json"
    assert not generated.exists()
    code, out, err = run(config_dir, "render", "curvenote", "--release", "binderhub")
    assert code == 0 and "REPLACED-BY-TERRAFORM" in out
    assert "warning: config/generated/curvenote.terraform.json is missing" in err
    assert "federation-deploy terraform apply curvenote" in err
    code, _, err = run(config_dir, "render", "curvenote", "--explain",
                       "binderhub.config.BinderHub.image_prefix")
    assert code == 0 and "generated/curvenote.terraform.json is missing" in err
    code, _, err = run(config_dir, "deploy", "curvenote", "--yes")
    assert code == 2
    assert "refusing to deploy curvenote: config/generated/curvenote.terraform.json" in err
    assert "terraform apply curvenote" in err
    # a release that maps no output is not held up by it
    code, _, err = run(config_dir, "render", "curvenote", "--release", "cert-manager")
    assert code == 0 and "warning" not in err


def test_render_with_saved_outputs_does_not_warn(config_dir: Path) -> None:
    import json

    from federation_deploy.config import load_federation

    stack = load_federation(config_dir).member("curvenote").terraform
    assert stack is not None and "image_prefix" in stack.outputs
    generated = config_dir / "generated" / "curvenote.terraform.json"
    generated.parent.mkdir(exist_ok=True)
    generated.write_text(json.dumps({n: {"value": f"v-{n}", "sensitive": False}
                                     for n in stack.outputs}))
    code, out, err = run(config_dir, "render", "curvenote")
    assert code == 0 and "warning" not in err and "v-image_prefix" in out
    generated.write_text(json.dumps({n: {"value": f"v-{n}", "sensitive": False}
                                     for n in stack.outputs if n != "image_prefix"}))
    code, _, err = run(config_dir, "render", "curvenote")
    assert code == 0 and "generated/curvenote.terraform.json lacks image_prefix:" in err


def test_non_utf8_terraform_file(config_dir: Path) -> None:
    tf_file = config_dir.parent / "terraform" / "aws" / "curvenote" / "main.tf"
    tf_file.write_bytes(b"# \xe9t\xe9\n" + tf_file.read_bytes())
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "curvenote/main.tf:1:" in err and "byte offset 2" in err


@pytest.mark.parametrize(("url", "why"), [
    ("http://prometheus.mybinder.org", "expected an https URL (http only on 127.0.0.1"),
    ("https://user:secret@prometheus.mybinder.org", "unexpected characters in URL"),
    ("prometheus.mybinder.org", "expected an http(s) URL"),
])
def test_the_federations_prometheus_url_is_checked_like_the_other_urls(
        config_dir: Path, edit: Edit, url: str, why: str) -> None:
    edit("federation.yaml", "redirector:\n", f"redirector:\n  prometheus_url: '{url}'\n")
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "redirector.prometheus_url:" in err and why in err, err
    assert "secret" not in err


def test_a_local_prometheus_url_is_accepted(config_dir: Path, edit: Edit) -> None:
    from federation_deploy.config import load_federation

    edit("federation.yaml", "redirector:\n",
         "redirector:\n  prometheus_url: http://127.0.0.1:9090/\n")
    assert load_federation(config_dir).redirector.prometheus_url == "http://127.0.0.1:9090"


# -- issue 29 item 4: federation.yaml is read as helm reads YAML; sexagesimal is refused --------


@pytest.mark.parametrize("value", ["1:20", "-1:30", "12:30", "1:00:00"])
def test_a_sexagesimal_weight_is_refused_not_read_as_a_number(
        config_dir: Path, edit: Edit, value: str) -> None:
    edit("federation.yaml", "weight: 60", f"weight: {value}")
    code, _, err = run(config_dir, "validate")
    assert code == 2
    assert "federation.yaml:" in err and "members.gke.weight: expected a number" in err
    assert "sexagesimal" in err


def test_values_with_yaml11_scalars_render_as_helm_reads_them(config_dir: Path,
                                                              edit: Edit) -> None:
    edit("values/gke.yaml", "pod_quota: 300",
         "pod_quota: 300\n      at: 12:30\n      neg: -1:30\n      yes_: y\n      no_: n\n"
         "      exp: 1e+3\n      octal: 0o17")
    code, out, err = run(config_dir, "render", "gke", "--explain",
                         "binderhub.config.BinderHub")
    assert code == 0, err
    assert '"at": "12:30"' in out and '"neg": "-1:30"' in out
    assert '"yes_": true' in out and '"no_": false' in out
    assert '"exp": 1000.0' in out and '"octal": 15' in out


# -- issue 29 item 5: validate refuses what the redirector refuses (one check) ----------------


@pytest.mark.parametrize("url", ["https://gke.mybinder.org/", "https://GKE.mybinder.org",
                                 "HTTPS://gke.MyBinder.org//", " https://gke.mybinder.org"])
def test_two_members_with_the_same_url_are_refused_by_validate_and_redirector_config(
        config_dir: Path, edit: Edit, url: str) -> None:
    edit("federation.yaml", "url: https://ovh2.mybinder.org", f"url: '{url}'")
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "federation.yaml:" in err and "members.ovh2.url" in err, err
    assert "gke" in err
    code, out, err = run(config_dir, "redirector", "config")
    assert code == 2 and out == "" and "members.ovh2.url" in err


def test_the_redirector_refuses_hosts_with_the_same_url_modulo_slash_and_case() -> None:
    with pytest.raises(RedirectorConfigError, match="also the url of 'a'"):
        parse_config({"hosts": {"a": {"url": "https://x.org", "weight": 1, "prime": True},
                                "b": {"url": "https://X.org/", "weight": 1}}})


def test_any_redirector_refusal_of_the_generated_config_is_a_config_error(
        config_dir: Path, edit: Edit, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the redirector's loader refuses, validate and `redirector config` refuse too:
    they run that loader on the config they generate (here a made-up refusal, so that a rule
    added to the redirector later is covered without a second copy on the deploy side)."""
    from federation_deploy.redirector import config as redirector_config

    real = redirector_config.parse_config

    def stricter(data: object) -> object:
        assert isinstance(data, dict)
        if data["hosts"]["gke"]["weight"] == 60:
            raise RedirectorConfigError("hosts.gke.weight", "a made-up refusal")
        return real(data)

    monkeypatch.setattr(redirector_config, "parse_config", stricter)
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "members.gke.weight" in err and "a made-up refusal" in err
    code, _, err = run(config_dir, "redirector", "config")
    assert code == 2 and "a made-up refusal" in err


# -- issue 29 minors: a release name helm refuses; a generation helm would round ------------


@pytest.mark.parametrize("length", [53, 54, 60])
def test_a_release_name_is_refused_where_helm_refuses_it(
        config_dir: Path, edit: Edit, helm_binary: str, tmp_path: Path, length: int) -> None:
    name = "r" * length
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: c\nversion: 0.1.0\n")
    helm = subprocess.run([helm_binary, "template", name, str(chart)], capture_output=True,
                          text=True)
    edit("federation.yaml", "      - name: cert-manager\n        chart: cert-manager\n",
         f"      - name: cert-manager\n        chart: cert-manager\n        release: {name}\n")
    code, _, err = run(config_dir, "validate")
    if helm.returncode == 0:
        assert code == 0, err
    else:
        assert "must not be longer than 53" in helm.stderr
        assert code == 2 and "federation.yaml:" in err
        assert "members.gke.releases[0].release: expected a helm release name" in err
        assert "at most 53 characters" in err


@pytest.mark.parametrize("generation, valid", [(2**53 - 1, True), (2**53, False),
                                               (2**53 + 1, False), (10**20, False)])
def test_a_generation_is_bounded_where_helm_stays_exact(
        config_dir: Path, edit: Edit, helm_binary: str, generation: int, valid: bool) -> None:
    """helm reads values as float64: 2**53 + 1 came back as 2**53 from the published chart."""
    edit("federation.yaml", "generation: 0", f"generation: {generation}")
    code, out, err = run(config_dir, "redirector", "config")
    if not valid:
        assert code == 2 and "federation.yaml:" in err and "generation: expected an integer" \
            in err
        with pytest.raises(RedirectorConfigError, match="generation"):
            parse_config({"generation": generation,
                          "hosts": {"a": {"url": "https://a.org", "weight": 1, "prime": True}}})
        return
    assert code == 0, err
    import json

    import federation_deploy

    chart = Path(federation_deploy.__file__).parent / "charts" / "federation-redirect"
    values = json.dumps({"federationRedirect": json.loads(out),
                         "ingress": {"hosts": ["binder.example.org"]}})
    rendered = subprocess.run([helm_binary, "template", "r", str(chart), "-f", "-"],
                              input=values, capture_output=True, text=True, check=True).stdout
    assert f'"generation":{generation}' in rendered.replace(" ", "")


@pytest.mark.parametrize(("cluster", "problem"), [
    ("binderhub", True), ("binderhub-west", True), ("binderhubwest", False),
    ("binderhub-west\n      role_arn: arn:aws:iam::123456789012:role/deployer", True),
])
def test_two_aws_members_whose_iam_names_overlap(config_dir: Path, edit: Edit, cluster: str,
                                                 problem: bool) -> None:
    # curvenote's roles are binderhub-*, and its deploy role may manage role/binderhub-*:
    # a member named binderhub or binderhub-<anything> in the same account collides
    edit("federation.yaml", "  curvenote:\n", "  west:\n    url: https://west.example.org\n"
         "    cloud: aws\n    weight: 0\n    cluster:\n      region: us-west-2\n"
         f"      name: {cluster}\n  curvenote:\n")
    code, _, err = run(config_dir, "validate")
    if problem:
        assert code == 2 and "members.curvenote.cluster.name: cluster name 'binderhub' " \
            f"overlaps member west's {cluster.split()[0]!r}" in err
    else:
        assert "overlaps" not in err


# -- durations beyond the bound (issue 29, item 7) --------------------------------------------


@pytest.mark.parametrize(("key", "old", "new"), [
    ("hold", "    target_weight: 20", "    target_weight: 20\n    ramp:\n      steps: [1, 5]\n"
     "      step: 0\n      to_weight: 20\n      hold: 99999999999h"),
    ("period", "    period: ", "    period: 1e12  # "),
])
def test_a_duration_beyond_the_bound_is_refused_with_file_line_key(
        config_dir: Path, edit: Edit, key: str, old: str, new: str) -> None:
    edit("federation.yaml", old, new)
    code, _, err = run(config_dir, "validate")
    assert code == 2, err
    assert "federation.yaml:" in err and key in err and "at most" in err and "30 days" in err
    assert "Traceback" not in err


# issue 29 re-trial, item 2: numbers validate passed that failed where they were used (a
# host_cookie_age_hours of 10^9 made every /build answer 500; a notifications timeout of 10^10
# raised OverflowError); the bounds are the redirector's (one bound, shared)
@pytest.mark.parametrize(("old", "new", "fragment"), [
    ("host_cookie_age_hours: 4", "host_cookie_age_hours: 1000000000",
     "redirector.host_cookie_age_hours: expected a number of hours > 0, at most 87600"),
    ("    retries: 5", "    retries: 1000000000000", "redirector.check.retries: expected an "
     "integer from 1 to 100"),
    ("    retries: 5", "    retries: 0", "redirector.check.retries: expected an integer from 1"),
    ("  pod_headroom: 10", "  pod_headroom: 100000000000000000000",
     "redirector.pod_headroom: expected an integer from 0 to 100,000"),
    ("weight: 60", "weight: 0." + "0" * 299 + "1",
     "members.gke.weight: expected a number from 0 to 1,000,000 (if not 0, at least 0.0001)"),
    ("weight: 60", "weight: 1e-300", "members.gke.weight: expected a number from 0"),
])
def test_numbers_are_bounded_as_the_redirector_bounds_them(
        config_dir: Path, edit: Edit, old: str, new: str, fragment: str) -> None:
    edit("federation.yaml", old, new)
    code, _, err = run(config_dir, "validate")
    assert code == 2 and fragment in err, err
    assert "0" * 100 not in err  # the 300 digits are not quoted back


def test_a_huge_notifications_timeout_is_refused(config_dir: Path) -> None:
    path = config_dir / "federation.yaml"
    path.write_text(path.read_text() + "notifications:\n  timeout: 10000000000\n")
    code, _, err = run(config_dir, "validate")
    assert code == 2 and "notifications.timeout: expected a number of seconds > 0, at most" \
        in err, err


def test_what_validate_passes_the_redirector_takes(config_dir: Path, edit: Edit) -> None:
    # the largest values validate accepts make a config.json the redirector accepts
    from federation_deploy.redirector.config import (
        MAX_CHECK_RETRIES,
        MAX_HOST_COOKIE_AGE_HOURS,
        MAX_POD_HEADROOM,
    )
    edit("federation.yaml", "    retries: 5", f"    retries: {MAX_CHECK_RETRIES}")
    edit("federation.yaml", "  pod_headroom: 10", f"  pod_headroom: {MAX_POD_HEADROOM}")
    edit("federation.yaml", "host_cookie_age_hours: 4",
         f"host_cookie_age_hours: {MAX_HOST_COOKIE_AGE_HOURS}")
    edit("federation.yaml", "weight: 60", "weight: 0.0001")
    code, out, err = run(config_dir, "redirector", "config")
    assert code == 0, err
    parse_config(json.loads(out))


def test_tagged_values_render_as_json_without_a_traceback(config_dir: Path) -> None:
    # issue 29 re-trial, item 5: !!binary made render's JSON crash (bytes), !!omap validate
    path = config_dir / "values" / "gke.yaml"
    path.write_text(path.read_text().replace(
        "\nbinderhub:\n", "\nbinderhub:\n  tagged:\n    bin: !!binary aGVsbG8=\n"
        "    om: !!omap [{a: 1}, {b: 2}]\n    s: !!set {x, z}\n", 1))
    code, _, err = run(config_dir, "validate")
    assert code == 0, err
    code, out, err = run(config_dir, "render", "gke")
    assert code == 0, err
    assert "bin: hello" in out and "om:\n" in out, out


def test_a_merge_key_with_an_override_in_federation_yaml(config_dir: Path, edit: Edit) -> None:
    # issue 29 re-trial, item 6: `<<: *base` then an explicit key was "duplicate key"
    edit("federation.yaml", "  check:\n", "  check:\n    <<: {period: 99, retries: 7}\n")
    edit("federation.yaml", "    period: 10 ", "    period: 20 ")
    code, out, err = run(config_dir, "redirector", "config")
    assert code == 0, err
    check = json.loads(out)["check"]
    assert check["period"] == 20 and check["retries"] == 5  # the explicit keys win


# issue 29 re-trial, item 7: names YAML reads as non-strings were silently renamed (`no:` is
# the member "false", `010:` the member "8")
@pytest.mark.parametrize(("written", "read"), [("no", "false"), ("on", "true"), ("010", "8"),
                                               ("1e3", "1000"), ("Off", "false")])
def test_a_member_name_yaml_reads_as_a_non_string_is_refused(
        config_dir: Path, written: str, read: str) -> None:
    path = config_dir / "federation.yaml"
    text = path.read_text()
    line = text[:text.index("\n  gesis:")].count("\n") + 2
    path.write_text(text.replace("\n  gesis:", f"\n  {written}:", 1))
    code, _, err = run(config_dir, "validate")
    assert code == 2
    assert (f"federation.yaml:{line}: members.{written}: the member name {written!r} is read "
            f"by YAML as {read!r}, not as a name: quote it") in err, err
    assert "Traceback" not in err


def test_a_quoted_name_is_a_name(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "\n  gesis:", '\n  "no":')
    code, _, err = run(config_dir, "validate")
    assert "read by YAML as" not in err


def test_a_chart_key_and_a_release_name_read_as_non_strings_are_refused(
        config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "\ncharts:\n  binderhub:", "\ncharts:\n  yes:")
    edit("federation.yaml", "      - name: cert-manager", "      - name: off")
    code, _, err = run(config_dir, "validate")
    assert code == 2
    assert "charts.yes: the chart name 'yes' is read by YAML as 'true'" in err, err
    assert ".name: expected a release name" in err and "got bool False (YAML reads an " \
        "unquoted yes/no/on/off/y/n or a number so: quote it)" in err, err


def test_a_release_key_in_a_values_file_read_as_a_non_string_is_refused(
        config_dir: Path) -> None:
    path = config_dir / "values" / "gke.yaml"
    path.write_text(path.read_text() + "on:\n  x: 1\n")
    code, _, err = run(config_dir, "validate")
    assert code == 2
    assert "values/gke.yaml:" in err and "the release name 'on' is read by YAML as 'true'" \
        in err, err
