"""What training promises about the run folder: no lost runs, exact resumes after any
interruption, divergence stopped before it is saved as best, full disks and kills survived.

All on the generated images/ + masks/ set (tests/_data.py): 4 training images in 2 steps of 2 at
64², 2 validation images, 2 epochs.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gcnseg.checkpoint import load_checkpoint, save_checkpoint
from gcnseg.cli import main
from gcnseg.config import load_config
from gcnseg.data.splits import save_manifest
from gcnseg.errors import GcnsegError
from gcnseg.training import checkpoints as checkpoints_module
from gcnseg.training import loop as loop_module
from gcnseg.training import run as run_module
from gcnseg.training.claim import claim_run_dir
from gcnseg.training.distributed import DistInfo
from gcnseg.training.loop import Diverged, check_loss, train
from gcnseg.training.run import Progress, load_data
from smoke import TINY_TRAINING, set_flags

pytestmark = pytest.mark.slow

TINY = [
    *TINY_TRAINING,
    "data.batch_size=2",
    "data.eval_batch_size=2",
    "schedule.name=constant",
    "schedule.warmup_epochs=0",
    "train.epochs=2",
]


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()  # train() sets train.threads for the whole process
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def manifest(tiny_folders: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = [f"scene_{i}" for i in range(8)]
    path = tmp_path_factory.mktemp("split") / "manifest.json"
    save_manifest(path, {"splits": {"train": names[:4], "val": names[4:6], "test": names[6:]}})
    return path


def _config(root: Path, manifest: Path, out: Path, name: str, *extra: str):
    return load_config(
        "pets_gcn_lite0",
        [
            *TINY,
            f"data.root={root}",
            f"data.manifest={manifest}",
            f"train.output={out}",
            f"train.name={name}",
            *extra,
        ],
    )


@pytest.fixture(scope="module")
def reference(tiny_folders: Path, manifest: Path, tmp_path_factory) -> Path:
    """The uninterrupted run every resumed one must retrace exactly."""
    out = tmp_path_factory.mktemp("runs")
    return train(_config(tiny_folders, manifest, out, "full"), progress_bar=False)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _assert_same_run(run: Path, reference: Path) -> None:
    """Bit for bit: every weight and buffer, the optimizer state and the logged metrics."""
    got, want = load_checkpoint(run / "last.pt"), load_checkpoint(reference / "last.pt")
    for key, value in want["model"].items():
        assert torch.equal(got["model"][key], value), key
    for a, b in zip(
        got["optimizer"]["state"].values(), want["optimizer"]["state"].values(), strict=True
    ):
        assert all(torch.equal(a[k], b[k]) for k in b)
    drop = {"elapsed_s", "train_images_per_s"}
    strip = [{k: v for k, v in r.items() if k not in drop} for r in _records(run / "metrics.jsonl")]
    expect = [{k: v for k, v in r.items() if k not in drop} for r in _records(reference / "metrics.jsonl")]  # fmt: skip
    assert strip == expect  # the resumed epoch's train loss covers the whole epoch too
    assert _records(run / "steps.jsonl") == _records(reference / "steps.jsonl")


# --- interrupts (item 9) ---------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_forward_saves_a_state_that_resumes_exactly(
    signum: int, tiny_folders: Path, manifest: Path, reference: Path, tmp_path, monkeypatch
) -> None:
    """The signal arrives inside the 3rd forward pass (epoch 2, step 1), after some BatchNorm
    layers have already updated their running statistics: the step still completes first."""
    real_forward = nn.BatchNorm2d.forward
    count = {"forward": 0, "layer": 0, "first": None}

    def forward(self, x):
        if self.training:
            if count["first"] is None:
                count["first"] = self
            if self is count["first"]:
                count["forward"], count["layer"] = count["forward"] + 1, 0
            count["layer"] += 1
            if count["forward"] == 3 and count["layer"] == 10:
                os.kill(os.getpid(), signum)
        return real_forward(self, x)

    monkeypatch.setattr(nn.BatchNorm2d, "forward", forward)
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_folders, manifest, tmp_path, "cut"), progress_bar=False)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    saved = load_checkpoint(tmp_path / "cut" / "last.pt")["progress"]
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 1)
    monkeypatch.setattr(nn.BatchNorm2d, "forward", real_forward)
    train(None, resume=tmp_path / "cut", progress_bar=False)
    _assert_same_run(tmp_path / "cut", reference)


def test_kill_leftovers_do_not_block_resume(
    tiny_folders: Path, manifest: Path, reference: Path, tmp_path, monkeypatch
) -> None:
    """Temp files of an interrupted atomic write are removed; torn last log lines are dropped."""
    real_step = loop_module._train_step
    calls = {"n": 0}

    def stop_at_third(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop_module, "_train_step", stop_at_third)
    with pytest.raises(KeyboardInterrupt):
        train(_config(tiny_folders, manifest, tmp_path, "cut"), progress_bar=False)
    run = tmp_path / "cut"
    (run / ".last.pt.k1ll3d.tmp.pt").write_bytes(b"half a checkpoint")
    with (run / "steps.jsonl").open("a") as handle:
        handle.write('{"step": 3, "epo')
    with (run / "metrics.jsonl").open("a") as handle:
        handle.write('{"epoch": 1, "train_lo')
    monkeypatch.setattr(loop_module, "_train_step", real_step)
    train(None, resume=run, progress_bar=False)
    assert not list(run.glob(".*.tmp*"))
    _assert_same_run(run, reference)


# --- lost runs (item 2) ----------------------------------------------------------------------


def test_training_into_an_existing_run_is_refused(
    tiny_folders: Path, manifest: Path, reference: Path
) -> None:
    metrics = (reference / "metrics.jsonl").read_bytes()
    cfg = _config(tiny_folders, manifest, reference.parent, reference.name)
    with pytest.raises(GcnsegError, match=r"already holds a run.*--resume.*--name.*--overwrite"):
        train(cfg, progress_bar=False)
    assert (reference / "metrics.jsonl").read_bytes() == metrics


def test_overwrite_replaces_the_run_instead_of_mixing_it(
    tiny_folders: Path, manifest: Path, reference: Path, tmp_path
) -> None:
    run = tmp_path / "full"
    shutil.copytree(reference, run)
    cfg = _config(
        tiny_folders, manifest, tmp_path, "full", "train.epochs=1", "train.max_steps_per_epoch=1"
    )
    train(cfg, progress_bar=False, overwrite=True)
    assert [r["epoch"] for r in _records(run / "metrics.jsonl")] == [0]
    assert [r["step"] for r in _records(run / "steps.jsonl")] == [1]
    assert load_checkpoint(run / "best.pt")["progress"]["global_step"] == 1


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("model.name=gcn_k1_efficientnet_lite0", "does not fit"),
        ("data.root={pets}", "a run's data is fixed at its start"),
    ],
)
def test_failed_resume_is_one_line_and_writes_nothing(
    override: str, needle: str, reference: Path, tiny_pets: Path, tmp_path
) -> None:
    run = tmp_path / "full"
    shutil.copytree(reference, run)
    before = {name: (run / name).read_bytes() for name in ("config.yaml", "manifest.json")}
    with pytest.raises(GcnsegError, match=needle):
        train(
            None, resume=run, resume_overrides=[override.format(pets=tiny_pets)], progress_bar=False
        )
    assert {name: (run / name).read_bytes() for name in before} == before


# --- a run's data and folder are its own ----------------------------------------------------


def test_resume_keeps_the_split_it_started_with(
    tiny_folders: Path, tiny_pets: Path, tmp_path, capsys, monkeypatch
) -> None:
    """Pairs added to the data after the start: the resumed run neither re-splits (moving test
    and validation images into training) nor rewrites manifest.json; another folder is refused."""
    data = tmp_path / "data"
    shutil.copytree(tiny_folders, data)
    monkeypatch.chdir(tmp_path)
    split = ["data.test_fraction=0.25", "data.val_fraction=0.25"]
    flags = set_flags([*TINY, "train.max_steps_per_epoch=1", *split])
    assert main(["train", "-q", "--data", str(data), *flags, "--epochs", "1", "--name", "r"]) == 0
    manifest = (tmp_path / "runs" / "r" / "manifest.json").read_bytes()
    for i in range(6):
        for folder in ("images", "masks"):
            shutil.copy(data / folder / "scene_0.png", data / folder / f"added_{i}.png")
    assert main(["train", "-q", "--resume", "runs/r", "--epochs", "2"]) == 0
    assert (tmp_path / "runs" / "r" / "manifest.json").read_bytes() == manifest
    assert load_checkpoint(tmp_path / "runs" / "r" / "last.pt")["progress"]["epoch"] == 2
    capsys.readouterr()
    other = ["--set", f"data.root={tiny_pets}"]
    assert main(["train", "--resume", "runs/r", "--epochs", "3", *other]) == 2
    err = capsys.readouterr().err.strip()
    assert "a run's data is fixed at its start" in err and "\n" not in err


def test_no_val_split_with_a_plateau_schedule_is_named_before_any_work(
    tiny_folders: Path, tmp_path
) -> None:
    """A manifest may decline validation, but plateau decay needs the validation loss."""
    names = [f"scene_{i}" for i in range(8)]
    empty_val = tmp_path / "no-val.json"
    save_manifest(empty_val, {"splits": {"train": names[:6], "val": [], "test": names[6:]}})
    cfg = _config(tiny_folders, empty_val, tmp_path, "r", "schedule.name=plateau")
    with pytest.raises(GcnsegError) as exc:
        train(cfg, progress_bar=False)
    assert str(exc.value) == (
        f"{empty_val}: split val is empty, but schedule.name plateau decays on the validation "
        "loss: choose another schedule or give a val split"
    )
    assert not (tmp_path / "r").exists()  # the folder it claimed held nothing, and is gone


def test_a_seeded_split_without_validation_images_names_the_fraction(
    tiny_folders: Path, tmp_path
) -> None:
    overrides = [*TINY, f"data.root={tiny_folders}", "data.val_fraction=0.05"]
    cfg = load_config("pets_gcn_lite0", overrides)
    with pytest.raises(GcnsegError) as exc:
        load_data(cfg, tmp_path / "r", None)
    assert str(exc.value).startswith(
        f"{tiny_folders}: the val split is empty (8 pairs, data.val_fraction 0.05); "
        "training needs validation (best.pt is picked by its score)"
    )


def _hold(run_dir: Path):
    """Another run's claim on `run_dir`, as a run in progress holds it."""
    return claim_run_dir(run_dir, DistInfo(), numbered=False, resuming=False, overwrite=False)


@pytest.fixture
def stop_at_setup(monkeypatch) -> list[Path]:
    """train() stops where the run would be built; the list gets the run folder it was given."""
    folders: list[Path] = []

    def record(cfg, run_dir, *args, **kwargs):
        folders.append(run_dir)
        raise GcnsegError("stopped before training")

    monkeypatch.setattr(loop_module, "setup_run", record)
    return folders


def test_two_runs_in_one_second_get_two_folders(tmp_path, monkeypatch, stop_at_setup) -> None:
    monkeypatch.setattr(run_module.time, "strftime", lambda fmt: "20250101-120000")
    cfg = _config(tmp_path, tmp_path / "m.json", tmp_path, "unused", "train.name=null")
    first = tmp_path / "gcn_efficientnet_lite0-20250101-120000"
    with _hold(first), pytest.raises(GcnsegError, match="stopped before training"):
        train(cfg, progress_bar=False)
    assert stop_at_setup == [first.with_name(f"{first.name}-2")]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_run_folder_in_use_is_refused(overwrite: bool, tmp_path, stop_at_setup) -> None:
    cfg = _config(tmp_path, tmp_path / "m.json", tmp_path, "same")
    refused = r"same: another training run \(process \d+\) is using this run folder"
    with _hold(tmp_path / "same"), pytest.raises(GcnsegError, match=refused):
        train(cfg, progress_bar=False, overwrite=overwrite)
    assert stop_at_setup == []


def test_cli_refuses_config_with_resume(reference: Path, capsys) -> None:
    assert main(["train", "--resume", str(reference), "--config", "pets_default"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gcnseg: error:") and "--config" in err and "\n" not in err


# --- divergence (item 3) ---------------------------------------------------------------------


def test_noisy_training_never_trips_the_divergence_guard() -> None:
    """5000 steps of a decaying loss with 4x lognormal noise and a 50x outlier every 100 steps."""
    rng = np.random.default_rng(0)
    progress = Progress()
    for step in range(5000):
        loss = (0.02 + 1.1 * math.exp(-step / 300)) * rng.lognormal(0, 0.7)
        check_loss(progress, loss * (50 if step % 100 == 99 else 1))


def test_a_run_away_loss_trips_the_guard_within_a_few_steps() -> None:
    progress = Progress()
    with pytest.raises(Diverged, match="diverged at epoch 1, step 1:"):
        for step in range(30):
            check_loss(progress, 1.1 * 10**step)
    assert progress.loss_ema_min == pytest.approx(1.1)


def test_divergence_stops_the_run_and_is_never_saved_as_best(
    tiny_folders: Path, manifest: Path, tmp_path
) -> None:
    """optim.lr=30: the loss rose to 1e29, all finite, and best.pt predicted background."""
    cfg = _config(tiny_folders, manifest, tmp_path, "lr30", "optim.name=sgd", "optim.lr=30")
    with pytest.raises(GcnsegError, match="diverged"):
        train(cfg, progress_bar=False)
    assert not (tmp_path / "lr30" / "best.pt").exists()
    assert load_checkpoint(tmp_path / "lr30" / "last.pt")["progress"]["global_step"] == 0


def test_checkpoint_with_non_finite_weights_is_refused(reference: Path, tmp_path) -> None:
    payload = load_checkpoint(reference / "best.pt")
    key = next(k for k, v in payload["model"].items() if v.is_floating_point())
    payload["model"][key] = payload["model"][key].clone().fill_(float("inf"))
    save_checkpoint(tmp_path / "broken.pt", payload)
    with pytest.raises(GcnsegError, match=rf"broken\.pt: weights are not finite \({key}"):
        load_checkpoint(tmp_path / "broken.pt")


# --- full disk (item 4) ----------------------------------------------------------------------


def test_disk_full_at_best_is_one_line_and_resume_writes_best(
    tiny_folders: Path, manifest: Path, reference: Path, tmp_path, monkeypatch
) -> None:
    real_save = checkpoints_module.save_checkpoint

    def full_disk(path, payload):
        if Path(path).name == "best.pt":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real_save(path, payload)

    monkeypatch.setattr(checkpoints_module, "save_checkpoint", full_disk)
    with pytest.raises(GcnsegError, match=r"best\.pt: could not be written \(No space left"):
        train(_config(tiny_folders, manifest, tmp_path, "full"), progress_bar=False)
    run = tmp_path / "full"
    assert load_checkpoint(run / "last.pt")["progress"]["epoch"] == 0  # not past the lost best
    monkeypatch.setattr(checkpoints_module, "save_checkpoint", real_save)
    train(None, resume=run, progress_bar=False)
    _assert_same_run(run, reference)
    got, want = load_checkpoint(run / "best.pt"), load_checkpoint(reference / "best.pt")
    timeless = [{k: v for k, v in c["progress"].items() if k != "elapsed_s"} for c in (got, want)]
    assert timeless[0] == timeless[1]
    assert all(torch.equal(got["model"][k], v) for k, v in want["model"].items())


# --- outputs checked before any work (items 7 and 10) ----------------------------------------


@pytest.mark.parametrize("where", ["output", "name"])
def test_a_file_where_the_run_folder_goes_is_one_line_before_any_work(
    where: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    out, name = (blocker, "run") if where == "output" else (tmp_path, "blocker")
    cfg = _config(tmp_path / "no-data-here", tmp_path / "no-manifest.json", out, name)
    with pytest.raises(GcnsegError, match="is a file"):
        train(cfg, progress_bar=False)  # the missing dataset is never reached


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("train.amp=fp16", "fp16 needs a CUDA GPU"),
        ("model.name=gcn_nope", "unknown model 'gcn_nope'"),
        ("model.name=gcn_resnet50", "no offline ImageNet weights"),
    ],
)
def test_settings_are_refused_before_the_data_is_read(extra: str, needle: str, tmp_path) -> None:
    cfg = _config(tmp_path / "no-data-here", tmp_path / "no-manifest.json", tmp_path, "x", extra)
    with pytest.raises(GcnsegError, match=needle):
        train(cfg, progress_bar=False)
    assert not (tmp_path / "x").exists()
