"""Export: torch/ONNX Runtime parity on real photos, dynamic shapes, metadata, checkpoints, and
the format an output's name asks for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from _data import PETS_SAMPLE, pets_sample_missing
from gcnseg.checkpoint import load_checkpoint, save_checkpoint
from gcnseg.classes import ClassSet
from gcnseg.config import Config
from gcnseg.data.images import read_image
from gcnseg.data.transforms import letterbox, to_chw_tensor
from gcnseg.errors import GcnsegError
from gcnseg.models import create_model

onnx = pytest.importorskip("onnx", reason="the [onnx] extra is not installed")
pytest.importorskip("onnxruntime", reason="the [onnx] extra is not installed")

from gcnseg.inference.engines import OnnxEngine  # noqa: E402
from gcnseg.inference.export import export_checkpoint, export_model, export_onnx  # noqa: E402
from gcnseg.inference.onnx_format import META_CLASSES  # noqa: E402
from gcnseg.inference.segmenter import load  # noqa: E402

# Not the packaged PETS colours, so the round trip proves the metadata is read, not defaulted.
CLASSES = ClassSet(("background", "cat", "dog"), ((1, 2, 3), (40, 50, 60), (200, 100, 7)))
MAX_ABS_DIFF = 1e-3
MIN_ARGMAX_AGREEMENT = 0.999


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def photos(tiny_pets: Path) -> list[np.ndarray]:
    """Real photos when the sample is here (generated ones otherwise, so this runs anywhere)."""
    real = None if pets_sample_missing() else PETS_SAMPLE
    images = sorted(((real or tiny_pets) / "images").glob("*.jpg"))
    picks = [images[0], images[len(images) // 3], images[2 * len(images) // 3], images[-1]]
    return [read_image(p) for p in picks]


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    """ImageNet backbone, seeded random decoder: the logits are those of an untrained head."""
    torch.manual_seed(0)
    return create_model("gcn_efficientnet_lite0", num_classes=3).eval()


@pytest.fixture(scope="module")
def exported(model: torch.nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "gcn.onnx"
    return export_onnx(model, out, classes=CLASSES, model_name="gcn_efficientnet_lite0")


def to_batch(images: list[np.ndarray]) -> torch.Tensor:
    return torch.stack([to_chw_tensor(im) for im in images]).float() / 255


def letterboxed(photos: list[np.ndarray], size: int) -> torch.Tensor:
    return to_batch([letterbox(p, size)[0] for p in photos])


def assert_parity(model: torch.nn.Module, exported: Path, images: torch.Tensor) -> None:
    with torch.no_grad():
        expected = model(images)
    got = OnnxEngine(exported, threads=1)(images)
    assert got.shape == expected.shape == (images.shape[0], 3, *images.shape[-2:])
    assert (got - expected).abs().max().item() <= MAX_ABS_DIFF
    agreement = (got.argmax(1) == expected.argmax(1)).float().mean().item()
    assert agreement >= MIN_ARGMAX_AGREEMENT


def test_parity_on_letterboxed_photos(model, exported, photos) -> None:
    assert_parity(model, exported, letterboxed(photos[:3], 320))


def test_parity_at_an_odd_size_unlike_the_export_sample(model, exported, photos) -> None:
    # 333×479 vs the 256² trace: a baked-in interpolate size would give the wrong output shape.
    image = to_batch(photos[3:])
    image = F.interpolate(image, size=(333, 479), mode="bilinear", align_corners=False)
    assert_parity(model, exported, image.clamp(0, 1))


def test_dynamic_batch_matches_single_images(exported, photos) -> None:
    segmenter = OnnxEngine(exported, threads=1)
    pair = letterboxed(photos[:2], 320)
    together = segmenter(pair)
    apart = torch.cat([segmenter(pair[:1]), segmenter(pair[1:])])
    assert together.shape[0] == 2
    torch.testing.assert_close(together, apart, atol=1e-4, rtol=0)


def test_metadata_round_trip(exported) -> None:
    segmenter = load(exported)
    assert segmenter.classes == CLASSES and segmenter.engine_name == "onnx"
    assert segmenter.model_name == "gcn_efficientnet_lite0"
    proto = onnx.load(str(exported))
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props[META_CLASSES]) == CLASSES.to_dict()
    (output,) = proto.graph.output
    dims = output.type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]


def test_class_count_mismatch_is_refused(model, tmp_path) -> None:
    two = ClassSet(("background", "pet"), ((0, 0, 0), (255, 255, 255)))
    with pytest.raises(GcnsegError, match="outputs 3 classes but 2"):
        export_onnx(model, tmp_path / "bad.onnx", classes=two)
    assert not (tmp_path / "bad.onnx").exists()


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    """A run folder whose best.pt holds a seeded random model, and that model."""
    config = Config()
    config.model.name = "gcn_k1_efficientnet_lite0"
    torch.manual_seed(1)
    source = create_model(config.model.name, num_classes=3, backbone_weights="random").eval()
    payload = {"model": source.state_dict(), "config": config.to_dict()}
    run = tmp_path_factory.mktemp("run")
    save_checkpoint(run / "best.pt", payload | {"classes": CLASSES.to_dict()})
    return run, source


def test_export_checkpoint_carries_classes_and_model_name(run_folder, tmp_path) -> None:
    run, source = run_folder
    out = export_checkpoint(str(run), tmp_path / "model.onnx")

    segmenter = load(out)
    assert (segmenter.classes, segmenter.model_name) == (CLASSES, "gcn_k1_efficientnet_lite0")
    assert segmenter.eval_size == Config().data.eval_size  # carried in the file's metadata
    image = torch.rand(1, 3, 96, 80)
    with torch.no_grad():
        expected = source(image)
    assert (OnnxEngine(out, threads=1)(image) - expected).abs().max().item() <= MAX_ABS_DIFF


def test_engine_gives_one_line_errors(tmp_path) -> None:
    with pytest.raises(GcnsegError, match="not found"):
        OnnxEngine(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a protobuf")
    with pytest.raises(GcnsegError, match="not a loadable ONNX model"):
        OnnxEngine(junk)
    with pytest.raises(GcnsegError, match="not a loadable ONNX model"):
        load(junk)  # its metadata is read before any engine is built


def test_export_model_writes_the_format_the_name_asks_for(run_folder, tmp_path) -> None:
    run, _ = run_folder
    onnx_file = export_model(run, tmp_path / "model.onnx")
    release = export_model(run, tmp_path / "release.pt.gz")
    folder = export_model(run, tmp_path / "saved")
    assert load(onnx_file).engine_name == "onnx"
    weights = load_checkpoint(release)["model"].values()
    assert all(w.dtype == torch.float16 for w in weights if w.is_floating_point())
    assert (folder / "config.json").is_file()
    for path in (onnx_file, release, folder):
        segmenter = load(path, engine="onnx" if path.suffix == ".onnx" else "torch-fp32")
        assert (segmenter.classes, segmenter.model_name) == (CLASSES, "gcn_k1_efficientnet_lite0")


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("model.pt", {"int8_data": Path("data")}, r"int8 .* ONNX model; name it \*\.onnx"),
        ("model.onnx", {"opset": 12}, "opset 12 is not supported; use 13 to 20"),
        ("taken", {}, "cannot write the exported model: this is a file, not a folder"),
    ],
)
def test_export_model_refuses_before_writing(
    run_folder, tmp_path: Path, name: str, kwargs: dict, message: str
) -> None:
    if name == "taken":
        (tmp_path / name).write_text("a file where the saved folder would go")
    with pytest.raises(GcnsegError, match=message):
        export_model(run_folder[0], tmp_path / name, **kwargs)
    assert [p.name for p in tmp_path.iterdir()] == (["taken"] if name == "taken" else [])
