"""The schema tables: they alone decide allowed keys, defaults and messages of the loader."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from federation_deploy.config import RAMP_KEYS, load_federation, schema
from federation_deploy.config.schema import Key, Section
from federation_deploy.errors import ConfigError
from federation_deploy.redirector.config import CheckConfig, RedirectorConfig

Edit = Callable[[str, str, str], None]


def problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_federation(config_dir)
    return [str(p) for p in info.value.problems]


def sections() -> list[Section]:
    """Every section reachable from the top, through nested and each rows, plus clusters."""
    found: list[Section] = []
    todo = [schema.FEDERATION, *schema.CLUSTER.values()]
    while todo:
        section = todo.pop()
        if section in found:
            continue
        found.append(section)
        todo += [s for k in section.keys for s in (k.nested, k.each) if s is not None]
    return found


def test_every_section_is_reachable() -> None:
    paths = {s.path for s in sections()}
    assert {"", "redirector", "redirector.check", "terraform", "members.*",
            "members.*.terraform", "members.*.releases[]", "members.*.ramp", "members.*.drained",
            "members.*.cluster", "charts.*", "secrets", "ci", "members.*.values[]",
            "members.*.hooks[]", "sandbox", "rings", "rollout", "freeze", "notifications"} == paths


@pytest.mark.parametrize("section", sections(), ids=lambda s: s.path or "top")
def test_rows_are_well_formed(section: Section) -> None:
    names = section.names
    assert len(names) == len(set(names)), "a key is declared twice"
    for key in section.keys:
        assert key.expected, key.name
        assert "type" in key.rule.json or "enum" in key.rule.json, key.name
        if key.default is not None and not key.required and key.name not in ("releases",):
            # a default must itself pass the key's rule: it is what the model gets
            assert key.rule.ok(key.default), (section.path, key.name, key.default)


def test_redirector_defaults_are_the_redirectors_own(config_dir: Path) -> None:
    # federation.yaml without any optional redirector setting gets exactly what the
    # redirector itself assumes for a config.json that leaves them out
    path = config_dir / "federation.yaml"
    text = path.read_text()
    start, end = text.index("redirector:"), text.index("\nmembers:")
    kept = [line for line in text[start:end].splitlines()[1:]
            if line.startswith("  ") and not line.startswith("   ")
            and line.strip().split(":")[0] in schema.REDIRECTOR.required]
    assert len(kept) == len(schema.REDIRECTOR.required)
    path.write_text(text[:start] + "redirector:\n" + "\n".join(kept) + "\n" + text[end:])
    fed = load_federation(config_dir)
    redirector, check = fed.redirector, fed.redirector.check
    assert (check.period, check.jitter, check.retries, check.timeout, check.failed_period) == (
        CheckConfig().period, CheckConfig().jitter, CheckConfig().retries,
        CheckConfig().timeout, CheckConfig().failed_period)
    plain = RedirectorConfig(hosts=())
    assert redirector.load_balancer == plain.load_balancer
    assert redirector.pod_headroom == plain.pod_headroom
    assert redirector.host_cookie_age_hours == plain.host_cookie_age_hours


def test_unknown_key_message_lists_the_table(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    weight: 15\n", "    weight: 15\n    colour: blue\n")
    allowed = ", ".join(sorted(schema.MEMBER.names))
    assert any(f"members.ovh2.colour: unknown key (allowed: {allowed})" in p
               for p in problems(config_dir))


def test_messages_come_from_the_rows(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    weight: 15\n", "    weight: 15\n    routed: maybe\n")
    routed = schema.MEMBER["routed"]
    assert any(f"members.ovh2.routed: expected {routed.expected}, got str 'maybe'" in p
               for p in problems(config_dir))


def test_a_row_added_to_a_section_is_accepted(config_dir: Path, edit: Edit,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # the loader asks the table, not a list of its own: one row makes a key known
    edit("federation.yaml", "    weight: 15\n", "    weight: 15\n    colour: blue\n")
    extended = Section(schema.MEMBER.path, (*schema.MEMBER.keys,
                                            Key("colour", schema.STRING, "a colour")))
    monkeypatch.setattr(schema, "MEMBER", extended)
    assert load_federation(config_dir).member("ovh2").name == "ovh2"


def test_required_keys_come_from_the_rows(config_dir: Path, edit: Edit) -> None:
    edit("federation.yaml", "    cloud: external\n", "")
    assert "cloud" in schema.MEMBER.required
    assert any("members.gesis.cloud: required key is missing" in p for p in problems(config_dir))


def test_ramp_keys_are_the_ramp_section_in_order() -> None:
    assert RAMP_KEYS == ("steps", "step", "to_weight", "hold", "started", "last_healthy",
                         "rolled_back", "inconclusive", "evidence", "owner")
    assert tuple(k.name for k in schema.RAMP.keys) == RAMP_KEYS


def test_section_lookup_names_the_section() -> None:
    with pytest.raises(KeyError, match=re.escape("members.* has no key 'colour'")):
        schema.MEMBER["colour"]


@pytest.mark.parametrize("rule,good,bad", [
    (schema.bounded_integer(0, 10), [0, 5, 10], [-1, True, 1.5, "3", 11, 10**30]),
    (schema.COOKIE_HOURS, [0.5, 3, 87600], [0, -2, False, None, 87601, 10**400]),
    (schema.WEIGHT, [0, 0.0001, 60, 1_000_000], [1e-300, 0.00009, -1, 1_000_001, True]),
    (schema.POSITIVE_WEIGHT, [0.0001, 60], [0, 1e-300, 1_000_001]),
    (schema.FRACTION, [0, 0.1, 1], [1.5, -0.1, "0.1"]),
    (schema.STEPS, [[1, 5, 100]], [[], [5, 1], [0, 5], [50, 101], "1,5"]),
    (schema.DNS_NAME, ["gke", "ovh-2"], ["GKE", "-x", "", 3]),
    (schema.OPTIONAL_STRING, [None, "2024-01-01T00:00:00Z"], ["", 3]),
])
def test_rules(rule: schema.Rule, good: list[object], bad: list[object]) -> None:
    assert all(rule.ok(v) for v in good)
    assert not any(rule.ok(v) for v in bad)
