"""End to end on generated pet images: train, resume exactly, test, predict, checkpoint round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _data import assert_predicted, write_odd_images
from gcnseg.checkpoint import load_checkpoint
from gcnseg.cli import main
from gcnseg.config import load_config
from gcnseg.data.layouts import index_dataset
from gcnseg.data.splits import save_manifest
from gcnseg.errors import GcnsegError
from gcnseg.evaluation.report import run_test
from gcnseg.inference.predict import predict_files
from gcnseg.source import read_model
from gcnseg.training import loop as train_module
from gcnseg.training.loop import train
from smoke import TINY_TRAINING

TINY = [
    *TINY_TRAINING,
    "data.batch_size=2",
    "data.eval_batch_size=4",
    "schedule.name=cosine",
    "schedule.warmup_epochs=0.5",
]


@pytest.fixture(scope="module")
def manifest(tiny_pets: Path, tmp_path_factory) -> Path:
    names = sorted(s.name for s in index_dataset(tiny_pets).samples)
    cats, dogs = [n for n in names if n[0].isupper()], [n for n in names if n[0].islower()]
    path = tmp_path_factory.mktemp("split") / "manifest.json"
    save_manifest(
        path,
        {
            "splits": {
                "train": cats[:3] + dogs[:3],
                "val": cats[3:5] + dogs[3:5],
                "test": cats[5:7] + dogs[5:7],
            }
        },
    )
    return path


def _config(root: Path, manifest: Path, out: Path, name: str, *extra: str):
    overrides = [
        *TINY,
        f"data.root={root}",
        f"data.manifest={manifest}",
        f"train.output={out}",
        f"train.name={name}",
    ]
    return load_config("pets_gcn_lite0", overrides + list(extra))


def _train_until_ctrl_c(cfg, monkeypatch, at_step: int) -> None:
    """Train `cfg` until a Ctrl-C arrives instead of training step `at_step` (counted from 1)."""
    real_step = train_module._train_step
    calls = {"n": 0}

    def interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at_step:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train_module, "_train_step", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress_bar=False)
    monkeypatch.setattr(train_module, "_train_step", real_step)


@pytest.fixture(scope="module")
def trained_run(tiny_pets: Path, manifest: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return train(_config(tiny_pets, manifest, out, "full", "train.epochs=2"), progress_bar=False)


def test_run_folder_holds_everything(trained_run: Path) -> None:
    for name in (
        "best.pt",
        "last.pt",
        "config.yaml",
        "manifest.json",
        "metrics.jsonl",
        "steps.jsonl",
        "learning_curve.png",
    ):
        assert (trained_run / name).is_file(), name
    records = [
        json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in records] == [0, 1]
    assert all(np.isfinite(r["train_loss"]) and 0 <= r["val_miou"] <= 1 for r in records)
    steps = (trained_run / "steps.jsonl").read_text().splitlines()
    assert len(steps) == 2 * 3  # 6 images, batch 2


def test_checkpoint_round_trip(trained_run: Path) -> None:
    payload = load_checkpoint(trained_run / "last.pt")
    trained = read_model(trained_run / "last.pt")
    model, cfg, classes = trained.model, trained.config, trained.classes
    assert classes.names == ("background", "cat", "dog")
    assert cfg.data.crop_size == 64
    for key, value in model.state_dict().items():
        assert torch.equal(value, payload["model"][key]), key
    assert payload["progress"]["epoch"] == 2
    assert {"optimizer", "schedule", "torch_rng", "metrics"} <= payload.keys()


def test_interrupted_run_resumes_to_identical_weights(
    tiny_pets: Path, manifest: Path, trained_run: Path, tmp_path, monkeypatch
) -> None:
    cut = _config(tiny_pets, manifest, tmp_path, "cut", "train.epochs=2")
    _train_until_ctrl_c(cut, monkeypatch, at_step=5)  # epoch 2, second step
    saved = load_checkpoint(tmp_path / "cut" / "last.pt")["progress"]
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 1)
    train(None, resume=tmp_path / "cut", progress_bar=False)
    resumed = load_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    uninterrupted = load_checkpoint(trained_run / "last.pt")["model"]
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=key)
    epochs = [
        json.loads(x)["epoch"]
        for x in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()
    ]
    assert epochs == [0, 1]


def test_ema_run_saves_both_weights_and_resumes_exactly(
    tiny_pets: Path,
    manifest: Path,
    tmp_path: Path,
    monkeypatch,
) -> None:
    extra = ("train.epochs=2", "train.ema_decay=0.9", "train.label_smoothing=0.1")
    full = train(_config(tiny_pets, manifest, tmp_path, "full", *extra), progress_bar=False)
    payload = load_checkpoint(full / "last.pt")
    assert payload["model"].keys() == payload["training_model"].keys()
    assert any(
        not torch.equal(payload["model"][k], payload["training_model"][k])
        for k in payload["model"]
        if payload["model"][k].is_floating_point()
    ), "the EMA is a copy of the trained weights"

    _train_until_ctrl_c(
        _config(tiny_pets, manifest, tmp_path, "cut", *extra), monkeypatch, at_step=5
    )
    train(None, resume=tmp_path / "cut", progress_bar=False)
    resumed = load_checkpoint(tmp_path / "cut" / "last.pt")
    for part in ("model", "training_model"):
        for key, value in payload[part].items():
            torch.testing.assert_close(resumed[part][key], value, rtol=0, atol=1e-6, msg=key)


def test_a_manifest_without_val_trains_on_everything_and_keeps_the_last_epoch(
    tiny_pets: Path, manifest: Path, tmp_path: Path, monkeypatch
) -> None:
    splits = json.loads(manifest.read_text())["splits"]
    everything = tmp_path / "trainval.json"
    save_manifest(
        everything, {"splits": {**splits, "train": splits["train"] + splits["val"], "val": []}}
    )
    run = train(
        _config(tiny_pets, everything, tmp_path, "all", "train.epochs=2"), progress_bar=False
    )
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1]
    assert not any(key.startswith("val_") for r in records for key in r)
    assert len((run / "steps.jsonl").read_text().splitlines()) == 2 * 5  # 10 images, batch 2
    assert not (run / "best.pt").exists() and (run / "learning_curve.png").is_file()
    assert read_model(run).metrics == records[-1]  # the run folder's model is last.pt

    cut = _config(tiny_pets, everything, tmp_path, "cut", "train.epochs=2")
    _train_until_ctrl_c(cut, monkeypatch, at_step=7)  # epoch 2, second step
    train(None, resume=tmp_path / "cut", progress_bar=False)
    resumed = load_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    for key, value in load_checkpoint(run / "last.pt")["model"].items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=1e-6, msg=key)


def test_the_time_budget_ends_the_run_and_its_schedule_and_a_resume_can_lift_it(
    tiny_pets: Path, manifest: Path, tmp_path: Path, caplog
) -> None:
    budget = "train.time_budget_min=0.0001"  # any epoch overruns it
    with caplog.at_level("INFO", logger="gcnseg.training.loop"):
        cut = train(
            _config(tiny_pets, manifest, tmp_path, "cut", "train.epochs=3", budget),
            progress_bar=False,
        )
    assert len((cut / "metrics.jsonl").read_text().splitlines()) == 1
    assert "the run now ends after epoch 1 of 3" in caplog.text
    assert "time budget of 0.0 min reached after epoch 1 of 3" in caplog.text
    state = load_checkpoint(cut / "last.pt")
    assert state["progress"]["planned_epochs"] == 1
    # The cosine schedule was shortened to the one epoch that fitted: its rate is at the floor,
    # not at the ~75% of a 3-epoch schedule after one epoch.
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(1e-6)
    caplog.clear()
    with caplog.at_level("INFO", logger="gcnseg.training.loop"):
        whole = train(
            _config(tiny_pets, manifest, tmp_path, "one", "train.epochs=1", budget),
            progress_bar=False,
        )
    assert len((whole / "metrics.jsonl").read_text().splitlines()) == 1
    assert "time budget" not in caplog.text  # the run ended by its epochs, not the budget
    train(None, resume=cut, resume_overrides=["train.time_budget_min=none"], progress_bar=False)
    assert len((cut / "metrics.jsonl").read_text().splitlines()) == 3
    assert load_checkpoint(cut / "last.pt")["progress"]["planned_epochs"] is None


@pytest.mark.parametrize(
    ("budget_min", "done", "elapsed_s", "expected"),
    [
        (10, 2, 120, 10),  # 1 minute an epoch: 10 fit
        (12, 2, 300, 4),  # 2.5 minutes an epoch: 4 fit (a 5th would overrun)
        (100, 2, 120, 30),  # never more than train.epochs
        (1, 3, 600, 3),  # an overrun budget ends the run where it stands
    ],
)
def test_epochs_that_fit_the_budget(budget_min, done, elapsed_s, expected) -> None:
    assert train_module.epochs_that_fit(budget_min, done, elapsed_s, most=30) == expected


def test_non_finite_loss_stops_with_a_checkpoint(tiny_pets: Path, manifest: Path, tmp_path) -> None:
    cfg = _config(
        tiny_pets,
        manifest,
        tmp_path,
        "nan",
        "train.epochs=1",
        "optim.lr=1e30",
        "optim.grad_clip=none",
    )
    with pytest.raises(GcnsegError, match="loss became"):
        train(cfg, progress_bar=False)
    payload = load_checkpoint(tmp_path / "nan" / "last.pt")
    assert all(torch.isfinite(v).all() for v in payload["model"].values() if v.is_floating_point())


def test_test_command_reports_at_original_resolution(
    trained_run: Path, tiny_pets: Path, manifest: Path, tmp_path
) -> None:
    report = run_test(
        str(trained_run), tiny_pets, manifest=manifest, split="test", json_out=tmp_path / "r.json", worst=2,
        draw_dir=tmp_path / "draw", out_dir=tmp_path,
    )  # fmt: skip
    data = json.loads((tmp_path / "r.json").read_text())
    names = json.loads(manifest.read_text())["splits"]["test"]
    total = 0
    for name in names:
        trimap = np.asarray(Image.open(tiny_pets / "annotations" / "trimaps" / f"{name}.png"))
        total += int((trimap != 3).sum())
    assert sum(map(sum, data["confusion_matrix"])) == total  # every non-border pixel, at full size
    assert report.scored == report.listed == 4 and set(data["per_image"]) == set(names)
    assert (tmp_path / "confusion_matrix.png").is_file() and (tmp_path / "worst.png").is_file()
    assert sorted(p.stem for p in (tmp_path / "draw").iterdir()) == sorted(names)
    assert "mean image accuracy" in report.format()
    # Oxford layout: per breed, each the mean of its own images' scores, worst first
    breeds = data["breeds"]
    assert sum(b["images"] for b in breeds.values()) == len(names)
    for breed, row in breeds.items():
        own = [s for n, s in data["per_image"].items() if n.rsplit("_", 1)[0] == breed]
        assert row["mean_image_accuracy"] == pytest.approx(
            np.mean([s["pixel_accuracy"] for s in own])
        )
    accuracies = [b["mean_image_accuracy"] for b in breeds.values()]
    assert accuracies == sorted(accuracies)
    assert "5 worst breeds" in report.format()
    assert "test_time_augmentation" not in data


def test_a_run_folder_is_tested_on_its_own_test_split_without_data(
    trained_run: Path, tiny_pets: Path, manifest: Path, capsys
) -> None:
    assert main(["test", "--checkpoint", str(trained_run), "--worst", "0", "-q"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"4 images of {tiny_pets.resolve()} (test), {trained_run}")
    assert main(["test", "--checkpoint", str(trained_run), "--split", "val", "-q"]) == 0
    val = len(json.loads(manifest.read_text())["splits"]["val"])
    assert capsys.readouterr().out.startswith(f"{val} images of {tiny_pets.resolve()} (val)")


def test_predict_segments_the_test_split_of_a_run(
    trained_run: Path, manifest: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert main(["predict", "--checkpoint", str(trained_run), "--out", str(out), "-q"]) == 0
    test = json.loads(manifest.read_text())["splits"]["test"]
    assert sorted(p.name for p in out.glob("*_mask.png")) == sorted(f"{n}_mask.png" for n in test)


def test_test_time_augmentation_is_recorded(
    trained_run: Path, tiny_pets: Path, manifest: Path, tmp_path
) -> None:
    out = tmp_path / "r.json"
    run_test(
        str(trained_run), tiny_pets, manifest=manifest, split="test", json_out=out,
        flip=True, scales=(0.75, 1.0), worst=0,
    )  # fmt: skip
    data = json.loads(out.read_text())
    assert data["test_time_augmentation"] == {"flip": True, "scales": [0.75, 1.0]}
    assert 0 <= data["miou"] <= 1


def test_predict_odd_formats_and_skips_unreadable(
    trained_run: Path, tiny_pets: Path, tmp_path
) -> None:
    inputs = write_odd_images(tiny_pets / "images" / "Abyssinian_1.jpg", tmp_path / "in")
    out = tmp_path / "out"
    summary = predict_files(
        [str(tmp_path / "in")], checkpoint=str(trained_run), out_dir=out, device="cpu"
    )
    assert summary.written == 5  # broken.jpg reported and skipped
    assert len(summary.skipped) == 1 and "broken.jpg" in summary.skipped[0]
    assert_predicted(inputs, out, num_classes=3)


def test_predict_draws_a_panel_when_ground_truth_exists(
    trained_run: Path, tiny_pets: Path, tmp_path
) -> None:
    image = tiny_pets / "images" / "Abyssinian_1.jpg"
    predict_files(
        [str(image)], checkpoint=str(trained_run), out_dir=tmp_path, device="cpu", flip=True
    )
    panel = Image.open(tmp_path / "Abyssinian_1_panel.png")
    assert panel.width == 3 * Image.open(image).width


def test_release_is_fp16_and_loads_by_path(trained_run: Path, tmp_path) -> None:
    from gcnseg.checkpoint import save_release

    out = save_release(read_model(trained_run / "best.pt"), tmp_path / "release.pt")
    payload = load_checkpoint(out)
    assert "optimizer" not in payload
    assert all(v.dtype == torch.float16 for v in payload["model"].values() if v.is_floating_point())
    model = read_model(out).model
    full = read_model(trained_run / "best.pt").model
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        agree = (model(x).argmax(1) == full(x).argmax(1)).float().mean()
    assert agree > 0.99


def test_gzipped_release_is_smaller_and_loads_the_same(trained_run: Path, tmp_path) -> None:
    from gcnseg.checkpoint import save_release

    trained = read_model(trained_run / "best.pt")
    plain = save_release(trained, tmp_path / "release.pt")
    packed = save_release(trained, tmp_path / "release.pt.gz")
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert packed.stat().st_size < plain.stat().st_size
    a, b = load_checkpoint(plain), load_checkpoint(packed)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["config"] == b["config"]


def test_corrupt_gzipped_checkpoint_is_one_clear_error(tmp_path) -> None:
    from gcnseg.errors import GcnsegError

    bad = tmp_path / "broken.pt.gz"
    bad.write_bytes(b"\x1f\x8b" + b"not really gzip")
    with pytest.raises(GcnsegError, match=r"broken\.pt\.gz: not a readable checkpoint"):
        load_checkpoint(bad)


def test_tensorboard_logging_when_installed(
    tiny_pets: Path, manifest: Path, tmp_path, monkeypatch
) -> None:
    """With `train.tensorboard`, every epoch's float metrics go to a SummaryWriter in the run."""
    import sys
    import types

    written: list[tuple[str, float, int]] = []

    class FakeWriter:
        def __init__(self, log_dir: str) -> None:
            self.log_dir = log_dir

        def add_scalar(self, key: str, value: float, step: int) -> None:
            written.append((key, value, step))

        def flush(self) -> None:
            pass

    monkeypatch.setitem(
        sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter)
    )
    cfg = _config(
        tiny_pets,
        manifest,
        tmp_path,
        "tb",
        "train.epochs=1",
        "train.max_steps_per_epoch=1",
        "train.tensorboard=true",
    )
    train(cfg, progress_bar=False)
    keys = {key for key, _, _ in written}
    assert {"train_loss", "val_miou", "val_pixel_accuracy", "lr"} <= keys
    assert all(step == 1 for _, _, step in written)  # logged at the end of epoch 1
