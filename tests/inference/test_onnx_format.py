"""An ONNX file's gcnseg metadata is checked when read: broken metadata is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx", reason="the [onnx] extra is not installed")

from gcnseg.errors import GcnsegError  # noqa: E402
from gcnseg.inference.onnx_format import (  # noqa: E402
    META_CLASSES,
    META_EVAL_SIZE,
    META_MODEL,
    read_info,
)


def _tiny_onnx(path: Path, metadata: dict[str, str]) -> Path:
    """An identity graph carrying `metadata`."""
    helper = onnx.helper
    tensor = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 4, 4])
    out = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 4, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [tensor], [out])
    model = helper.make_model(graph)
    helper.set_model_props(model, metadata)
    onnx.save(model, str(path))
    return path


GOOD_CLASSES = '{"names": ["a", "b", "c"]}'


def test_good_metadata_is_read(tmp_path: Path) -> None:
    path = _tiny_onnx(
        tmp_path / "m.onnx",
        {META_CLASSES: GOOD_CLASSES, META_EVAL_SIZE: "480", META_MODEL: "gcn_x"},
    )
    info = read_info(path)
    assert info.classes.names == ("a", "b", "c") and info.eval_size == 480
    assert info.model_name == "gcn_x" and not info.quantized


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({}, "no class metadata"),
        ({META_CLASSES: "{not json"}, "bad gcnseg.classes metadata"),
        ({META_CLASSES: '{"names": "a b"}'}, "bad gcnseg.classes metadata"),
        ({META_CLASSES: GOOD_CLASSES, META_EVAL_SIZE: "-5"}, "bad gcnseg.eval_size metadata"),
        ({META_CLASSES: GOOD_CLASSES, META_EVAL_SIZE: "100000"}, "bad gcnseg.eval_size metadata"),
        ({META_CLASSES: GOOD_CLASSES, META_EVAL_SIZE: "big"}, "bad gcnseg.eval_size metadata"),
    ],
)
def test_bad_metadata_is_one_line_naming_the_file(
    tmp_path: Path, metadata: dict, message: str
) -> None:
    path = _tiny_onnx(tmp_path / "bad.onnx", metadata)
    with pytest.raises(GcnsegError, match=message) as exc:
        read_info(path)
    assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)
