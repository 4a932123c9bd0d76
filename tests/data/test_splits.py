"""make_split: seeded, stratified, disjoint; official lists; max_side; manifests; `data split`."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcnseg.cli import main
from gcnseg.data import images
from gcnseg.data.layouts import index_dataset
from gcnseg.data.samples import DatasetIndex
from gcnseg.data.splits import load_manifest, make_split, save_manifest, select, split_samples
from gcnseg.errors import GcnsegError


@pytest.fixture(scope="module")
def pets_index(tiny_pets: Path) -> DatasetIndex:
    return index_dataset(tiny_pets)


def _sets(manifest: dict) -> tuple[set[str], set[str], set[str]]:
    splits = manifest["splits"]
    return set(splits["train"]), set(splits["val"]), set(splits["test"])


def test_seeded_split_is_deterministic(pets_index: DatasetIndex) -> None:
    first = make_split(pets_index, seed=3)
    assert first["source"] == "seeded"
    assert make_split(pets_index, seed=3) == first
    other = make_split(pets_index, seed=4)
    assert other["splits"]["test"] != first["splits"]["test"]
    assert other["splits"]["val"] != first["splits"]["val"]


def test_seeded_split_partitions_and_stratifies(pets_index: DatasetIndex) -> None:
    manifest = make_split(pets_index, seed=0, test_fraction=0.2, val_fraction=0.1)
    train, val, test = _sets(manifest)
    assert not train & val and not train & test and not val & test
    assert train | val | test == {s.name for s in pets_index.samples}
    for names in manifest["splits"].values():
        assert len(names) == len(set(names))  # no duplicates inside a split either

    breeds = Counter(s.group for s in pets_index.samples)
    group = {s.name: s.group for s in pets_index.samples}
    test_per_breed = Counter(group[n] for n in test)
    val_per_breed = Counter(group[n] for n in val)
    for breed, count in breeds.items():
        # Each breed's share is rounded on its own: within half an image of the fraction.
        assert abs(test_per_breed[breed] - 0.2 * count) <= 0.5, breed
        rest = count - test_per_breed[breed]
        assert abs(val_per_breed[breed] - 0.1 * rest) <= 0.5, breed
        # A share above half an image gets one: with a few images per breed no split is empty.
        assert test_per_breed[breed] >= (0.2 * count > 0.5), breed
        assert val_per_breed[breed] >= (0.1 * rest > 0.5), breed
    assert abs(len(test) - 0.2 * len(pets_index.samples)) <= len(breeds) / 2


def test_fractions_are_validated(pets_index: DatasetIndex) -> None:
    with pytest.raises(GcnsegError, match="fractions"):
        make_split(pets_index, test_fraction=1.0)
    with pytest.raises(GcnsegError, match="fractions"):
        make_split(pets_index, val_fraction=-0.1)


def test_max_side_drops_exactly_the_large_images(pets_index: DatasetIndex) -> None:
    sides = {s.name: max(images.image_size(s.image)) for s in pets_index.samples}
    max_side = sorted(set(sides.values()))[-2]  # images exactly this long are dropped too
    expected_kept = {name for name, side in sides.items() if side < max_side}
    assert expected_kept and len(expected_kept) < len(sides)
    manifest = make_split(pets_index, seed=0, max_side=max_side)
    assert manifest["max_side"] == max_side
    train, val, test = _sets(manifest)
    assert train | val | test == expected_kept
    assert len(train) + len(val) + len(test) == len(expected_kept)


def _oxford(root: Path, stems: list[str]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    for stem in stems:
        Image.new("RGB", (4, 3)).save(root / "images" / f"{stem}.jpg")
        Image.fromarray(np.full((3, 4), 2, np.uint8)).save(
            root / "annotations" / "trimaps" / f"{stem}.png"
        )
    return root


def test_official_lists_are_used(tmp_path: Path) -> None:
    stems = [f"Bengal_{i}" for i in range(1, 21)] + [f"boxer_{i}" for i in range(1, 21)]
    root = _oxford(tmp_path, stems)
    official_test = [f"Bengal_{i}" for i in range(1, 6)] + ["boxer_7", "boxer_99"]  # 99: no pair
    trainval = [s for s in stems if s not in official_test]
    (root / "annotations" / "test.txt").write_text("".join(f"{n} 1 1 1\n" for n in official_test))
    (root / "annotations" / "trainval.txt").write_text("".join(f"{n} 1 1 1\n" for n in trainval))
    index = index_dataset(root)

    manifest = make_split(index, seed=1)
    assert manifest["source"] == "official"
    train, val, test = _sets(manifest)
    assert test == set(official_test) - {"boxer_99"}
    assert train | val == set(trainval) and not train & val
    assert len(val) == 4  # 15 Bengal + 19 boxer in trainval -> round(1.5) + round(1.9)
    assert make_split(index, seed=2)["splits"]["test"] == manifest["splits"]["test"]

    seeded = make_split(index, seed=1, use_official=False)
    assert seeded["source"] == "seeded"
    assert set(seeded["splits"]["test"]) != test


def test_manifest_round_trip(pets_index: DatasetIndex, tmp_path: Path) -> None:
    manifest = make_split(pets_index, seed=5)
    path = tmp_path / "sub" / "manifest.json"
    save_manifest(path, manifest)
    assert load_manifest(path) == manifest
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]  # no temp files left


@pytest.mark.parametrize(
    "content",
    [
        os.urandom(256),
        b'{"splits": {"train": [], "val": []',
        b"[1, 2, 3]",
        b'{"splits": null}',
        b'{"splits": {"train": [], "val": []}}',
        b'{"splits": {"train": 3, "val": [], "test": []}}',
    ],
    ids=["binary", "truncated", "list", "null-splits", "missing-test", "not-a-list"],
)
def test_load_broken_manifest(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "m.json"
    path.write_bytes(content)
    with pytest.raises(GcnsegError) as exc:
        load_manifest(path)
    assert str(path) in str(exc.value)
    assert "\n" not in str(exc.value)


def test_load_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(GcnsegError, match="manifest not found"):
        load_manifest(tmp_path / "absent.json")
    with pytest.raises(GcnsegError, match="cannot read manifest"):
        load_manifest(tmp_path)  # a folder


def test_select(pets_index: DatasetIndex) -> None:
    first, second = pets_index.samples[-1].name, pets_index.samples[0].name
    picked = select(pets_index, [first, second])
    assert [s.name for s in picked] == [first, second]  # in the order asked
    assert picked[0].image.name == f"{first}.jpg"
    with pytest.raises(GcnsegError, match="1 split names have no image/mask pair") as exc:
        select(pets_index, [second, "Unicorn_1"])
    assert "Unicorn_1" in str(exc.value)


def test_cli_split_writes_manifest(
    tiny_pets: Path, pets_index: DatasetIndex, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "m.json"
    assert main(["data", "split", str(tiny_pets), "--out", str(out), "--seed", "7"]) == 0
    manifest = load_manifest(out)
    assert manifest == make_split(pets_index, seed=7)
    counts = {k: len(v) for k, v in manifest["splits"].items()}
    assert all(counts.values())
    stdout = capsys.readouterr().out
    expected = f"seeded split: train {counts['train']}, val {counts['val']}, test {counts['test']}"
    assert str(out) in stdout and expected in stdout


def test_a_seeded_split_can_train_on_val(pets_index: DatasetIndex) -> None:
    """Val joins train; test is the same held-out set as without the option."""
    usual = make_split(pets_index, seed=3)["splits"]
    final = make_split(pets_index, seed=3, train_on_val=True)["splits"]
    assert final["val"] == [] and final["test"] == usual["test"]
    assert final["train"] == sorted(usual["train"] + usual["val"])


def test_cli_split_max_side_with_corrupt_image(tmp_path: Path, capsys) -> None:
    root = _oxford(tmp_path / "pets", ["Bengal_1", "Bengal_2"])
    corrupt = root / "images" / "Bengal_2.jpg"
    corrupt.write_bytes(os.urandom(512))
    out = tmp_path / "m.json"
    assert main(["data", "split", str(root), "--out", str(out), "--max-side", "600"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gcnseg: error: ")
    assert str(corrupt) in err[0]
    assert not out.exists()


@pytest.mark.parametrize(
    ("splits", "message"),
    [
        ({"train": ["a", "b"], "val": ["b"], "test": ["c"]}, "'b' is in both train and val"),
        ({"train": ["a"], "val": ["b"], "test": ["a"]}, "'a' is in both train and test"),
        ({"train": ["a", "a"], "val": [], "test": []}, "'a' is listed twice in train"),
        ({"train": [1], "val": [], "test": []}, "must list sample names"),
    ],
    ids=["train-val", "train-test", "duplicate", "not-names"],
)
def test_overlapping_manifest_is_refused(tmp_path: Path, splits: dict, message: str) -> None:
    """Training on a test image would inflate every reported number: refuse the manifest."""
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"splits": splits}))
    with pytest.raises(GcnsegError, match=message) as exc:
        load_manifest(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_cli_split_max_side_drops_a_too_large_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A decompression bomb is larger than any max_side: reported, dropped, the split goes on."""
    root = _oxford(tmp_path / "pets", ["Bengal_1", "Bengal_2", "Bengal_3"])
    Image.new("RGB", (8, 6)).save(root / "images" / "Bengal_2.jpg")
    monkeypatch.setattr(images, "MAX_PIXELS", 4 * 3)  # 4x3 images pass, 8x6 is "too large"
    out = tmp_path / "m.json"
    with caplog.at_level("WARNING", logger="gcnseg.data.splits"):
        code = main(["data", "split", str(root), "--out", str(out), "--max-side", "600"])
    assert code == 0
    names = [n for split in load_manifest(out)["splits"].values() for n in split]
    assert sorted(names) == ["Bengal_1", "Bengal_3"]
    assert any("Bengal_2.jpg: image too large" in r.getMessage() for r in caplog.records)


SPLIT = {"train": ["a"], "val": ["b"], "test": []}


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"splits": SPLIT, "seeds": 1}, "unknown manifest key 'seeds'"),
        ({"splits": {**SPLIT, "validation": []}}, "`splits` with exactly train, val, test"),
        ({"splits": SPLIT, "source": "random"}, "source must be seeded or official"),
        ({"splits": SPLIT, "seed": "0"}, "seed must be an int"),
        ({"splits": SPLIT, "val_fraction": 1.5}, r"val_fraction must be a number in \[0, 1\)"),
        ({"splits": SPLIT, "max_side": 0}, "max_side must be a positive int or null"),
        ({"splits": SPLIT, "dataset": 3}, "dataset must be a layout name"),
        ({"splits": SPLIT, "classes": {"names": "a b"}}, "manifest classes: names must be a list"),
    ],
)
def test_manifest_keys_are_checked_strictly(tmp_path: Path, manifest: dict, message: str) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    with pytest.raises(GcnsegError, match=message) as exc:
        load_manifest(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_a_bare_splits_manifest_is_a_hand_made_split(pets_index: DatasetIndex, tmp_path) -> None:
    names = sorted(s.name for s in pets_index.samples)
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"splits": {"train": names[:3], "val": names[3:4], "test": []}}))
    assert load_manifest(path)["splits"]["train"] == names[:3]
    assert [s.name for s in split_samples(pets_index, path, "val")] == names[3:4]
    with pytest.raises(GcnsegError, match=f"{path}: the test split is empty"):
        split_samples(pets_index, path, "test")
