"""Install hints match how gcnseg was installed: a clone gets `pip install -e`, a wheel the names."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest

import gcnseg
from gcnseg import extras
from gcnseg.extras import extra_requirements, install_hint, source_checkout

ROOT = Path(__file__).resolve().parents[1]
REQUIRES = [
    "torch>=2.4",
    'onnx>=1.16; extra == "onnx"',
    'onnxruntime>=1.18 ; extra == "onnx"',
    'openvino>=2024.0; extra == "openvino"',
    "onnx>=1.16; extra == 'openvino'",
    'fastapi>=0.115; python_version >= "3.11" and extra == "serve"',
]


@pytest.fixture
def from_a_wheel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """gcnseg imported from site-packages (no pyproject.toml above it), with REQUIRES as metadata."""
    site = tmp_path / "lib" / "python3" / "site-packages"
    monkeypatch.setattr(gcnseg, "__file__", str(site / "gcnseg" / "__init__.py"))
    monkeypatch.setattr(extras.importlib.metadata, "requires", lambda name: REQUIRES)


def test_a_clone_installs_the_extra_from_itself() -> None:
    assert source_checkout() == ROOT
    assert install_hint("serve") == f"pip install -e '{ROOT}[serve]'"
    assert install_hint("onnx", "openvino") == f"pip install -e '{ROOT}[onnx,openvino]'"


@pytest.mark.usefixtures("from_a_wheel")
def test_a_wheel_names_the_requirements_of_the_extras() -> None:
    assert source_checkout() is None
    assert install_hint("serve") == "pip install 'fastapi>=0.115'"
    assert install_hint("onnx") == "pip install 'onnx>=1.16' 'onnxruntime>=1.18'"
    assert install_hint("openvino", "onnx") == (
        "pip install 'onnx>=1.16' 'onnxruntime>=1.18' 'openvino>=2024.0'"
    )


def test_another_projects_folder_is_not_a_clone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\n')
    monkeypatch.setattr(gcnseg, "__file__", str(tmp_path / "src" / "gcnseg" / "__init__.py"))
    assert source_checkout() is None


def test_without_metadata_the_hint_still_names_the_extra(
    from_a_wheel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing(name: str) -> list[str]:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(extras.importlib.metadata, "requires", missing)
    assert extra_requirements(("serve",)) == []
    assert "serve extra" in install_hint("serve")


def test_installed_metadata_lists_the_serve_requirements() -> None:
    names = [r.split(">")[0].split("=")[0] for r in extra_requirements(("serve",))]
    assert {"fastapi", "uvicorn", "python-multipart"} <= set(names)
