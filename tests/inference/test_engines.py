"""Engines: how `auto` chooses, and that every engine gives the torch fp32 masks."""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from gcnseg.errors import GcnsegError
from gcnseg.extras import install_hint
from gcnseg.inference import engines
from gcnseg.inference.segmenter import load

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("onnx", "openvino", "bf16", "expected"),
    [
        (True, True, True, "openvino"),
        (True, True, False, "onnx"),  # OpenVINO's lead was measured with native bf16 only
        (True, False, True, "onnx"),
        (True, False, False, "onnx"),
        (False, False, True, "torch-bf16"),
        (False, False, False, "torch-fp32"),
    ],
)
def test_auto_follows_what_is_installed_and_the_cpu(
    monkeypatch, onnx, openvino, bf16, expected
) -> None:
    monkeypatch.setattr(engines, "onnx_available", lambda: onnx)
    monkeypatch.setattr(engines, "openvino_available", lambda: openvino)
    monkeypatch.setattr(engines, "cpu_features", lambda: {"native_bf16": bf16})
    name, reason = engines.choose("auto", CPU)
    assert name == expected and reason


@pytest.mark.parametrize(
    ("onnx", "bf16", "missing"),
    [(True, True, "OpenVINO"), (False, True, "OpenVINO"), (False, False, "ONNX Runtime")],
)
def test_auto_names_the_faster_engine_that_is_missing(monkeypatch, onnx, bf16, missing) -> None:
    monkeypatch.setattr(engines, "onnx_available", lambda: onnx)
    monkeypatch.setattr(engines, "openvino_available", lambda: False)
    monkeypatch.setattr(engines, "cpu_features", lambda: {"native_bf16": bf16})
    extras = ("openvino",) if onnx else ("onnx", "openvino") if bf16 else ("onnx",)
    _, reason = engines.choose("auto", CPU)
    assert f"{missing} " in reason and reason.endswith(install_hint(*extras))


@pytest.mark.parametrize(("module", "extra"), [("onnxruntime", "onnx"), ("openvino", "openvino")])
def test_a_missing_engine_says_how_to_install_it(monkeypatch, module, extra) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import` now raises ImportError
    with pytest.raises(GcnsegError, match=re.escape(install_hint(extra))):
        if module == "onnxruntime":
            engines.import_onnxruntime()
        else:
            engines.OpenVinoEngine(Path("unused.onnx"))


def test_auto_says_nothing_is_missing_when_it_has_the_fastest(monkeypatch) -> None:
    monkeypatch.setattr(engines, "onnx_available", lambda: True)
    for openvino, bf16 in ((True, True), (False, False)):
        monkeypatch.setattr(engines, "openvino_available", lambda openvino=openvino: openvino)
        monkeypatch.setattr(engines, "cpu_features", lambda bf16=bf16: {"native_bf16": bf16})
        assert "pip install" not in engines.choose("auto", CPU)[1]


def test_torch_uses_bf16_only_where_the_cpu_has_it(monkeypatch) -> None:
    for native, expected in ((True, "torch-bf16"), (False, "torch-fp32")):
        monkeypatch.setattr(engines, "cpu_features", lambda native=native: {"native_bf16": native})
        assert engines.choose("torch", CPU)[0] == expected
    assert engines.choose("auto", torch.device("cuda"))[0] == "torch-fp32"


def test_unknown_engine_is_one_line() -> None:
    with pytest.raises(GcnsegError, match="unknown engine 'tensorrt'"):
        engines.choose("tensorrt", CPU)


def test_int8_without_a_quantised_model_says_how_to_make_one() -> None:
    with pytest.raises(GcnsegError, match="export --int8"):
        load("pets-default", engine="onnx-int8")


@pytest.mark.parametrize("engine", ["torch-bf16", "onnx", "openvino"])
def test_engines_agree_with_torch_fp32(engine: str, tiny_pets: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    if engine == "openvino":
        pytest.importorskip("openvino", reason="the [openvino] extra is not installed")
    photos = sorted((tiny_pets / "images").glob("*.jpg"))[:4]
    reference = load("pets-default", engine="torch-fp32", device="cpu").predict(photos)
    other = load("pets-default", engine=engine, device="cpu")
    assert other.engine_name.startswith(engine)  # openvino adds its precision
    for want, got in zip(reference, other.predict(photos), strict=True):
        assert (want == got).mean() >= 0.99


@pytest.mark.slow
def test_int8_export_round_trip(tiny_pets: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    from gcnseg.cli import main

    out = tmp_path / "pets.int8.onnx"
    argv = ["-q", "export", "--checkpoint", "pets-default", "--out", str(out)]
    assert main([*argv, "--int8", str(tiny_pets), "--calibration-images", "4"]) == 0
    segmenter = load(out)
    assert segmenter.engine_name == "onnx-int8" and segmenter.classes.names[1] == "cat"
    photos = sorted((tiny_pets / "images").glob("*.jpg"))[:3]
    reference = load("pets-default", engine="torch-fp32", device="cpu").predict(photos)
    for want, got in zip(reference, segmenter.predict(photos), strict=True):
        assert got.shape == want.shape and (want == got).mean() >= 0.9
    if importlib.util.find_spec("openvino"):  # OpenVINO runs the same QDQ file
        assert load(out, engine="openvino").engine_name.endswith("-int8")


SATURATION_TERMS = 64


def _saturation_model(folder: Path) -> Path:
    """A MatMulInteger of 64 terms, u8 input × s8 weights of 127."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = SATURATION_TERMS
    weights = numpy_helper.from_array(np.full((k, 8), 127, np.int8), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])],
        "saturation",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [2, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [2, 8])],
        [weights],
    )
    path = folder / "saturation.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_int8_products_do_not_saturate_on_any_cpu(tmp_path: Path) -> None:
    """255 × 127 summed over 64 values: ONNX Runtime's default u8s8 kernels on an x86 CPU without
    VNNI add product pairs in saturating 16-bit lanes and return 1048544; the engine must not."""
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    engine = engines.OnnxEngine(_saturation_model(tmp_path))
    (product,) = engine.session.run(None, {"A": np.full((2, SATURATION_TERMS), 255, np.uint8)})
    assert (product == SATURATION_TERMS * 255 * 127).all()


@pytest.mark.parametrize("vnni", [False, True])
def test_exact_int8_kernels_only_where_the_fast_ones_saturate(
    tmp_path: Path, monkeypatch, vnni: bool
) -> None:
    """ONNX Runtime's exact kernels are asked for only on CPUs without VNNI: with VNNI they
    would halve int8 speed for nothing (57 against 27 img/s on a Xeon with AMX)."""
    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    monkeypatch.setattr(engines, "cpu_features", lambda: {"vnni": vnni})
    options = engines.OnnxEngine(_saturation_model(tmp_path)).session.get_session_options()
    if vnni:
        with pytest.raises(RuntimeError, match="x64quantprecision"):
            options.get_session_config_entry("session.x64quantprecision")
    else:
        assert options.get_session_config_entry("session.x64quantprecision") == "1"


def test_int8_needs_an_onnx_name(tmp_path: Path, tiny_pets: Path, capsys) -> None:
    from gcnseg.cli import main

    argv = ["export", "--checkpoint", "pets-default", "--out", str(tmp_path / "x.pt")]
    assert main([*argv, "--int8", str(tiny_pets)]) == 2
    assert "name it *.onnx" in capsys.readouterr().err


def test_weights_digest_follows_the_weights() -> None:
    from gcnseg.data.oxford_pets import PETS
    from gcnseg.models import create_model

    torch.manual_seed(0)
    model = create_model("gcn_efficientnet_lite0", num_classes=3, backbone_weights="random")
    before = engines.weights_digest(model, PETS)
    assert before == engines.weights_digest(model, PETS)
    with torch.no_grad():
        next(model.parameters()).add_(1)
    assert engines.weights_digest(model, PETS) != before


def test_the_export_cache_tells_the_decoder_refinements_apart() -> None:
    """The same weights with another `model.refine` are another graph, not a cache hit."""
    from gcnseg.data.oxford_pets import PETS
    from gcnseg.models import create_model

    torch.manual_seed(0)
    full = create_model(
        "gcn_efficientnet_lite0", num_classes=3, backbone_weights="random", refine="full"
    )
    quarter = create_model(
        "gcn_efficientnet_lite0", num_classes=3, backbone_weights="random", refine="quarter"
    )
    quarter.load_state_dict(full.state_dict())
    assert engines.weights_digest(full, PETS) != engines.weights_digest(quarter, PETS)


@pytest.mark.parametrize("engine", ["torch-fp32", "onnx", "openvino"])
def test_one_segmenter_serves_several_threads(engine: str, tiny_pets: Path) -> None:
    if engine != "torch-fp32":
        pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    if engine == "openvino":
        pytest.importorskip("openvino", reason="the [openvino] extra is not installed")
    photos = sorted((tiny_pets / "images").glob("*.jpg"))[:3]
    segmenter = load("pets-default", engine=engine, device="cpu")
    alone = segmenter.predict(photos)

    def predict_in_turn(start: int) -> list:
        order = [photos[(start + i) % len(photos)] for i in range(4)]
        return list(zip(order, (segmenter.predict(photo) for photo in order), strict=True))

    with ThreadPoolExecutor(4) as pool:
        answers = [a for done in pool.map(predict_in_turn, range(4)) for a in done]
    assert len(answers) == 16
    for photo, mask in answers:
        np.testing.assert_array_equal(mask, alone[photos.index(photo)])


def _tiny_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Conv2d(3, 3, 1).eval()  # three classes, like PETS


def _build_onnx(model: torch.nn.Module, **kwargs) -> engines.Engine:
    from gcnseg.data.oxford_pets import PETS

    pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")
    return engines.build("onnx", model, device=CPU, classes=PETS, model_name="tiny", **kwargs)


def test_onnx_export_is_cached_once_where_asked(tmp_path: Path, caplog) -> None:
    model = _tiny_model(0)
    with caplog.at_level("INFO", logger="gcnseg.inference.engines"):
        first = _build_onnx(model, cache_dir=tmp_path / "cache")
        second = _build_onnx(model, cache_dir=tmp_path / "cache")
    assert first.path == second.path and first.path.parent == tmp_path / "cache/weights/onnx"
    assert first.path.is_file()
    assert sum("exporting" in r.getMessage() for r in caplog.records) == 1


def test_cache_off_writes_nothing_and_the_engine_still_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GCNSEG_CACHE", "off")
    model = _tiny_model(1)
    engine = _build_onnx(model)
    assert not engine.path.exists()  # the temporary export is gone once loaded
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        expected = model(images.float() / 255)
    assert torch.allclose(engine(images), expected, atol=1e-5)
    assert not (tmp_path / "home").exists()
    assert not _build_onnx(model, cache_dir=False).path.exists()


def test_cache_keeps_to_its_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "weights" / "onnx"
    folder.mkdir(parents=True)
    old = [folder / f"{name}.onnx" for name in ("a", "b", "c")]
    for i, path in enumerate(old):  # three 1 MB exports, "a" the least recently used
        path.write_bytes(b"\0" * 2**20)
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    monkeypatch.setenv("GCNSEG_CACHE_MB", "1.5")  # room for "c" and the new, small export
    engine = _build_onnx(_tiny_model(2), cache_dir=tmp_path)
    assert sorted(folder.glob("*.onnx")) == sorted([engine.path, *old[2:]])
