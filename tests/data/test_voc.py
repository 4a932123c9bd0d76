"""Pascal VOC read as unpacked: JPEGImages/, SegmentationClass/ palette PNGs, official lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcnseg.cli import main
from gcnseg.data.check import check_dataset
from gcnseg.data.layouts import index_dataset
from gcnseg.data.splits import make_split
from gcnseg.data.voc import VOC_BORDER, VOC_NAMES, voc_colors

TRAIN, VAL = ["2007_000001", "2007_000002", "2007_000003"], ["2007_000004", "2007_000005"]


def make_tiny_voc(root: Path) -> Path:
    """Five 48×40 pairs (a cat or a dog square, a 255 border) and one photo without a mask."""
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    palette = [v for color in voc_colors(256) for v in color]
    rng = np.random.default_rng(0)
    for i, name in enumerate(TRAIN + VAL):
        label = np.zeros((40, 48), np.uint8)
        label[8:30, 10:38] = 255  # VOC draws a void border around each object
        label[10:28, 12:36] = VOC_NAMES.index("cat" if i % 2 else "dog")
        photo = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(photo).save(root / "JPEGImages" / f"{name}.jpg")
        mask = Image.fromarray(label, mode="P")
        mask.putpalette(palette)
        mask.save(root / "SegmentationClass" / f"{name}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "JPEGImages" / "2008_000009.jpg")
    lists = root / "ImageSets" / "Segmentation"
    (lists / "train.txt").write_text("\n".join(TRAIN) + "\n")
    (lists / "val.txt").write_text("\n".join(VAL) + "\n")
    return root


@pytest.fixture
def tiny_voc(tmp_path: Path) -> Path:
    return make_tiny_voc(tmp_path / "VOC2012")


def test_voc_palette_matches_the_official_colours() -> None:
    colors = voc_colors()
    assert len(colors) == len(VOC_NAMES) == 21
    assert colors[1] == (128, 0, 0) and colors[15] == (192, 128, 128) and colors[20] == (0, 64, 128)


def test_voc_layout_is_read_directly(tiny_voc: Path) -> None:
    index = index_dataset(tiny_voc)
    assert index.layout == "voc" and index.classes.names == VOC_NAMES
    assert sorted(s.name for s in index.samples) == TRAIN + VAL
    assert not index.images_without_mask  # detection-only photos are not problems
    label = next(s for s in index.samples if s.name == TRAIN[1]).load_label()
    assert set(np.unique(label).tolist()) == {0, VOC_NAMES.index("cat"), 255}
    report = check_dataset(tiny_voc, progress=False)
    assert report.problems == 0 and report.images_per_class == {"background": 5, "cat": 2, "dog": 3}


def test_voc_official_lists_drive_the_split(tiny_voc: Path) -> None:
    manifest = make_split(index_dataset(tiny_voc), val_fraction=0.34, seed=0)
    splits = manifest["splits"]
    assert manifest["source"] == "official"
    assert splits["test"] == VAL  # VOC's val: its test masks are not public
    assert sorted(splits["train"] + splits["val"]) == TRAIN and splits["val"]


def test_data_check_cli_names_the_layout(tiny_voc: Path, capsys) -> None:
    assert main(["data", "check", str(tiny_voc), "-q"]) == 0
    assert "(voc): 5 pairs, 5 usable" in capsys.readouterr().out


def test_rgb_masks_read_through_voc_palette_and_border(tiny_voc: Path) -> None:
    expected = {s.name: s.load_label() for s in index_dataset(tiny_voc).samples}
    for path in (tiny_voc / "SegmentationClass").iterdir():
        Image.open(path).convert("RGB").save(path)  # borders become (224, 224, 192)
    rgb = np.asarray(Image.open(tiny_voc / "SegmentationClass" / f"{TRAIN[0]}.png"))
    assert (rgb == VOC_BORDER).all(axis=2).any()
    for sample in index_dataset(tiny_voc).samples:
        assert np.array_equal(sample.load_label(), expected[sample.name])
    assert len(check_dataset(tiny_voc, progress=False).usable) == 5


def test_a_colour_outside_voc_palette_names_the_palette(tiny_voc: Path) -> None:
    path = tiny_voc / "SegmentationClass" / f"{TRAIN[0]}.png"
    rgb = np.asarray(Image.open(path).convert("RGB")).copy()
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(path)
    report = check_dataset(tiny_voc, progress=False)
    assert len(report.bad_mask_values) == 1
    message = report.bad_mask_values[0]
    assert "VOC's palette" in message and "classes.yaml" not in message and str(path) in message
