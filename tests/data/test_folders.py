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
from gcnseg.data.splits import make_split, split_samples
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


def _with_classes(tiny_folders: Path, tmp_path: Path, **extra) -> Path:
    root = tmp_path / "declared"
    shutil.copytree(tiny_folders, root)
    (root / "classes.yaml").write_text(yaml.safe_dump(FOLDER_CLASSES | extra))
    return root


def test_ignore_index_declared_in_classes_yaml(tiny_folders: Path, tmp_path: Path) -> None:
    root = _with_classes(tiny_folders, tmp_path, ignore=11)
    for path in (root / "masks").iterdir():  # the void label becomes 11 instead of 255
        label = np.asarray(Image.open(path))
        Image.fromarray(np.where(label == 255, 11, label).astype(np.uint8)).save(path)
    expected = {s.name: s.load_label() for s in index_dataset(tiny_folders).samples}
    for sample in index_dataset(root).samples:
        assert np.array_equal(sample.load_label(), expected[sample.name])
    report = check_dataset(root, progress=False)
    assert report.problems == 0 and len(report.usable) == 8


def test_undeclared_void_label_leaves_nothing_usable_and_check_fails(
    tiny_folders: Path, tmp_path: Path, capsys
) -> None:
    root = _with_classes(tiny_folders, tmp_path)
    for path in (root / "masks").iterdir():
        label = np.asarray(Image.open(path))
        Image.fromarray(np.where(label == 255, 11, label).astype(np.uint8)).save(path)
    assert main(["data", "check", str(root), "-q"]) == 1
    out = capsys.readouterr().out
    assert "8 pairs, 0 usable" in out and "no usable pair" in out


def test_ignore_colour_for_rgb_masks(colour_masks: Path, tiny_folders: Path) -> None:
    void = [255, 255, 255]
    (colour_masks / "classes.yaml").write_text(yaml.safe_dump(FOLDER_CLASSES | {"ignore": void}))
    for sample in index_dataset(tiny_folders).samples:  # paint 255 white this time
        label = sample.load_label()
        rgb = _paint(label)
        Image.fromarray(rgb).save(colour_masks / "masks" / sample.mask.name)
    painted = {s.name: s.load_label() for s in index_dataset(colour_masks).samples}
    for sample in index_dataset(tiny_folders).samples:
        assert np.array_equal(painted[sample.name], sample.load_label())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ignore_index": 11}, "unknown key 'ignore_index'"),
        ({"ignore": 1}, "ignore: 1 must be a mask value no class has"),
        ({"ignore": [220, 40, 40]}, "is the colour of class 'disc'"),
        ({"ignore": "void"}, "ignore must be a mask value"),
        ({"background": "sky"}, "background must name one of the classes"),
    ],
)
def test_bad_class_file_keys_are_one_line_naming_file_and_key(
    tiny_folders: Path, tmp_path: Path, extra: dict, message: str
) -> None:
    root = _with_classes(tiny_folders, tmp_path, **extra)
    with pytest.raises(GcnsegError, match=message) as exc:
        index_dataset(root)
    assert str(root / "classes.yaml") in str(exc.value) and "\n" not in str(exc.value)


def test_ignore_colour_needs_the_class_colours(tiny_folders: Path, tmp_path: Path) -> None:
    root = tmp_path / "no-colours"
    shutil.copytree(tiny_folders, root)
    (root / "classes.yaml").write_text(
        yaml.safe_dump({"names": FOLDER_CLASSES["names"], "ignore": [0, 0, 0]})
    )
    with pytest.raises(GcnsegError, match="list the classes' `colors` too"):
        index_dataset(root)


def test_background_only_when_the_class_file_names_one(tiny_folders: Path, tmp_path: Path) -> None:
    assert index_dataset(tiny_folders).classes.background is None  # a class named so is no reason
    root = _with_classes(tiny_folders, tmp_path, background="background")
    assert index_dataset(root).classes.background == 0


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_unknown_colour_hint_fits_the_file(colour_masks: Path, suffix: str) -> None:
    path = sorted((colour_masks / "masks").iterdir())[0]
    rgb = np.asarray(Image.open(path)).copy()
    rgb[:8, :8] = (0, 0, 1)  # a block survives JPEG as a colour near, not at, (0, 0, 1)
    path.unlink()
    Image.fromarray(rgb).save(path.with_suffix(suffix), quality=95)
    sample = next(s for s in index_dataset(colour_masks).samples if s.mask.stem == path.stem)
    with pytest.raises(GcnsegError, match=r"is no class's colour in classes\.yaml") as exc:
        sample.load_label()
    lossless = "save masks losslessly" not in str(exc.value)
    assert lossless == (suffix == ".png")
    assert ("ignore: [R, G, B]" in str(exc.value)) == lossless


def test_split_folders_keep_their_split(tiny_folders: Path, tmp_path: Path) -> None:
    root = tmp_path / "split"
    shutil.copytree(tiny_folders, root)
    for kind in ("images", "masks"):
        for path in sorted((root / kind).iterdir()):
            split = "val" if int(path.stem.split("_")[1]) < 2 else "train"
            (root / kind / split).mkdir(exist_ok=True)
            path.rename(root / kind / split / path.name)
    index = index_dataset(root)
    manifest = make_split(index, test_fraction=0.5, val_fraction=0.5)
    assert manifest["source"] == "official"
    assert manifest["splits"] == {
        "train": [f"train/scene_{i}" for i in range(2, 8)],
        "val": ["val/scene_0", "val/scene_1"],
        "test": [],
    }
    with pytest.raises(GcnsegError, match=f"no {root / 'images' / 'test'} folder"):
        split_samples(index, None, "test")
    assert check_dataset(root, progress=False).splits == {"train": 6, "val": 2, "test": 0}


def test_same_name_with_two_extensions_is_reported_not_dropped(
    tiny_folders: Path, tmp_path: Path, capsys
) -> None:
    root = tmp_path / "clash"
    shutil.copytree(tiny_folders, root)
    Image.open(root / "images" / "scene_0.png").convert("RGB").save(root / "images" / "scene_0.jpg")
    index = index_dataset(root)
    assert "scene_0" not in {s.name for s in index.samples}
    assert index.clashes == [[root / "images" / "scene_0.jpg", root / "images" / "scene_0.png"]]
    assert not index.masks_without_image  # its mask is part of the clash, not an orphan
    report = check_dataset(root, progress=False)
    assert report.problems == 1 and len(report.usable) == 7
    assert main(["data", "check", str(root), "-q", "--strict"]) == 1
    out = capsys.readouterr().out
    assert "clashing names (skipped): 1" in out and str(root / "images" / "scene_0.jpg") in out


def test_a_class_file_naming_a_key_twice_is_refused(tiny_folders: Path, tmp_path: Path) -> None:
    root = tmp_path / "twice"
    shutil.copytree(tiny_folders, root)
    (root / "classes.yaml").write_text(
        "names: [background, disc, box]\nnames: [background, box, disc]\n"
    )
    with pytest.raises(GcnsegError) as exc:
        index_dataset(root)
    assert str(exc.value).startswith(f"{root / 'classes.yaml'}: key 'names' appears twice")
