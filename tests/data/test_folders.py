"""images/ + masks/: RGB colour masks through classes.yaml colours, and nested folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from _data import FOLDER_CLASSES
from gcnseg.cli import main
from gcnseg.data.check import check_dataset
from gcnseg.data.layouts import index_dataset
from gcnseg.errors import GcnsegError
from smoke import ONE_RANDOM_STEP, set_flags

COLORS = [tuple(c) for c in FOLDER_CLASSES["colors"]]


def _paint(label: np.ndarray) -> np.ndarray:
    """The index mask as an RGB picture in the classes' colours (255 left white: no class)."""
    rgb = np.full((*label.shape, 3), 255, np.uint8)
    for index, color in enumerate(COLORS):
        rgb[label == index] = color
    return rgb


@pytest.fixture
def colour_masks(tiny_folders: Path, tmp_path: Path) -> Path:
    """`tiny_folders` with every mask saved as RGB in the classes' colours (no ignore pixels)."""
    root = tmp_path / "colour"
    shutil.copytree(tiny_folders, root)
    for path in (root / "masks").iterdir():
        label = np.asarray(Image.open(path))
        Image.fromarray(_paint(np.where(label == 255, 0, label))).save(path)
    return root


def test_rgb_masks_map_through_the_class_colours(colour_masks: Path, tiny_folders: Path) -> None:
    painted = {s.name: s.load_label() for s in index_dataset(colour_masks).samples}
    for sample in index_dataset(tiny_folders).samples:
        expected = sample.load_label()
        assert np.array_equal(painted[sample.name], np.where(expected == 255, 0, expected))
    report = check_dataset(colour_masks, progress=False)
    assert report.problems == 0 and len(report.usable) == report.pairs == 8


def test_an_unknown_colour_is_one_line_naming_file_and_colour(colour_masks: Path) -> None:
    path = sorted((colour_masks / "masks").iterdir())[0]
    rgb = np.asarray(Image.open(path)).copy()
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(path)
    sample = next(s for s in index_dataset(colour_masks).samples if s.mask == path)
    with pytest.raises(GcnsegError, match=r"colour \(1, 2, 3\) is no class's colour") as exc:
        sample.load_label()
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    report = check_dataset(colour_masks, progress=False)
    assert report.bad_mask_values == [str(exc.value)] and len(report.usable) == 7


def test_rgb_masks_without_listed_colours_say_what_to_add(colour_masks: Path) -> None:
    (colour_masks / "classes.yaml").write_text(yaml.safe_dump({"names": FOLDER_CLASSES["names"]}))
    sample = index_dataset(colour_masks).samples[0]
    with pytest.raises(GcnsegError, match=r"list the class colours in classes\.yaml"):
        sample.load_label()


def test_nested_folders_pair_by_relative_path(tiny_folders: Path, tmp_path: Path) -> None:
    root = tmp_path / "nested"
    shutil.copytree(tiny_folders, root)
    for kind in ("images", "masks"):
        for path in sorted((root / kind).iterdir()):
            group = "discs" if int(path.stem.split("_")[1]) % 2 == 0 else "boxes/deep"
            (root / kind / group).mkdir(parents=True, exist_ok=True)
            path.rename(root / kind / group / path.name)
    # the same basename in two folders is two samples, each with its own mask
    shutil.copy(root / "images" / "discs" / "scene_0.png", root / "images" / "scene_0.png")
    shutil.copy(root / "masks" / "discs" / "scene_0.png", root / "masks" / "scene_0.png")
    index = index_dataset(root)
    names = sorted(s.name for s in index.samples)
    assert "discs/scene_0" in names and "scene_0" in names and "boxes/deep/scene_1" in names
    assert len(names) == 9 and not index.strays and not index.images_without_mask
    for sample in index.samples:
        assert sample.mask.relative_to(root / "masks").with_suffix("") == sample.image.relative_to(
            root / "images"
        ).with_suffix("")
    assert check_dataset(root, progress=False).problems == 0


def test_train_from_elsewhere_on_colour_masks_leaks_no_warning(
    colour_masks: Path, tmp_path: Path, monkeypatch, recwarn
) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    args = ["train", "--data", str(colour_masks), "--epochs", "1", "-q"]
    args += set_flags(ONE_RANDOM_STEP)
    assert main(args) == 0
    assert next((work / "runs").iterdir()).joinpath("best.pt").is_file()
    leaked = [f"{w.filename}: {w.message}" for w in recwarn]
    assert not leaked, leaked


def test_a_class_file_naming_a_key_twice_is_refused(tiny_folders: Path, tmp_path: Path) -> None:
    root = tmp_path / "twice"
    shutil.copytree(tiny_folders, root)
    (root / "classes.yaml").write_text(
        "names: [background, disc, box]\nnames: [background, box, disc]\n"
    )
    with pytest.raises(GcnsegError) as exc:
        index_dataset(root)
    assert str(exc.value).startswith(f"{root / 'classes.yaml'}: key 'names' appears twice")
