"""`gcnseg data check`: the report on generated pets and on the real sample, each problem
category, and the CLI."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _data import GIF_NAMED_JPG, RGBA_PNG_NAMED_JPG, STRAY_FILE
from gcnseg.cli import main
from gcnseg.data.check import CheckReport, check_dataset
from gcnseg.data.images import image_size

REAL_WRONG_FORMAT = {"Abyssinian_34.jpg": "GIF", "Abyssinian_5.jpg": "PNG"}


@pytest.fixture(scope="module")
def quirky_report(quirky_pets: Path) -> CheckReport:
    return check_dataset(quirky_pets, progress=False)


def _images_per_class(root: Path) -> Counter[str]:
    """Images holding each class, read back from the generated trimaps (1 pet, 2 background)
    and list.txt's species column (1 cat, 2 dog)."""
    lines = (root / "annotations" / "list.txt").read_text().splitlines()
    species = {f[0]: int(f[2]) for f in (ln.split() for ln in lines if not ln.startswith("#"))}
    counts: Counter[str] = Counter()
    for trimap in (root / "annotations" / "trimaps").glob("*.png"):
        values = set(np.unique(np.asarray(Image.open(trimap))).tolist())
        counts["background"] += 2 in values
        counts[("cat", "dog")[species[trimap.stem] - 1]] += 1 in values
    return counts


def test_generated_pets_report(quirky_report: CheckReport, quirky_pets: Path) -> None:
    report = quirky_report
    images = sorted((quirky_pets / "images").glob("*.jpg"))
    assert report.layout == "oxford-pets"
    assert report.classes == ["background", "cat", "dog"]
    assert report.pairs == len(images) and len(report.usable) == len(images)
    assert report.images_per_class == dict(_images_per_class(quirky_pets))
    assert report.wrong_format == [
        f"{quirky_pets / 'images' / GIF_NAMED_JPG}.jpg: GIF content named .jpg",
        f"{quirky_pets / 'images' / RGBA_PNG_NAMED_JPG}.jpg: PNG content named .jpg",
    ]
    assert report.strays == [str(quirky_pets / "images" / STRAY_FILE)]
    assert report.problems == 0
    assert report.unreadable == report.size_mismatch == report.bad_mask_values == []
    widths, heights = zip(*(image_size(p) for p in images), strict=True)
    for key, values in (("width", widths), ("height", heights)):
        assert report.sizes[key] == [min(values), int(np.median(values)), max(values)]
    text = report.format()
    assert f"{len(images)} pairs, {len(images)} usable" in text
    assert "stray files: 1" in text


# The real sample: its exact counts and its two misnamed files (skips without ../shared).
def test_real_sample_report(pets_root: Path) -> None:
    report = check_dataset(pets_root, progress=False)
    assert report.layout == "oxford-pets"
    assert report.classes == ["background", "cat", "dog"]
    assert report.pairs == 506
    assert len(report.usable) == 506
    assert report.images_per_class == {
        "background": 506,
        "cat": 328,
        "dog": 177,
    }  # images holding each class
    assert len(report.wrong_format) == 2
    for line, (name, actual) in zip(
        sorted(report.wrong_format), sorted(REAL_WRONG_FORMAT.items()), strict=True
    ):
        assert line.startswith(str(pets_root / "images" / name))
        assert f"{actual} content" in line
    assert len(report.strays) == 3 and all(s.endswith(".mat") for s in report.strays)
    assert report.problems == 0
    assert report.unreadable == report.size_mismatch == report.bad_mask_values == []
    assert report.sizes["width"][0] <= report.sizes["width"][1] <= report.sizes["width"][2]
    text = report.format()
    assert "506 pairs, 506 usable" in text
    assert "stray files: 3" in text


def _bad_folder_dataset(root: Path) -> Path:
    """2 good pairs, a corrupt image, a size mismatch, a mask value 7 (2 classes), an orphan image."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.yaml").write_text("names: [background, thing]\n")
    mask = np.zeros((6, 8), np.uint8)
    mask[2:4, 2:6] = 1
    for stem in ("good1", "good2", "mismatch", "badvalue"):
        Image.new("RGB", (8, 6), (90, 90, 90)).save(root / "images" / f"{stem}.png")
    for stem in ("good1", "good2", "corrupt"):
        Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
    (root / "images" / "corrupt.jpg").write_bytes(os.urandom(1500))
    Image.fromarray(np.zeros((5, 8), np.uint8)).save(root / "masks" / "mismatch.png")
    bad = mask.copy()
    bad[0, 0] = 7
    Image.fromarray(bad).save(root / "masks" / "badvalue.png")
    Image.new("RGB", (8, 6)).save(root / "images" / "orphan.png")
    return root


def test_problem_categories(tmp_path: Path) -> None:
    root = _bad_folder_dataset(tmp_path)
    report = check_dataset(root, progress=False)
    assert report.layout == "folders"
    assert report.pairs == 5
    assert report.usable == ["good1", "good2"]
    assert (
        len(report.unreadable) == 1 and str(root / "images" / "corrupt.jpg") in report.unreadable[0]
    )
    assert len(report.size_mismatch) == 1 and report.size_mismatch[0].startswith("mismatch:")
    assert "8x6" in report.size_mismatch[0] and "8x5" in report.size_mismatch[0]
    assert len(report.bad_mask_values) == 1
    assert str(root / "masks" / "badvalue.png") in report.bad_mask_values[0]
    assert "[7]" in report.bad_mask_values[0]
    assert report.images_without_mask == [str(root / "images" / "orphan.png")]
    assert report.wrong_format == []  # undecodable content has no format to compare
    assert report.problems == 3
    assert report.images_per_class == {"background": 2, "thing": 2}
    assert report.sizes == {"width": [8, 8, 8], "height": [6, 6, 6]}


def test_wrong_format_named_and_multi_picture_jpeg_not(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "classes.yaml").write_text("names: [background, thing]\n")
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "png.jpg", format="PNG")
    Image.new("RGB", (4, 4)).save(
        tmp_path / "images" / "phone.jpg",
        format="MPO",
        save_all=True,
        append_images=[Image.new("RGB", (4, 4))],
    )
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "plain.jpg")
    for stem in ("png", "phone", "plain"):
        Image.new("L", (4, 4)).save(tmp_path / "masks" / f"{stem}.png")
    report = check_dataset(tmp_path, progress=False)
    assert report.wrong_format == [f"{tmp_path / 'images' / 'png.jpg'}: PNG content named .jpg"]
    assert report.usable == ["phone", "plain", "png"]


def test_cli_json_matches(
    quirky_pets: Path, quirky_report: CheckReport, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real_check = check_dataset

    def spy(root: Path, *, progress: bool = True) -> CheckReport:
        calls.append((Path(root), progress))
        return real_check(root, progress=progress)

    monkeypatch.setattr("gcnseg.data.check.check_dataset", spy)
    assert main(["data", "check", str(quirky_pets), "--json"]) == 0
    assert calls == [(quirky_pets, False)]  # no progress bar mixed into the JSON
    data = json.loads(capsys.readouterr().out)
    assert data["pairs"] == data["usable"] == quirky_report.pairs
    assert data["images_per_class"] == quirky_report.images_per_class
    assert len(data["wrong_format"]) == 2 and len(data["strays"]) == 1
    assert data["problems"] == 0
    assert data == json.loads(json.dumps(quirky_report.to_dict()))


def test_cli_strict(tmp_path: Path, capsys) -> None:
    root = _bad_folder_dataset(tmp_path / "bad")
    assert main(["data", "check", str(root), "--json", "--strict"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["pairs"], data["usable"], data["problems"]) == (5, 2, 3)
    assert main(["data", "check", str(root), "--json"]) == 0  # without --strict: report only
    capsys.readouterr()

    good = tmp_path / "good"
    (good / "images").mkdir(parents=True)
    (good / "masks").mkdir()
    (good / "classes.yaml").write_text("names: [background, thing]\n")
    Image.new("RGB", (4, 4)).save(good / "images" / "a.png")
    Image.new("L", (4, 4)).save(good / "masks" / "a.png")
    assert main(["data", "check", str(good), "--strict"]) == 0
    assert "1 pairs, 1 usable" in capsys.readouterr().out


def _assert_one_error_line(err: str, path: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("gcnseg: error: ")
    assert str(path) in lines[0]


def test_cli_missing_root(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nonexistent"
    assert main(["data", "check", str(missing)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    _assert_one_error_line(captured.err, missing)


def test_cli_no_pairs(tmp_path: Path, capsys) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    (tmp_path / "classes.yaml").write_text("names: [background, thing]\n")
    assert main(["data", "check", str(tmp_path)]) == 2
    _assert_one_error_line(capsys.readouterr().err, tmp_path)


def test_float_and_negative_masks_are_bad_values_not_classes(tmp_path: Path) -> None:
    root = _bad_folder_dataset(tmp_path)
    for stem, values in (
        ("fraction", np.full((6, 8), 0.6, np.float32)),
        ("negative", np.full((6, 8), -1, np.int32)),
    ):
        Image.new("RGB", (8, 6)).save(root / "images" / f"{stem}.png")
        Image.fromarray(values).save(root / "masks" / f"{stem}.tif")
    report = check_dataset(root, progress=False)
    assert "fraction" not in report.usable and "negative" not in report.usable
    flagged = " ".join(report.bad_mask_values)
    assert str(root / "masks" / "fraction.tif") in flagged
    assert str(root / "masks" / "negative.tif") in flagged
    assert report.problems == 5


def test_exif_orientation_does_not_turn_dataset_images(tmp_path: Path) -> None:
    """A dataset's image and mask stay aligned as stored, even with a rotation tag."""
    root = _bad_folder_dataset(tmp_path)
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers would show it 6 wide, 8 high; its 8x6 mask matches it stored
    Image.new("RGB", (8, 6), (90, 90, 90)).save(root / "images" / "good1.jpg", exif=exif)
    (root / "images" / "good1.png").unlink()
    report = check_dataset(root, progress=False)
    assert "good1" in report.usable
    assert [line.split(":")[0] for line in report.size_mismatch] == ["mismatch"]
