"""CamVid read as distributed: split folders, built-in classes, void (11) ignored, sky painted."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gcnseg.cli import main
from gcnseg.data.camvid import CAMVID_CLASSES, CAMVID_VOID
from gcnseg.data.check import check_dataset
from gcnseg.data.layouts import index_dataset
from gcnseg.data.splits import load_manifest, make_split, split_samples
from gcnseg.errors import GcnsegError
from smoke import ONE_RANDOM_STEP, set_flags

SPLITS = {"train": ["0001TP_000030", "0006R0_000060", "Seq05VD_000090"], "val": ["0016E5_000120"]}


def _label(seed: int) -> np.ndarray:
    """24×32 labels using every class, with a void (11) stripe."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, len(CAMVID_CLASSES.names), (24, 32)).astype(np.uint8)
    label[:, :3] = CAMVID_VOID
    return label


def _write_split(root: Path, split: str, stems: list[str], seed: int = 0) -> None:
    (root / split).mkdir(parents=True)
    (root / f"{split}annot").mkdir()
    lines = []
    for i, stem in enumerate(stems):
        photo = np.random.default_rng(seed + i).integers(0, 255, (24, 32, 3), np.uint8)
        Image.fromarray(photo).save(root / split / f"{stem}.png")
        Image.fromarray(_label(seed + i)).save(root / f"{split}annot" / f"{stem}.png")
        lines.append(f"/SegNet/CamVid/{split}/{stem}.png /SegNet/CamVid/{split}annot/{stem}.png")
    (root / f"{split}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def camvid(tmp_path: Path) -> Path:
    """train (3) and val (1) as the common distribution has them; no test split."""
    root = tmp_path / "CamVid"
    for seed, (split, stems) in enumerate(SPLITS.items()):
        _write_split(root, split, stems, seed=10 * seed)
    return root


def test_layout_classes_and_void(camvid: Path) -> None:
    index = index_dataset(camvid)
    assert index.layout == "camvid" and index.classes == CAMVID_CLASSES
    assert index.classes.names[0] == "Sky" and index.classes.background is None
    assert index.classes.colors[3] == (128, 64, 128)  # Road, as the README lists it
    sample = next(s for s in index.samples if s.name == SPLITS["train"][0])
    raw = np.asarray(Image.open(sample.mask))
    label = sample.load_label()
    assert np.array_equal(label == 255, raw == CAMVID_VOID) and (label == 255).any()
    assert np.array_equal(label[raw != CAMVID_VOID], raw[raw != CAMVID_VOID])


def test_official_split_is_kept_and_a_missing_test_split_says_so(camvid: Path) -> None:
    index = index_dataset(camvid)
    manifest = make_split(index, val_fraction=0.5, seed=3)
    assert manifest["source"] == "official"
    assert manifest["splits"] == {"train": SPLITS["train"], "val": SPLITS["val"], "test": []}
    assert [s.name for s in split_samples(index, None, "val")] == SPLITS["val"]
    with pytest.raises(GcnsegError, match="the test split is empty") as exc:
        split_samples(index, None, "test")
    assert str(camvid / "testannot") in str(exc.value) and "\n" not in str(exc.value)


def test_the_test_folders_are_the_test_split(camvid: Path) -> None:
    _write_split(camvid, "test", ["0001TP_008550", "Seq05VD_000150"], seed=50)
    index = index_dataset(camvid)
    assert make_split(index)["splits"]["test"] == ["0001TP_008550", "Seq05VD_000150"]
    assert len(split_samples(index, None, "test")) == 2


def test_a_frame_in_two_splits_is_used_in_neither(camvid: Path) -> None:
    stem = SPLITS["train"][0]
    for folder in ("val", "valannot"):
        shutil.copy(camvid / folder.replace("val", "train") / f"{stem}.png", camvid / folder)
    index = index_dataset(camvid)
    assert stem not in {s.name for s in index.samples}
    assert [sorted(p.parent.name for p in paths) for paths in index.clashes] == [["train", "val"]]
    assert stem not in make_split(index)["splits"]["train"]


def test_colour_labels_read_through_the_class_colours(camvid: Path) -> None:
    stem = SPLITS["val"][0]
    path = camvid / "valannot" / f"{stem}.png"
    label = np.asarray(Image.open(path))
    palette = np.array([*CAMVID_CLASSES.colors, (0, 0, 0)], np.uint8)  # void is black
    Image.fromarray(palette[label]).save(path)
    sample = next(s for s in index_dataset(camvid).samples if s.name == stem)
    assert np.array_equal(sample.load_label(), np.where(label == CAMVID_VOID, 255, label))


def test_data_check_counts_each_split(camvid: Path, capsys) -> None:
    report = check_dataset(camvid, progress=False)
    assert report.problems == 0 and report.splits == {"train": 3, "val": 1, "test": 0}
    assert main(["data", "check", str(camvid), "-q"]) == 0
    out = capsys.readouterr().out
    assert "(camvid): 4 pairs, 4 usable" in out
    assert "train 3, val 1, test 0" in out and str(camvid / "test") in out


def test_cli_test_without_the_test_folders_is_one_line(camvid: Path, capsys) -> None:
    assert main(["test", "--data", str(camvid), "--checkpoint", "pets-default"]) == 2
    err = capsys.readouterr().err.strip()
    assert "the test split is empty" in err and str(camvid / "test") in err
    assert len(err.splitlines()) == 1


def test_trains_and_tests_on_its_own_split(
    camvid: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--data", str(camvid), "--epochs", "1", "--name", "cv", "-q"]
    assert main(argv + set_flags(ONE_RANDOM_STEP)) == 0
    run = tmp_path / "runs" / "cv"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["splits"] == {"train": SPLITS["train"], "val": SPLITS["val"], "test": []}
    test = ["test", "--data", str(camvid), "--checkpoint", str(run), "--json", "r.json", "-q"]
    assert main([*test, "--split", "val"]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["images"] == 1 and report["classes"] == list(CAMVID_CLASSES.names)


def test_val_split_without_a_manifest_is_its_own_val(camvid: Path, tmp_path: Path) -> None:
    """A dataset split whole needs no manifest: `split` picks its own val frames, never all."""
    from gcnseg.evaluation.run_split import scored_data

    scored = scored_data("pets-default", camvid, None, "val")
    assert (scored.manifest, scored.split) == (None, "val")
    from gcnseg.data.layouts import index_dataset
    from gcnseg.data.splits import split_samples

    names = [s.name for s in split_samples(index_dataset(camvid), None, "val")]
    assert names == SPLITS["val"]


def test_a_final_model_trains_on_train_and_val(
    camvid: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """A manifest with an empty val split trains on every frame and picks no best.pt; scoring
    its empty val split is one line."""
    monkeypatch.chdir(tmp_path)
    everything = tmp_path / "trainval.json"
    splits = {"train": SPLITS["train"] + SPLITS["val"], "val": [], "test": []}
    everything.write_text(json.dumps({"dataset": "camvid", "splits": splits}))
    argv = ["train", "--data", str(camvid), "--manifest", str(everything), "--epochs", "1"]
    flags = set_flags([*ONE_RANDOM_STEP, "schedule.name=cosine"])  # plateau needs a val split
    assert main([*argv, "--name", "all", "-q", *flags]) == 0
    run = tmp_path / "runs" / "all"
    assert (run / "last.pt").is_file() and not (run / "best.pt").exists()
    capsys.readouterr()
    assert main(["test", "--checkpoint", str(run), "--split", "val", "-q"]) == 2
    assert capsys.readouterr().err == (
        f"gcnseg: error: {run / 'manifest.json'}: the val split is empty\n"
    )
    test = ["test", "--checkpoint", str(run), "--split", "train", "--json", "r.json", "-q"]
    assert main(test) == 0
    assert json.loads((tmp_path / "r.json").read_text())["images"] == 4


def test_a_train_and_val_manifest_is_one_command(camvid: Path, tmp_path: Path, capsys) -> None:
    """`data split --train-on-val`: val joins train, sorted as the committed manifest; test kept."""
    _write_split(camvid, "test", ["Seq05VD_000150"], seed=20)
    out = tmp_path / "trainval.json"
    assert main(["data", "split", str(camvid), "--train-on-val", "--out", str(out), "-q"]) == 0
    splits = load_manifest(out)["splits"]
    assert splits == {
        "train": sorted(SPLITS["train"] + SPLITS["val"]),
        "val": [],
        "test": ["Seq05VD_000150"],
    }
    assert "official split: train 4, val 0, test 1" in capsys.readouterr().out


def test_the_committed_train_and_val_manifest() -> None:
    """manifests/camvid-trainval.json: CamVid's 367 train and 101 val frames, no val, no test."""
    path = Path(__file__).resolve().parents[2] / "manifests" / "camvid-trainval.json"
    splits = load_manifest(path)["splits"]
    assert (splits["val"], splits["test"]) == ([], [])
    sequences = Counter(name.split("_")[0] for name in splits["train"])
    assert sequences == {"0001TP": 62, "0006R0": 101, "0016E5": 305}
