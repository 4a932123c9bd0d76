"""Mixed precision on the CPU: bf16 autocast trains with a finite loss; fp16 is refused clearly."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gcnseg.checkpoint import load_checkpoint
from gcnseg.config import load_config
from gcnseg.data.layouts import index_dataset
from gcnseg.data.splits import make_split, save_manifest
from gcnseg.errors import GcnsegError
from gcnseg.training.loop import train
from smoke import TINY_TRAINING, TWO_STEPS

pytestmark = pytest.mark.slow

TINY = [*TINY_TRAINING, *TWO_STEPS, "data.batch_size=2"]


@pytest.fixture(scope="module")
def manifest(tiny_pets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 generated images spread over the breeds: train 4 (2 steps of 2), val 1, test 1."""
    index = index_dataset(tiny_pets)
    names = sorted(s.name for s in index.samples)
    picked = names[:: max(1, len(names) // 6)][:6]
    split = make_split(index)
    split["splits"] = {"train": picked[:4], "val": picked[4:5], "test": picked[5:]}
    path = tmp_path_factory.mktemp("amp") / "manifest.json"
    save_manifest(path, split)
    return path


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()  # train() sets train.threads for the whole process
    yield
    torch.set_num_threads(threads)


def _config(root: Path, manifest: Path, output: Path, amp: str):
    return load_config(
        "pets_gcn_lite0",
        [
            *TINY,
            f"data.root={root}",
            f"data.manifest={manifest}",
            f"train.output={output}",
            "train.name=run",
            f"train.amp={amp}",
        ],
    )


def test_bf16_autocast_trains_on_cpu(tiny_pets: Path, manifest: Path, tmp_path: Path) -> None:
    run_dir = train(_config(tiny_pets, manifest, tmp_path, "bf16"), progress_bar=False)
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]
    assert all(math.isfinite(s["loss"]) and s["loss"] > 0 for s in steps), steps
    record = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert math.isfinite(record["val_loss"])
    assert 0.0 <= record["val_miou"] <= 1.0
    state = load_checkpoint(run_dir / "last.pt")
    # autocast changes the compute dtype only: the weights stay fp32 and finite
    assert all(v.dtype == torch.float32 for v in state["model"].values() if v.is_floating_point())
    assert all(
        bool(torch.isfinite(v).all()) for v in state["model"].values() if v.is_floating_point()
    )


def test_auto_amp_is_resolved_and_logged(
    tiny_pets: Path, manifest: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    from gcnseg import runtime

    monkeypatch.setattr(runtime, "cpu_features", lambda: {"native_bf16": True})
    with caplog.at_level("INFO", logger="gcnseg.training.run"):
        run_dir = train(_config(tiny_pets, manifest, tmp_path, "auto"), progress_bar=False)
    assert "training precision: bf16 (the CPU has native bf16)" in caplog.text
    # the run keeps `auto` (a resume on another CPU decides again), and trained in bf16
    assert load_checkpoint(run_dir / "last.pt")["config"]["train"]["amp"] == "auto"


def test_fp16_on_cpu_is_a_clear_error(tiny_pets: Path, manifest: Path, tmp_path: Path) -> None:
    with pytest.raises(GcnsegError, match=r"fp16 needs a CUDA GPU.*bf16"):
        train(_config(tiny_pets, manifest, tmp_path, "fp16"), progress_bar=False)
    assert not (tmp_path / "run" / "steps.jsonl").exists()
