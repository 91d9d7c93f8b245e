"""Values files listed in federation.yaml (globs, optional, {member}, whole or per release),
local chart directories, crds and hooks: what the loader accepts and how it says no."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from federation_deploy.config import load_federation
from federation_deploy.errors import ConfigError
from federation_deploy.values.render import render_member

FEDERATION = """\
redirector: {{host: binder.example.org, member: one, release: app}}
members:
  one:
    url: https://one.example.org
    cloud: kubeconfig
    prime: true
    weight: 1
    cluster: {{kubeconfig: one-kubeconfig.yaml}}
{member_values}    releases:
      - name: app
        chart: ./chart
        namespace: one
{release_values}"""


@pytest.fixture(autouse=True)
def _restore_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path.cwd())  # undone after each test, whatever repo() changed


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def repo(tmp_path: Path, member_values: str = "", release_values: str = "",
         **files: str) -> Path:
    os.chdir(tmp_path)  # messages name files relative to the working directory
    chart = {"chart/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n"}
    text = FEDERATION.format(member_values=member_values, release_values=release_values)
    return write(tmp_path, {"federation.yaml": text, **chart,
                            **{k.replace("__", "/"): v for k, v in files.items()}})


def problems(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_federation(root)
    return [str(p) for p in info.value.problems]


def app_values(root: Path) -> dict[str, object]:
    (rendered,) = render_member(load_federation(root), "one")
    rendered.values.pop("federationRedirect")  # generated: app is the redirector's release
    return rendered.values


def test_release_files_are_whole_in_order_with_sorted_globs(tmp_path: Path) -> None:
    root = repo(tmp_path, release_values="""\
        values:
          - common/*.yaml
          - "{member}.yaml"
          - {path: "absent-{namespace}.yaml", optional: true}
""", common__b_second="x: b\nonly_b: 1\n", common__a_first="x: a\nonly_a: 1\n",
        **{"common__b.yaml": "x: b\nlist: [1]\n", "common__a.yaml": "x: a\nlist: [0, 0]\n",
           "one.yaml": "list: [2]\nnested: {k: v}\n"})
    # b after a (sorted), the member's file last; lists replace; files are not keyed
    assert app_values(root) == {"x": "b", "list": [2], "nested": {"k": "v"}}


def test_a_missing_file_is_an_error_unless_optional(tmp_path: Path) -> None:
    root = repo(tmp_path, release_values="""\
        values:
          - missing/*.yaml
          - {path: "secret-{member}.yaml", secret: true}
""")
    found = problems(root)
    assert len(found) == 1
    assert found[0].startswith("federation.yaml:14: values[0]: missing/*.yaml matches no file")
    # a secret file may be absent from a clone (forks): a warning, and --without-secrets works
    (root / "missing").mkdir()
    (root / "missing" / "x.yaml").write_text("a: 1\n")
    fed = load_federation(root)
    assert any("secret-one.yaml matches no file" in w for w in fed.warnings)
    with pytest.raises(ConfigError, match="secret-one.yaml matches no file"):
        render_member(fed, "one")
    (rendered,) = render_member(fed, "one", without_secrets=True)
    assert rendered.values["a"] == 1


def test_member_files_hold_a_section_per_release(tmp_path: Path) -> None:
    root = repo(tmp_path, member_values="""\
    values:
      - shared.yaml
      - {path: "secrets/{member}.yaml", secret: true}
""", **{"shared.yaml": "app: {a: 1, b: 1}\n", "secrets/one.yaml": "app: {b: 2}\n"})
    (rendered,) = render_member(load_federation(root), "one")
    assert (rendered.values["a"], rendered.values["b"]) == (1, 2)
    assert (rendered.redacted()["a"], rendered.redacted()["b"]) == (1, "<redacted>")
    (root / "shared.yaml").write_text("ap: {a: 1}\n")
    assert any("shared.yaml:1: ap: not a release of member 'one'" in p for p in problems(root))


def test_bad_entries_name_file_line_and_key(tmp_path: Path) -> None:
    root = repo(tmp_path, member_values="""\
    values:
      - {path: "a-{namespace}.yaml"}
      - 7
      - {path: x.yaml, secret: maybe, colour: red}
""")
    found = problems(root)
    assert "federation.yaml:10: members.one.values[0]: unknown placeholder {namespace} " \
           "(known here: {member})" in found
    assert "federation.yaml:11: members.one.values[1]: expected a path (string) or a " \
           "mapping {path, secret, optional}, got 7" in found
    assert any(p.startswith("federation.yaml:12: members.one.values[2].colour: unknown key")
               for p in found)
    assert any(p.startswith("federation.yaml:12: members.one.values[2].secret: expected true "
                            "or false") for p in found)


@pytest.mark.parametrize("files, message", [
    ({}, "members.one.releases[0].chart: chart directory ./chart not found"),
    ({"chart/values.yaml": "{}\n"}, "members.one.releases[0].chart: ./chart has no Chart.yaml"),
    ({"chart/Chart.yaml": "name: app\n"}, "./chart/Chart.yaml: missing apiVersion, version"),
    ({"chart/Chart.yaml": "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n"
      "  - {name: dep, version: 1.0.0, repository: '@stable'}\n"},
     "dependency dep names a repository of your helm config (@stable)"),
])
def test_local_chart_directories_are_checked(tmp_path: Path, files: dict[str, str],
                                             message: str) -> None:
    root = repo(tmp_path)
    shutil.rmtree(root / "chart")
    if files:
        write(root, files)
    assert any(message in p for p in problems(root)), problems(root)


def test_crds_hooks_and_live_names(tmp_path: Path) -> None:
    root = repo(tmp_path, release_values="""\
        release: live
        crds: crds/missing.yaml
      - name: other
        chart: ./chart
        namespace: one
        release: live
""", member_values="""\
    hooks:
      - {name: verify, after: auth, argv: ["true"]}
      - {name: ok, after: later, argv: []}
""")
    found = problems(root)
    assert any("members.one.releases[0].crds: expected a URL or a file relative to the "
               "config directory; crds/missing.yaml not found" in p for p in found)
    assert any("members.one.hooks[0].name: a hook cannot be called like a stage" in p
               for p in found)
    assert any("members.one.hooks[1].after: expected one of auth, releases, rollout, verify"
               in p for p in found)
    assert any("members.one.hooks[1].argv: expected a list of strings" in p for p in found)
    # the same helm release twice in one namespace (CRDs by URL are fine)
    text = (root / "federation.yaml").read_text()
    (root / "federation.yaml").write_text(
        text.replace("crds/missing.yaml", "https://example.org/crds.yaml"))
    assert any("members.one.releases[1].release: helm release 'live' in namespace 'one' is "
               "also release 'app'" in p for p in problems(root))


@pytest.mark.parametrize("release_values, key", [
    ("        values: [../outside.yaml]\n", "members.one.releases[0].values[0]"),
    ("        crds: ../outside.yaml\n", "members.one.releases[0].crds"),
])
def test_files_outside_the_config_directory_are_refused(tmp_path: Path, release_values: str,
                                                        key: str) -> None:
    """Config names files below its directory: a values entry or a crds file reaching out of
    it (../) is refused with file:line:key and never read (issue 14)."""
    config = tmp_path / "config"
    config.mkdir()
    (tmp_path / "outside.yaml").write_text("stolen: OUTSIDE-FILE-CONTENT\n")
    root = repo(config, release_values=release_values)
    found = problems(root)
    assert any(key in p and "inside" in p for p in found), found
    assert not any("OUTSIDE-FILE-CONTENT" in p for p in found)


def test_a_chart_directory_or_stand_in_outside_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    write(tmp_path, {"elsewhere/Chart.yaml": "apiVersion: v2\nname: x\nversion: 0.1.0\n",
                     "stand-in.yaml": "a: 1\n"})
    root = repo(config)
    text = (root / "federation.yaml").read_text().replace("chart: ./chart",
                                                         "chart: ../elsewhere")
    (root / "federation.yaml").write_text("secrets: {stand_in: ../stand-in.yaml}\n" + text)
    found = problems(root)
    assert any("members.one.releases[0].chart: expected a chart directory inside the config "
               "directory" in p for p in found), found
    assert any("secrets.stand_in: expected a file inside the config directory" in p
               for p in found), found


def test_a_values_file_of_a_member_without_releases_says_so(config_dir: Path) -> None:
    """Not "(releases: )": a member with no releases yet (a new one) is told as much."""
    with (config_dir / "federation.yaml").open("a") as federation:
        federation.write("\n  bare:\n    url: https://binder.bare.example.org\n    cloud: aws\n"
                         "    weight: 0\n    kubernetes_version: \"1.29\"\n"
                         "    cluster: {region: eu-west-1, name: bare}\n")
    (config_dir / "values" / "bare.yaml").write_text("binderhub: {}\n")
    with pytest.raises(ConfigError) as caught:
        load_federation(config_dir)
    (problem,) = [str(p) for p in caught.value.problems]
    assert problem.endswith("bare.yaml:1: binderhub: not a release of member 'bare' "
                            "(it has no releases)"), problem


# -- issue 29 item 2: links are resolved, then confined; a secret file is secret wherever -----


def test_a_link_from_a_plain_glob_to_another_members_secrets_is_refused(tmp_path: Path) -> None:
    """The issue's case: config/common/zz.yaml -> ../../secrets/config/prod.yaml, picked up by
    the plain glob config/common/*.yaml, rendered another member's secrets in clear."""
    root = repo(tmp_path, release_values="""\
        values:
          - config/common/*.yaml
          - {path: secrets/config/one.yaml, secret: true}
""")
    write(root, {"config/common/a.yaml": "plain: 1\n", "secrets/config/one.yaml": "k: ONE\n",
                 "secrets/config/prod.yaml": "apikey: PROD-LIVE-SECRET\n"})
    (root / "config" / "common" / "zz.yaml").symlink_to("../../secrets/config/prod.yaml")
    found = problems(root)
    assert any("federation.yaml:" in p and "values[0]:" in p
               and "config/common/zz.yaml is a secret file (secrets/config/prod.yaml" in p
               for p in found), found
    assert not any("PROD-LIVE-SECRET" in p for p in found)


def test_a_link_to_a_file_a_secret_entry_lists_is_secret_too(tmp_path: Path) -> None:
    root = repo(tmp_path, release_values="""\
        values:
          - {path: private/keys.yaml, secret: true}
          - config/keys-again.yaml
""")
    write(root, {"private/keys.yaml": "apikey: KEY-VALUE\n", "config/x.yaml": "a: 1\n"})
    (root / "config" / "keys-again.yaml").symlink_to("../private/keys.yaml")
    found = problems(root)
    assert any("values[1]" in p and "is a secret file (private/keys.yaml" in p
               for p in found), found


@pytest.mark.parametrize("link, pattern", [
    ("etc", "etc/*.conf"),  # a linked directory to /etc and a glob
    ("outside", "outside/*.yaml"),  # a linked directory to another repository
    ("one.yaml", "one.yaml"),  # a linked file
    ("loop.yaml", "loop.yaml"),  # a link to itself
])
def test_links_out_of_the_config_directory_are_refused(tmp_path: Path, link: str,
                                                      pattern: str) -> None:
    config = tmp_path / "config"
    config.mkdir()
    write(tmp_path, {"elsewhere/one.yaml": "stolen: OUTSIDE-CONTENT\n"})
    root = repo(config, release_values=f"        values: ['{pattern}']\n")
    target = {"etc": Path("/etc"), "outside": tmp_path / "elsewhere",
              "one.yaml": tmp_path / "elsewhere" / "one.yaml", "loop.yaml": root / "loop.yaml"}
    (root / link).symlink_to(target[link])
    found = problems(root)
    if link == "loop.yaml":  # a loop is no file: nothing matches
        assert any("values[0]" in p and "matches no file" in p for p in found), found
        return
    assert any("federation.yaml:" in p and "values[0]:" in p
               and "outside the config directory" in p for p in found), found
    assert not any("OUTSIDE-CONTENT" in p for p in found)


def test_a_default_layer_linked_into_secrets_or_out_is_refused(config_dir: Path,
                                                              tmp_path: Path) -> None:
    from federation_deploy.commands.validate import validate

    secret = config_dir / "secrets" / "values" / "gke.yaml"
    secret.write_text("binderhub:\n  config: {token: GKE-SECRET-TOKEN}\n")
    plain = config_dir / "values" / "common.yaml"
    plain.unlink()
    plain.symlink_to("../secrets/values/gke.yaml")
    with pytest.raises(ConfigError) as info:
        validate(config_dir)
    assert "values/common.yaml is a secret file (secrets/values/gke.yaml" in str(info.value)
    assert "GKE-SECRET-TOKEN" not in str(info.value)
    plain.unlink()
    (tmp_path / "stolen.yaml").write_text("binderhub: {}\n")
    plain.symlink_to(tmp_path / "stolen.yaml")
    with pytest.raises(ConfigError, match="outside the config directory"):
        validate(config_dir)


def test_a_kubeconfig_linked_out_of_secrets_is_refused(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "secrets").mkdir()
    (root / "secrets" / "one-kubeconfig.yaml").symlink_to("/etc/passwd")
    found = problems(root)
    assert any("members.one.cluster.kubeconfig: expected a path under secrets/" in p
               for p in found), found


def test_a_stand_in_linked_to_a_real_secret_file_is_refused(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root, {"secrets/real.yaml": "app: {token: REAL-TOKEN}\n"})
    (root / "stand-in.yaml").symlink_to("secrets/real.yaml")
    text = (root / "federation.yaml").read_text()
    (root / "federation.yaml").write_text("secrets: {stand_in: stand-in.yaml}\n" + text)
    found = problems(root)
    assert any("secrets.stand_in: stand-in.yaml is (links resolved) a file under secrets/" in p
               for p in found), found
