"""`gcnseg demo` (what `make demo` runs): train, test and draw on Oxford-IIIT Pet within minutes on a CPU."""

from __future__ import annotations

import logging
from pathlib import Path

from gcnseg.config import load_config
from gcnseg.data.layouts import index_dataset
from gcnseg.data.splits import load_manifest, make_split, save_manifest, select
from gcnseg.evaluation.report import run_test
from gcnseg.inference.predict import predict_files
from gcnseg.training.loop import train

log = logging.getLogger(__name__)

# Small crops and a time budget keep the demo under 10 minutes on a 2-core CPU.
DEMO_OVERRIDES = [
    "data.crop_size=256",
    "data.eval_size=320",
    "data.batch_size=8",
    "data.test_fraction=0.2",
    "optim.name=adamw",
    "optim.lr=0.0006",
    "optim.decoder_lr_mult=10",
    "optim.weight_decay=0.01",
    "schedule.name=cosine",
    "schedule.warmup_epochs=0.5",
    "train.epochs=4",
]


def run_demo(data: Path, out: Path, *, minutes: float = 8.0, download: bool = False) -> Path:
    manifest_path = out / "manifest.json"
    cfg = load_config(  # first: a bad `minutes` is refused before anything is fetched or written
        "pets_gcn_lite0",
        [
            *DEMO_OVERRIDES,
            f"data.root={data}",
            f"data.manifest={manifest_path}",
            f"train.output={out}",
            "train.name=run",
            f"train.time_budget_min={minutes}",
        ],
    )
    if download:
        from gcnseg.data.oxford_pets import download_oxford_pets

        download_oxford_pets(data)
    index = index_dataset(data)
    save_manifest(manifest_path, make_split(index, test_fraction=0.2, val_fraction=0.1, seed=0))
    run_dir = train(cfg, overwrite=True)  # the demo's run folder is its own: rerunning replaces it
    report = run_test(
        str(run_dir / "best.pt"),
        data,
        manifest=manifest_path,
        split="test",
        out_dir=out / "test",
        json_out=out / "test" / "report.json",
        worst=6,
    )
    manifest = load_manifest(manifest_path)
    images = [str(s.image) for s in select(index, manifest["splits"]["test"][:6])]
    predict_files(images, checkpoint=str(run_dir / "best.pt"), out_dir=out / "overlays")
    print(report.format())
    print(
        f"\nlearning curve: {run_dir / 'learning_curve.png'}\n"
        f"test report:    {out / 'test' / 'report.json'} (confusion matrix and worst images beside it)\n"
        f"overlays:       {out / 'overlays'}"
    )
    return run_dir
