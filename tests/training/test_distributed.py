"""Multi-process training under torchrun (gloo, CPU) on generated Oxford-IIIT Pet images.

One module-scoped set of runs, started together to save wall time:

- ``single``: one process, batch 4, 1 epoch (in-process ``train()``);
- ``full``: 2 processes × batch 2 (same global batch, same seed), 2 epochs, uninterrupted;
- ``budget``: the same DDP run with ``train.time_budget_min`` tiny, so it stops cleanly after
  epoch 1, then ``--resume`` under torchrun with the budget lifted trains epoch 2.

What single-process and DDP losses can share: DDP's gradient is the mean of the ranks' gradients of
their own batch-mean losses, and ``steps.jsonl`` logs the mean of the ranks' losses. Two things
still differ from one process with the whole batch, by design, not by bug:

1. BatchNorm normalises with per-rank batch statistics (2 crops, not 4). ``train.sync_bn`` would
   remove this, but PyTorch's SyncBatchNorm runs on CUDA only (gcnseg refuses it on the CPU).
2. The loss is a mean over *labelled* pixels; the ranks' crops hold different numbers of them
   (trimap borders and crop padding are ignored), so the mean of two per-rank means is not the
   mean over the union.

Measured at 64², AdamW 3e-4 (backbone) / 3e-3 (decoder), on two 8-image training sets of real
photos: relative differences of 1.7-4.3 % at step 1 and 4.4-4.8 % at step 2 (with BatchNorm frozen,
effect 2 alone: 1.1 % at step 1; AdamW's first, sign-like update then amplifies small gradient
differences). On two 8-image sets of generated pets (images 1-4 of each breed, as here, and 4-7):
2.3-3.7 % at step 1 and 1.6-7.0 % at step 2. Over ten training seeds (the step-1 reference below)
and two augmentation pipelines, step 1 ranged over 0.1-24 %: the crops decide (a rank whose two
crops are mostly padding normalises with other statistics). Hence the loose tolerance on the
single-vs-DDP comparison, ``LOSS_RTOL`` (about 2× the largest measured difference). The tight checks are elsewhere: the DDP step-1 loss equals, to
``EXACT_RTOL``, the mean of the two ranks' losses recomputed here from the same seed and samples
(logging rank 0's loss alone was ~10 % off: caught there, not by ``LOSS_RTOL``), and DDP resume
retraces the uninterrupted DDP run to 1e-6.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from gcnseg.checkpoint import load_checkpoint
from gcnseg.config import Config, load_config
from gcnseg.data.dataset import SegmentationDataset, make_loader
from gcnseg.data.layouts import index_dataset
from gcnseg.data.splits import load_manifest, make_split, save_manifest, select
from gcnseg.data.transforms import eval_transform
from gcnseg.evaluation.evaluate import evaluate
from gcnseg.inference.engines import TorchEngine
from gcnseg.inference.segmenter import Segmenter
from gcnseg.models import create_model
from gcnseg.runtime import prepare_images
from gcnseg.source import read_model
from gcnseg.training.loop import train
from gcnseg.training.losses import SegmentationLoss
from gcnseg.training.run import crop_transform
from smoke import TINY_TRAINING, TWO_STEPS

pytestmark = pytest.mark.slow

TIMEOUT_S = 300
LOSS_RTOL = 0.5  # single process vs 2-rank DDP, per step (see the module docstring)
EXACT_RTOL = 1e-5  # same computation, float32 summation order only
WEIGHT_ATOL = 1e-6
METRIC_ATOL = 1e-6
VAL_LOSS_RTOL = 1e-5  # float32 per-batch sums: the ranks' shards are batched differently

TINY = [*TINY_TRAINING, *TWO_STEPS]


def _overrides(root: Path, manifest: Path, output: Path, name: str, *extra: str) -> list[str]:
    return [
        *TINY,
        f"data.root={root}",
        f"data.manifest={manifest}",
        f"train.output={output}",
        f"train.name={name}",
        *extra,
    ]


def _torchrun(args: list[str], log: Path, nproc: int = 2) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", *args,
    ]  # fmt: skip
    handle = log.open("w")
    try:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
    finally:
        handle.close()  # the child holds its own copy


def _finish(proc: subprocess.Popen, log: Path, what: str) -> None:
    try:
        rc = proc.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"{what}: no result after {TIMEOUT_S} s\n{log.read_text()[-4000:]}")
    assert rc == 0, f"{what} exited {rc}:\n{log.read_text()[-4000:]}"


def _gcnseg_train(overrides: list[str]) -> list[str]:
    return ["-m", "gcnseg", "train", "--config", "pets_gcn_lite0"] + [
        arg for item in overrides for arg in ("--set", item)
    ]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def setup(tiny_pets: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Manifest of 16 generated images (train 8, val 4, test 4) and the runs described above."""
    root = tiny_pets
    tmp = tmp_path_factory.mktemp("ddp")
    index = index_dataset(root)
    # The first 4 of each breed, sorted by breed: every split below holds one per breed or more.
    names = sorted(s.name for s in index.samples)
    picked = [name for name in names if int(name.rsplit("_", 1)[1]) <= 4]
    assert len(picked) == 16
    manifest = make_split(index)
    manifest["splits"] = {"train": picked[0::2], "val": picked[1::4], "test": picked[3::4]}
    save_manifest(tmp / "manifest.json", manifest)
    runs = tmp / "runs"

    def ddp(name: str, *extra: str) -> list[str]:
        return _overrides(root, tmp / "manifest.json", runs, name, "data.batch_size=2", *extra)

    started = time.monotonic()
    full = _torchrun(_gcnseg_train(ddp("full", "train.epochs=2")), tmp / "full.log")
    budget = _torchrun(
        _gcnseg_train(ddp("budget", "train.epochs=2", "train.time_budget_min=0.0001")),
        tmp / "budget.log",
    )
    threads = torch.get_num_threads()
    try:  # the single-process run works while the DDP runs start
        cfg = load_config(
            "pets_gcn_lite0",
            _overrides(root, tmp / "manifest.json", runs, "single", "data.batch_size=4"),
        )
        single = train(cfg, progress_bar=False)
    finally:
        torch.set_num_threads(threads)
    _finish(budget, tmp / "budget.log", "DDP run with a time budget")
    stopped = {
        "progress": load_checkpoint(runs / "budget" / "last.pt")["progress"],
        "epochs_logged": len(_jsonl(runs / "budget" / "metrics.jsonl")),
    }
    resumed = _torchrun(
        # the budget ended that run: lifting it trains on, on the schedule it started with
        [
            "-m",
            "gcnseg",
            "train",
            "--resume",
            str(runs / "budget"),
            "--set",
            "train.time_budget_min=none",
        ],
        tmp / "resume.log",
    )
    _finish(full, tmp / "full.log", "uninterrupted DDP run")
    _finish(resumed, tmp / "resume.log", "resumed DDP run")
    return {
        "root": root,
        "cfg": cfg,
        "manifest": tmp / "manifest.json",
        "single": single,
        "full": runs / "full",
        "resumed": runs / "budget",
        "stopped": stopped,
        "wall_s": time.monotonic() - started,
    }


def _reference_step1_losses(cfg: Config, root: Path) -> tuple[float, float]:
    """Step-1 loss of the seeded initial model: batch 4 in one process, and the mean of the two
    ranks' batch-2 losses (each rank's BatchNorm sees its own two crops), as DDP computes it."""
    index = index_dataset(root)
    manifest = load_manifest(cfg.data.manifest)
    dataset = SegmentationDataset(
        select(index, manifest["splits"]["train"]),
        crop_transform(cfg),
        seed=cfg.train.seed,
    )
    dataset.set_epoch(0)
    torch.manual_seed(cfg.train.seed)  # as train() does, right before building the model
    model = create_model(
        cfg.model.name,
        num_classes=len(index.classes.names),
        backbone_weights=cfg.model.backbone_weights,
    ).train()
    loss_fn = SegmentationLoss(cfg.train.dice_weight)

    def first_batch_loss(world: int, rank: int, batch_size: int) -> float:
        sampler = DistributedSampler(
            dataset,
            num_replicas=world,
            rank=rank,
            shuffle=True,
            seed=cfg.train.seed,
            drop_last=True,
        )
        sampler.set_epoch(0)
        indices = list(sampler)[:batch_size]
        loader = make_loader(
            dataset, batch_size=batch_size, shuffle=False, workers=0, sampler=indices
        )
        batch = next(iter(loader))
        with torch.no_grad():
            logits = model(prepare_images(batch["image"], torch.device("cpu"), False))
            return float(loss_fn(logits, batch["label"].long()))

    single = first_batch_loss(1, 0, 4)
    ddp = (first_batch_loss(2, 0, 2) + first_batch_loss(2, 1, 2)) / 2
    return single, ddp


def test_ddp_step_losses_match_single_process(setup: dict) -> None:
    single = [r["loss"] for r in _jsonl(setup["single"] / "steps.jsonl")]
    ddp = [r["loss"] for r in _jsonl(setup["full"] / "steps.jsonl") if r["epoch"] == 0]
    assert len(single) == len(ddp) == 2
    ref_single, ref_ddp = _reference_step1_losses(setup["cfg"], setup["root"])
    # Tight: the logged DDP loss is the ranks' mean, computed on the samples and seed it should be.
    assert single[0] == pytest.approx(ref_single, rel=EXACT_RTOL)
    assert ddp[0] == pytest.approx(ref_ddp, rel=EXACT_RTOL), "DDP step 1 is not the ranks' mean"
    # Loose: per-rank BatchNorm and per-rank pixel means (module docstring), measured 2-5 %.
    for step, (a, b) in enumerate(zip(single, ddp, strict=True), 1):
        assert math.isfinite(b)
        assert abs(a - b) <= LOSS_RTOL * abs(a), f"step {step}: single {a:.5f} vs DDP {b:.5f}"
    print(
        f"\nsingle {single}\nDDP    {ddp}\nrelative differences "
        f"{[abs(a - b) / abs(a) for a, b in zip(single, ddp, strict=True)]}\n"
        f"runs took {setup['wall_s']:.0f} s"
    )


@pytest.mark.parametrize("run", ["full", "resumed"])
def test_rank0_alone_writes_run_files(setup: dict, run: str) -> None:
    run_dir = setup[run]
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    assert [f for f in files if f.endswith(".pt")] == ["best.pt", "last.pt"], files
    assert [f for f in files if f.endswith(".jsonl")] == ["metrics.jsonl", "steps.jsonl"], files
    # One record per optimizer step and per epoch: rank 1 appended nothing.
    assert [r["step"] for r in _jsonl(run_dir / "steps.jsonl")] == [1, 2, 3, 4]
    assert [r["epoch"] for r in _jsonl(run_dir / "metrics.jsonl")] == [0, 1]
    assert load_checkpoint(run_dir / "last.pt")["progress"]["epoch"] == 2


def test_ddp_validation_metrics_describe_last_checkpoint(setup: dict) -> None:
    """The sharded, all-reduced validation of the DDP run equals one process evaluating last.pt."""
    run_dir = setup["full"]
    logged = _jsonl(run_dir / "metrics.jsonl")[-1]
    trained = read_model(run_dir / "last.pt")
    model, cfg, classes = trained.model, trained.config, trained.classes
    index = index_dataset(setup["root"])
    val = select(index, load_manifest(setup["manifest"])["splits"]["val"])
    dataset = SegmentationDataset(val, eval_transform(cfg.data.eval_size), keep_original=True)
    loader = make_loader(dataset, batch_size=cfg.data.eval_batch_size, shuffle=False, workers=0)
    engine = TorchEngine(model, torch.device("cpu"), channels_last=cfg.train.channels_last)
    segmenter = Segmenter(engine, classes, cfg.data.eval_size, cfg.model.name)
    result = evaluate(segmenter, loader)
    for key in (
        "miou",
        "pixel_accuracy",
        "mean_image_accuracy",
        "mean_dice",
        "mean_class_accuracy",
    ):
        assert logged[f"val_{key}"] == pytest.approx(result.metrics[key], abs=METRIC_ATOL), key
    assert logged["val_iou"] == pytest.approx(result.metrics["iou"], abs=METRIC_ATOL)
    assert logged["val_loss"] == pytest.approx(result.loss, rel=VAL_LOSS_RTOL)


def test_ddp_resume_retraces_uninterrupted_run(setup: dict) -> None:
    stopped = setup["stopped"]
    assert stopped["progress"]["epoch"] == 1, "the time budget should stop the run after epoch 1"
    assert stopped["epochs_logged"] == 1
    resumed = load_checkpoint(setup["resumed"] / "last.pt")
    full = load_checkpoint(setup["full"] / "last.pt")
    assert resumed["progress"]["global_step"] == full["progress"]["global_step"] == 4
    assert resumed["model"].keys() == full["model"].keys()
    worst = max(
        float((resumed["model"][k].double() - full["model"][k].double()).abs().max())
        for k in full["model"]
        if full["model"][k].numel()
    )
    assert worst <= WEIGHT_ATOL, f"resumed weights differ from the uninterrupted run by {worst}"
    resumed_steps = [r["loss"] for r in _jsonl(setup["resumed"] / "steps.jsonl")]
    full_steps = [r["loss"] for r in _jsonl(setup["full"] / "steps.jsonl")]
    assert resumed_steps == pytest.approx(full_steps, rel=EXACT_RTOL)


DYING_RANK = textwrap.dedent(
    """
    import os
    import torch
    import torch.distributed as dist
    from gcnseg.training.distributed import init_distributed

    info = init_distributed(torch.device("cpu"))
    if info.rank == 1:
        os._exit(1)
    value = torch.ones(1)
    dist.all_reduce(value)  # rank 1 is gone: this must fail or be killed, never hang
    print("all_reduce returned", flush=True)
    """
)


def test_dying_rank_takes_the_job_down(tmp_path: Path) -> None:
    script = tmp_path / "dying_rank.py"
    script.write_text(DYING_RANK)
    log = tmp_path / "torchrun.log"
    started = time.monotonic()
    proc = _torchrun([str(script)], log)
    try:
        rc = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"torchrun still running 120 s after rank 1 died:\n{log.read_text()[-4000:]}")
    output = log.read_text()
    assert rc != 0, output[-4000:]
    assert "all_reduce returned" not in output
    assert time.monotonic() - started < 120
