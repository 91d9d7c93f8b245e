"""values/secrets.py: every rendering of a secret is censored, whatever its length or reshaping."""

from __future__ import annotations

import base64
import json

import yaml

from federation_deploy.values.manifests import redact_secret_values
from federation_deploy.values.secrets import CENSORED, censor, contains_secret

MULTI = "-----BEGIN KEY-----\nAbCdEfGh1234\nIjKlMnOp5678\n-----END KEY-----"
WORDS = " ".join(f"word{i}xyz" for i in range(30))  # long enough for go-yaml to fold


def test_verbatim_and_overlapping_secrets() -> None:
    assert censor("token=abcdef1234 x", ["abcdef1234"]) == f"token={CENSORED} x"
    # the longer secret wins: no tail of it is left behind
    assert censor("abcdef1234", ["abcdef", "abcdef1234"]) == CENSORED


def test_short_secrets_only_as_whole_tokens() -> None:
    text = "user=ab pass=Zq9 cabbage Zq9x"
    out = censor(text, ["ab", "Zq9"])
    assert out == f"user={CENSORED} pass={CENSORED} cabbage Zq9x"
    assert censor("x", ["x"]) == CENSORED and censor("xx", ["x"]) == "xx"


def test_a_multi_line_secret_re_indented_by_a_yaml_dump() -> None:
    dumped = yaml.safe_dump({"a": {"b": {"key": MULTI}}}, default_style="|")
    assert "    AbCdEfGh1234" in dumped  # re-indented, not verbatim
    out = censor(dumped, [MULTI])
    assert "AbCdEfGh1234" not in out and "IjKlMnOp5678" not in out


def test_each_line_of_a_multi_line_secret_in_a_diff() -> None:
    diff = "+  key: |\n+    AbCdEfGh1234\n+    IjKlMnOp5678\n"
    out = censor(diff, [MULTI])
    assert "AbCdEfGh1234" not in out and "IjKlMnOp5678" not in out


def test_quoted_escaped_folded_and_base64_forms() -> None:
    secret = 'it\'s "quoted"\nand\tescaped'
    forms = [json.dumps(secret), repr(secret), secret.replace("'", "''"),
             base64.b64encode(secret.encode()).decode()]
    for form in forms:
        out = censor(f"value: {form} end", [secret])
        assert form not in out and CENSORED in out and out.endswith(" end"), form
    folded = yaml.safe_dump({"k": WORDS}, width=40)
    assert "\n" in folded.strip()  # really folded across lines
    assert "word29xyz" not in censor(folded, [WORDS])
    assert "word0xyz" not in censor(folded, [WORDS])


def test_data_level_search_and_redaction() -> None:
    doc = {"kind": "ConfigMap", "data": {"a": f"prefix {MULTI} suffix", "b": "plain"},
           "n": 3}
    assert contains_secret(doc, [MULTI]) and not contains_secret(doc, ["nothere"])
    redacted = redact_secret_values(doc, [MULTI])
    assert redacted["data"] == {"a": "<redacted>", "b": "plain"} and redacted["n"] == 3
    assert contains_secret({"x": 1234}, ["1234"])  # numbers are text to a tool


def test_no_secrets_no_change() -> None:
    assert censor("anything", []) == "anything"
    assert censor("anything", ["", "   "]) == "anything"  # blank is not a secret
