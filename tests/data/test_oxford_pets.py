"""index_dataset: the Oxford-IIIT Pet layout (generated + real sample) and images/ + masks/ folders."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _data import make_tiny_pets
from gcnseg.classes import IGNORE_INDEX
from gcnseg.data.layouts import index_dataset
from gcnseg.data.oxford_pets import PETS
from gcnseg.errors import GcnsegError

TRIMAP = np.array([[1, 1, 2], [3, 2, 1]], np.uint8)  # 1 pet, 2 background, 3 border


def _oxford(root: Path, stems: list[str], list_lines: list[str] | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    for stem in stems:
        Image.new("RGB", (3, 2), (50, 60, 70)).save(root / "images" / f"{stem}.jpg")
        Image.fromarray(TRIMAP, mode="L").save(root / "annotations" / "trimaps" / f"{stem}.png")
    if list_lines is not None:
        header = ["#Image CLASS-ID SPECIES BREED ID", "#SPECIES: 1:Cat 2:Dog"]
        (root / "annotations" / "list.txt").write_text("\n".join(header + list_lines) + "\n")
    return root


def _folders(root: Path, stems: list[str]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for stem in stems:
        Image.new("RGB", (4, 3)).save(root / "images" / f"{stem}.png")
        Image.new("L", (4, 3), 1).save(root / "masks" / f"{stem}.png")
    return root


def _list_txt(root: Path) -> dict[str, int]:
    """Species (1 cat, 2 dog) per image name, as the generator wrote them to list.txt."""
    lines = (root / "annotations" / "list.txt").read_text().splitlines()
    return {f[0]: int(f[2]) for f in (ln.split() for ln in lines if not ln.startswith("#"))}


def test_index_generated_pets(tiny_pets: Path) -> None:
    index = index_dataset(tiny_pets)
    species = _list_txt(tiny_pets)
    assert index.layout == "oxford-pets"
    assert index.classes == PETS
    assert sorted(s.name for s in index.samples) == sorted(species)
    assert {s.name: s.decoder.pet_class for s in index.samples} == species
    assert {s.name: s.group for s in index.samples} == {n: n.rsplit("_", 1)[0] for n in species}
    assert index.strays == index.images_without_mask == index.masks_without_image == []
    assert index.official_splits == {}


def test_index_generated_official_lists(tmp_path: Path) -> None:
    root = make_tiny_pets(tmp_path / "pets", official_splits=True)
    lists = {name: root / "annotations" / f"{name}.txt" for name in ("trainval", "test")}
    splits = {
        name: [ln.split()[0] for ln in p.read_text().splitlines()] for name, p in lists.items()
    }
    assert splits["trainval"] and splits["test"]
    assert index_dataset(root).official_splits == splits


def test_generated_trimap_decodes_to_pet_background_ignore(tiny_pets: Path) -> None:
    index, species_of = index_dataset(tiny_pets), _list_txt(tiny_pets)
    for species in (1, 2):
        sample = next(s for s in index.samples if species_of[s.name] == species)
        label = sample.load_label()
        assert label.dtype == np.uint8
        assert set(np.unique(label).tolist()) == {0, species, IGNORE_INDEX}, sample.name


# The real sample: its exact counts, strays and breeds (skips without ../shared).
def test_index_real_sample(pets_root: Path) -> None:
    index = index_dataset(pets_root)
    assert index.layout == "oxford-pets"
    assert index.classes == PETS
    assert len(index.samples) == 506
    assert len({s.name for s in index.samples}) == 506
    species = Counter(s.decoder.pet_class for s in index.samples)
    assert species == {1: 329, 2: 177}
    assert sorted(p.name for p in index.strays) == [
        "Abyssinian_100.mat",
        "Abyssinian_101.mat",
        "Abyssinian_102.mat",
    ]
    assert index.images_without_mask == [] and index.masks_without_image == []
    assert index.official_splits == {}
    by_name = {s.name: s for s in index.samples}
    assert by_name["Abyssinian_34"].decoder.pet_class == 1
    assert by_name["american_bulldog_10"].decoder.pet_class == 2
    assert by_name["american_bulldog_10"].group == "american_bulldog"
    assert by_name["Egyptian_Mau_18"].group == "Egyptian_Mau"
    assert len({s.group for s in index.samples}) == 30


@pytest.mark.parametrize(("stem", "pet_class"), [("Bengal_1", 1), ("boxer_1", 2)])
def test_trimap_decoding(tmp_path: Path, stem: str, pet_class: int) -> None:
    index = index_dataset(_oxford(tmp_path, [stem]))
    (sample,) = index.samples
    assert sample.decoder.pet_class == pet_class
    label = sample.load_label()
    expected = np.array([[pet_class, pet_class, 0], [255, 0, pet_class]], np.uint8)
    np.testing.assert_array_equal(label, expected)


def test_list_txt_species_beats_capitalisation(tmp_path: Path) -> None:
    # Lower case would mean dog by the naming convention; list.txt says species 1 (cat).
    root = _oxford(
        tmp_path,
        ["odd_cat_1", "Odd_dog_1", "unlisted_1", "Unlisted_2"],
        ["odd_cat_1 99 1 1", "Odd_dog_1 98 2 1"],
    )
    classes = {s.name: s.decoder.pet_class for s in index_dataset(root).samples}
    assert classes == {"odd_cat_1": 1, "Odd_dog_1": 2, "unlisted_1": 2, "Unlisted_2": 1}
    sample = next(s for s in index_dataset(root).samples if s.name == "odd_cat_1")
    assert sample.load_label()[0, 0] == 1  # pet pixels become "cat"


def test_oxford_unpaired_files_and_official_lists(tmp_path: Path) -> None:
    root = _oxford(tmp_path, ["Bengal_1", "Bengal_2"])
    Image.new("RGB", (3, 2)).save(root / "images" / "Bengal_3.jpg")  # no trimap
    Image.fromarray(TRIMAP).save(root / "annotations" / "trimaps" / "Bengal_4.png")  # no image
    (root / "images" / "Bengal_1.mat").write_bytes(b"MATLAB")
    (root / "annotations" / "trainval.txt").write_text("Bengal_1 1 1 1\n\n")
    (root / "annotations" / "test.txt").write_text("Bengal_2 1 1 1\n")
    index = index_dataset(root)
    assert [s.name for s in index.samples] == ["Bengal_1", "Bengal_2"]
    assert [p.name for p in index.images_without_mask] == ["Bengal_3.jpg"]
    assert [p.name for p in index.masks_without_image] == ["Bengal_4.png"]
    assert [p.name for p in index.strays] == ["Bengal_1.mat"]
    assert index.official_splits == {"trainval": ["Bengal_1"], "test": ["Bengal_2"]}


def test_folders_with_classes_yaml(tmp_path: Path) -> None:
    root = _folders(tmp_path, ["a", "b", "c"])
    Image.new("RGB", (4, 3)).save(root / "images" / "lonely.png")
    (root / "classes.yaml").write_text(
        "names: [background, road, car]\ncolors: [[0, 0, 0], [128, 64, 128], [0, 0, 142]]\n"
    )
    index = index_dataset(root)
    assert index.layout == "folders"
    assert index.classes.names == ("background", "road", "car")
    assert index.classes.colors == ((0, 0, 0), (128, 64, 128), (0, 0, 142))
    assert [s.name for s in index.samples] == ["a", "b", "c"]
    assert all(s.decoder is None for s in index.samples)
    assert [p.name for p in index.images_without_mask] == ["lonely.png"]
    # Folder masks are class indices already: no trimap decoding.
    assert (index.samples[0].load_label() == 1).all()


def test_folders_with_classes_json(tmp_path: Path) -> None:
    root = _folders(tmp_path, ["a"])
    (root / "classes.json").write_text(json.dumps({"names": ["background", "lesion"]}))
    index = index_dataset(root)
    assert index.classes.names == ("background", "lesion")
    assert len(index.classes.colors) == 2
    assert index.classes.colors[0] == (0, 0, 0)
    assert index.classes.colors[1] != (0, 0, 0)


def test_folders_colors_must_match_names(tmp_path: Path) -> None:
    root = _folders(tmp_path, ["a"])
    (root / "classes.yaml").write_text("names: [a, b, c]\ncolors: [[0, 0, 0]]\n")
    with pytest.raises(GcnsegError, match="3 class names but 1 colours"):
        index_dataset(root)


def test_bad_classes_file(tmp_path: Path) -> None:
    root = _folders(tmp_path, ["a"])
    (root / "classes.yaml").write_text("just a string\n")
    with pytest.raises(GcnsegError, match=r"classes\.yaml: bad class file"):
        index_dataset(root)


def test_missing_classes_file(tmp_path: Path) -> None:
    root = _folders(tmp_path, ["a"])
    with pytest.raises(GcnsegError, match=r"no classes\.yaml") as exc:
        index_dataset(root)
    assert str(root) in str(exc.value)


def test_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "x.jpg").write_bytes(b"")
    with pytest.raises(GcnsegError, match="not a dataset") as exc:
        index_dataset(tmp_path)
    assert str(tmp_path) in str(exc.value)


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(GcnsegError, match="not found") as exc:
        index_dataset(missing)
    assert str(missing) in str(exc.value)
