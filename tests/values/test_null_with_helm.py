"""A null in a values file deletes the chart's default: the real helm, given our merged values
on stdin, renders what it renders from the -f files themselves (as deploy.py passes them)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from federation_deploy.values.render import Layer, merge_layer
from federation_deploy.yamlio import loads_located

CHART_VALUES = "a:\n  b: 1\n  c: 2\nlist: [1, 2]\nkeep: yes\n"
FILES = ["a:\n  b: null\nkeep: null\nextra: 1\n",
         "extra: null\nlist: null\n",
         "list: [3]\n"]


def template(helm: str, chart: Path, *args: str, stdin: str | None = None) -> object:
    proc = subprocess.run([helm, "template", "t", str(chart), *args], input=stdin,
                          capture_output=True, text=True, timeout=120, check=True)
    doc = yaml.safe_load(proc.stdout.split("---", 1)[1])
    return json.loads(doc["data"]["values"])


@pytest.mark.helm
def test_merged_values_on_stdin_equal_helm_of_the_files(helm_binary: str, tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: chart\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(CHART_VALUES)
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: v\ndata:\n"
        "  values: {{ toJson .Values | quote }}\n")
    args: list[str] = []
    values: dict = {}
    origins: dict = {}
    for i, text in enumerate(FILES):
        path = tmp_path / f"f{i}.yaml"
        path.write_text(text)
        args += ["-f", str(path)]
        merge_layer(values, loads_located(text, path.name),
                    Layer(f"f{i}", path.name, None, False), origins)
    assert values == {"a": {"b": None}, "keep": None, "extra": None, "list": [3]}
    from_files = template(helm_binary, chart, *args)
    from_stdin = template(helm_binary, chart, "--values", "-", stdin=yaml.safe_dump(values))
    assert from_files == from_stdin
    assert from_stdin["a"] == {"c": 2}  # the chart's default b is deleted
    assert "keep" not in from_stdin
