"""The Segmenter: every input kind gives the same masks at the input's own size; save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gcnseg
from gcnseg.data.images import read_image
from gcnseg.errors import GcnsegError
from gcnseg.inference.segmenter import Segmenter, class_indices, load

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return load("pets-default", engine="torch-fp32", device="cpu")


@pytest.fixture(scope="module")
def photo(tiny_pets: Path) -> Path:
    return tiny_pets / "images" / "Abyssinian_1.jpg"


def test_every_input_kind_gives_the_same_mask(segmenter: Segmenter, photo: Path) -> None:
    rgb = read_image(photo)
    chw = torch.from_numpy(rgb.copy()).permute(2, 0, 1)
    inputs = [photo, str(photo), Image.open(photo), rgb, chw, chw.float() / 255]
    masks = segmenter.predict(inputs)
    assert len(masks) == len(inputs)
    for mask in masks:
        assert mask.dtype == np.uint8 and mask.shape == rgb.shape[:2]
        assert np.array_equal(mask, masks[0])
    batch = segmenter.predict(torch.stack([chw, chw]))  # NCHW: one mask per image
    assert len(batch) == 2 and np.array_equal(batch[1], masks[0])
    assert np.array_equal(segmenter.predict(rgb), masks[0])  # one in, one out (no list)


def test_batched_inputs_of_different_sizes_keep_their_sizes(segmenter: Segmenter) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in ((50, 70), (90, 31))]
    masks = segmenter.predict(images)
    assert [m.shape for m in masks] == [(50, 70), (90, 31)]
    alone = segmenter.predict(images[1])
    assert (alone == masks[1]).mean() > 0.999  # batching does not change the answer


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.rand(3, 20, 20) * 255, r"values in \[0, 1\]"),
        (torch.full((3, 8, 8), float("nan")), r"values in \[0, 1\]"),
        (np.zeros((8, 8, 3), np.float32), r"HxWx3 \(RGB\) or HxW \(grey\) uint8"),
        (np.zeros((8, 8, 4), np.uint8), r"HxWx3 \(RGB\) or HxW \(grey\) uint8"),
        (np.zeros((0, 0, 3), np.uint8), "must hold pixels"),
        (np.zeros((0, 10, 3), np.uint8), "must hold pixels"),
        (torch.zeros(3, 0, 8, dtype=torch.uint8), "must hold pixels"),
        (torch.zeros(8, 8, 3, dtype=torch.uint8), "CHW or NCHW"),
        (torch.zeros(3, 8, 8, dtype=torch.int32), "uint8 or float"),
        (42, "cannot segment a int"),
        ("missing.jpg", "file not found"),
    ],
)
def test_bad_inputs_are_one_line_errors(segmenter: Segmenter, bad, message: str) -> None:
    with pytest.raises(GcnsegError, match=message):
        segmenter.predict(bad)


def test_probabilities_agree_with_masks(segmenter: Segmenter, photo: Path) -> None:
    proba = segmenter.predict_proba(photo)
    mask = segmenter.predict(photo)
    assert proba.shape == (3, *mask.shape) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(0), 1.0, atol=1e-4)
    assert np.array_equal(proba.argmax(0), mask)
    assert segmenter.colors == segmenter.classes.colors
    assert segmenter.classes.names == ("background", "cat", "dog")


def test_save_pretrained_round_trip(segmenter: Segmenter, photo: Path, tmp_path: Path) -> None:
    folder = segmenter.save_pretrained(tmp_path / "saved")
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["name"] == "gcn_efficientnet_lite2"
    assert config["classes"]["names"] == ["background", "cat", "dog"]
    assert config["eval_size"] == segmenter.eval_size
    assert config["training_data"] == {"name": "Oxford-IIIT Pet", "license": "CC BY-SA 4.0"}
    assert config["metrics"] and "preprocessing" in config
    assert (folder / "model.safetensors").read_bytes()[:8] != b"PK\x03\x04"  # not a torch zip
    again = gcnseg.load(folder, engine="torch-fp32", device="cpu")
    assert np.array_equal(again.predict(photo), segmenter.predict(photo))


def test_load_refuses_a_folder_with_broken_weights(segmenter: Segmenter, tmp_path: Path) -> None:
    folder = segmenter.save_pretrained(tmp_path / "saved")
    (folder / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(GcnsegError, match=r"model\.safetensors"):
        load(folder)


def test_package_top_level_api() -> None:
    assert {"load", "Segmenter", "create_model", "list_models"} <= set(dir(gcnseg))
    model = gcnseg.create_model("gcn_efficientnet_lite0", num_classes=5, backbone_weights="random")
    assert model(torch.rand(1, 3, 64, 48)).shape == (1, 5, 64, 48)


def test_torch_hub_loads_the_packaged_model() -> None:
    segmenter = torch.hub.load(str(ROOT), "pets_default", source="local", engine="torch-fp32")
    assert isinstance(segmenter, Segmenter) and segmenter.classes.names[1] == "cat"


def test_readme_python_example_runs(photo: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    readme = (ROOT / "README.md").read_text()
    usage = readme[readme.index("## Usage") :]
    code = usage[
        usage.index("```python") + len("```python") : usage.index(
            "```\n", usage.index("```python") + 9
        )
    ]
    assert len(code.strip().splitlines()) == 4
    Image.open(photo).save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "cat" in printed and str(Image.open(photo).size[::-1]) in printed


class _RecordingEngine:
    """Logits that follow the image's red channel: a view not undone lands in the wrong place."""

    name = "recording"

    def __init__(self) -> None:
        self.sizes: list[tuple[int, int]] = []

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.sizes.append(tuple(images.shape[-2:]))
        red = images[:, :1].float() / 255
        return torch.cat([red, 1 - red], dim=1)


def test_multi_scale_flip_tta_runs_each_view_and_undoes_it() -> None:
    from gcnseg.classes import ClassSet

    engine = _RecordingEngine()
    classes = ClassSet.from_dict({"names": ["a", "b"], "colors": [[0, 0, 0], [255, 255, 255]]})
    plain = Segmenter(engine, classes, eval_size=64, model_name="ramp")
    tta = Segmenter(engine, classes, eval_size=64, model_name="ramp", flip=True, scales=(0.5, 1.25))
    ramp = torch.linspace(0, 255, 64).round().to(torch.uint8)  # dark left, bright right
    images = ramp.expand(2, 3, 64, 64).contiguous()
    expected = plain.logits(images)
    engine.sizes.clear()
    logits = tta.logits(images)
    # each scale rounded to a multiple of 32, once as is and once mirrored
    assert engine.sizes == [(32, 32), (32, 32), (96, 96), (96, 96)]
    assert logits.shape == expected.shape
    # every view resized and flipped back onto the ramp (a mirror left as is would flatten it)
    torch.testing.assert_close(logits, expected, atol=0.03, rtol=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scales": (0.1, 1.0)}, r"scales must be numbers from 0\.25 to 4"),
        ({"size": -64}, r"size must be an integer from 32 to 4096"),
        ({"size": 100_000}, r"size must be an integer from 32 to 4096"),
        ({"batch_size": 0}, r"batch_size must be an integer from 1"),
    ],
)
def test_load_arguments_out_of_range_are_refused_before_loading(kwargs, message: str) -> None:
    with pytest.raises(GcnsegError, match=message):
        load("pets-default", **kwargs)


def test_load_without_a_source_is_one_line() -> None:
    with pytest.raises(GcnsegError, match="no model given"):
        load(None)


def test_grey_array_gives_the_mask_of_its_rgb_copy(segmenter: Segmenter, photo: Path) -> None:
    grey = np.asarray(Image.open(photo).convert("L"))
    mask = segmenter.predict(grey)
    assert mask.shape == grey.shape
    assert np.array_equal(mask, segmenter.predict(np.repeat(grey[..., None], 3, axis=2)))


def test_repr_is_short_and_says_what_runs(segmenter: Segmenter) -> None:
    text = repr(segmenter)
    assert len(text.splitlines()) == 1 and len(text) < 300
    for part in (
        "gcn_efficientnet_lite2",
        "'cat'",
        "torch-fp32",
        f"eval_size={segmenter.eval_size}",
    ):
        assert part in text


def test_stream_yields_errors_in_place_and_results_per_image() -> None:
    """One stream for every consumer: an unreadable item is an error result at its index, and
    each good image's logits come back at its own size, beside the letterboxed ones."""
    from gcnseg.classes import ClassSet
    from gcnseg.data.dataset import collate
    from gcnseg.data.transforms import letterbox, to_chw_tensor

    classes = ClassSet.from_dict({"names": ["a", "b"]})
    seg = Segmenter(_RecordingEngine(), classes, eval_size=64, model_name="ramp")
    items = []
    for index, (h, w) in enumerate(((40, 64), (64, 20))):
        boxed, box = letterbox(np.full((h, w, 3), 200, np.uint8), 64)
        items.append({"index": index, "image": to_chw_tensor(boxed), "letterbox": box})
    items.insert(
        1, {"index": 7, "name": "broken.jpg", "error": "broken.jpg: unreadable", "size": (64, 64)}
    )
    results = list(seg.stream([collate(items)]))
    assert [(r.index, r.error) for r in results] == [
        (7, "broken.jpg: unreadable"),
        (0, None),
        (1, None),
    ]
    assert results[0].name == "broken.jpg" and results[0].logits is None
    assert [tuple(r.logits.shape) for r in results[1:]] == [(2, 40, 64), (2, 64, 20)]
    assert all(tuple(r.boxed_logits.shape) == (2, 64, 64) for r in results[1:])
    assert all(r.mask.shape == r.logits.shape[1:] for r in results[1:])


def test_phone_photo_is_segmented_as_shown(
    segmenter: Segmenter, photo: Path, tmp_path: Path
) -> None:
    """EXIF orientation 6 (stored sideways): the mask has the shown photo's size, from a path or
    a PIL image alike, and equals the mask of the pixels turned by hand."""
    upright = Image.open(photo).convert("RGB")
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90° clockwise to show"
    path = tmp_path / "phone.png"
    sideways.save(path, exif=exif)
    expected = segmenter.predict(np.asarray(upright))
    for given in (path, Image.open(path)):
        mask = segmenter.predict(given)
        assert mask.shape == (upright.height, upright.width)
        assert (mask == expected).mean() > 0.99


def test_class_indices_in_bands_equal_one_whole_argmax() -> None:
    logits = torch.randn(5, 37, 9, generator=torch.Generator().manual_seed(0))
    banded = class_indices(logits, band_rows=8)  # 37 rows: four whole bands and a short one
    assert banded.dtype == torch.uint8
    assert torch.equal(banded, logits.argmax(0).to(torch.uint8))
