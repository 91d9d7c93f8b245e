"""review.changes: values compared key by key; a secret key is never carried with its value."""

from __future__ import annotations

from pathlib import Path

from federation_deploy.config import load_federation
from federation_deploy.review.changes import (
    MemberChange,
    Plan,
    dotted,
    federation_key_changes,
    leaves,
    terraform_files,
    values_changes,
)
from federation_deploy.values.render import render_member


def test_leaves_keep_lists_whole_and_empty_maps() -> None:
    assert dict(leaves({"a": {"b": [1, 2], "c": {}}, "d": None})) == {
        ("a", "b"): [1, 2], ("a", "c"): {}, ("d",): None}


def test_dotted_escapes_dots_in_keys() -> None:
    assert dotted(("annotations", "eks.amazonaws.com/role-arn")) == \
        "annotations.eks\\.amazonaws\\.com/role-arn"


def test_secret_keys_carry_no_value(config_dir: Path) -> None:
    secret = config_dir / "secrets" / "values" / "gke.yaml"
    secret.write_text("binderhub:\n  registry:\n    password: one-secret-value\n")
    before = render_member(load_federation(config_dir), "gke", ["binderhub"])[0]
    secret.write_text("binderhub:\n  registry:\n    password: another-secret-value\n"
                      "  extra: {token: a-new-secret}\n")
    after = render_member(load_federation(config_dir), "gke", ["binderhub"])[0]
    changes = {c.path: c for c in values_changes(before, after)}
    assert changes["registry.password"].kind == "changed"
    assert changes["extra.token"].kind == "added"
    for change in (changes["registry.password"], changes["extra.token"]):
        assert change.secret and change.before is None and change.after is None
    # a plain key beside the secret one stays plain, and unchanged plain keys are left out
    assert "registry.url" not in changes and not changes.keys() - {
        "registry.password", "extra.token"}


def test_a_key_secret_on_one_side_only_stays_hidden(config_dir: Path) -> None:
    before = render_member(load_federation(config_dir), "gke", ["binderhub"])[0]
    (config_dir / "secrets" / "values" / "gke.yaml").write_text(
        "binderhub:\n  config:\n    BinderHub:\n      pod_quota: 12345\n")
    after = render_member(load_federation(config_dir), "gke", ["binderhub"])[0]
    (change,) = values_changes(before, after)
    assert change.path == "config.BinderHub.pod_quota" and change.secret
    assert change.kind == "changed" and change.before is None and change.after is None


def test_terraform_files_of_a_stack_and_its_clouds_modules() -> None:
    changed = ["terraform/aws/curvenote/main.tf", "terraform/aws/modules/eks/main.tf",
               "terraform/gcp/prod/main.tf", "config/values/gke.yaml"]
    assert terraform_files("aws/curvenote", "terraform", changed) == (
        "terraform/aws/curvenote/main.tf", "terraform/aws/modules/eks/main.tf")
    assert terraform_files(None, "terraform", changed) == ()


def test_federation_keys_and_chart_pins() -> None:
    before = {"charts": {"a": {"version": "1"}}, "generation": 1, "members": {"x": {}}}
    after = {"charts": {"a": {"version": "2"}, "b": {"version": "1"}}, "generation": 1,
             "members": {}}
    assert federation_key_changes(before, after) == ("charts.a: 1 -> 2", "charts.b: none -> 1")


def test_the_summary_line_and_changed_are_one_predicate() -> None:
    quiet = MemberChange("gke", "unchanged", "gcp")
    moved = MemberChange("ovh2", "unchanged", "kubeconfig", deployed_by_cd=True,
                         cd_reasons=("config/values/ovh2.yaml changed",))
    only_federation = Plan("main", "a" * 40, "b" * 40, (quiet,), federation=("x changed",))
    assert only_federation.changed
    assert only_federation.summary() == "no member changes; federation.yaml changes (x changed)"
    deploys = Plan("main", "a" * 40, "b" * 40, (quiet, moved))
    assert deploys.changed and moved.changed and not moved.changed_besides_cd
    assert deploys.summary() == "1 member(s) change (ovh2)"
    nothing = Plan("main", "a" * 40, "b" * 40, (quiet,))
    assert not nothing.changed and nothing.summary() == "nothing changes"
