"""Fine-tuning from a segmentation model vs from ImageNet, on a small task of one's own
(benchmarks/README.md, "Fine-tuning from a segmentation model").

    .venv/bin/python benchmarks/finetune_binary.py --minutes 5 [--out runs/finetune_binary]

Builds a binary pet / background task in the images/ + masks/ layout from the Oxford-IIIT Pet
sample: 60 images of the manifest's train split (seeded pick) to train on, 10 more to validate
on, and the whole test split to test on (cats and dogs merged into `pet`, trimap borders 255).
Then trains the packaged recipe (pets_default: GCN-EfficientNet-Lite2) twice for the same time
budget, once with `--init pets-default` (its decoder restarts: 2 classes, not 3) and once from
ImageNet weights, and tests both best.pt on the test split. pets-default was trained on this
train split, never on the test split.

As every training time budget here, a run stops after the epoch that crosses it, so the minutes
printed are what each run really trained. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from gcnseg.config import load_config
from gcnseg.data.layouts import index_dataset
from gcnseg.data.splits import load_manifest, save_manifest, select
from gcnseg.evaluation.report import run_test
from gcnseg.io.atomic import write_json
from gcnseg.logs import setup_logging
from gcnseg.training.checkpoints import read_jsonl
from gcnseg.training.loop import train

ROOT = Path(__file__).resolve().parents[1]
BINARY = {"names": ["background", "pet"], "colors": [[0, 0, 0], [255, 140, 0]]}


def build_task(data: Path, manifest: Path, out: Path, train_images: int, test_images: int | None):
    """out/ as images/ + masks/ + classes.yaml, and out/manifest.json with the three splits."""
    index = index_dataset(data)
    splits = load_manifest(manifest)["splits"]
    pool = random.Random(0).sample(splits["train"], train_images + 10)
    chosen = {
        "train": sorted(pool[:train_images]),
        "val": sorted(pool[train_images:]),
        "test": splits["test"][:test_images] if test_images else splits["test"],
    }
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    (out / "masks").mkdir()
    for names in chosen.values():
        for sample in select(index, names):
            label = sample.load_label()  # 0 background, 1 cat, 2 dog, 255 border
            binary = np.where(label == 255, 255, np.minimum(label, 1)).astype(np.uint8)
            shutil.copyfile(sample.image, out / "images" / f"{sample.name}{sample.image.suffix}")
            Image.fromarray(binary).save(out / "masks" / f"{sample.name}.png")
    (out / "classes.yaml").write_text(yaml.safe_dump(BINARY))
    save_manifest(out / "manifest.json", {"splits": chosen})
    return out, {k: len(v) for k, v in chosen.items()}


def run(task: Path, out: Path, name: str, minutes: float, start: list[str], extra: list[str]):
    cfg = load_config(
        "pets_default",
        [
            f"data.root={task}",
            f"data.manifest={task / 'manifest.json'}",
            f"train.output={out}",
            f"train.name={name}",
            "train.epochs=1000",  # the time budget decides
            f"train.time_budget_min={minutes}",
            *start,
            *extra,
        ],
    )
    run_dir = train(cfg, overwrite=True, progress_bar=False)
    trained_s = read_jsonl(run_dir / "metrics.jsonl")[-1]["elapsed_s"]
    epochs = len(read_jsonl(run_dir / "metrics.jsonl"))
    report = run_test(
        str(run_dir / "best.pt"), task, manifest=task / "manifest.json", split="test", worst=0
    )
    return {
        "start": name,
        "minutes": trained_s / 60,
        "epochs": epochs,
        "test_miou": report.metrics["miou"],
        "test_iou": report.metrics["iou"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/oxford-pets-sample")
    parser.add_argument("--manifest", type=Path, default=ROOT / "manifests/oxford-pets-sample.json")
    parser.add_argument("--out", type=Path, default=Path("runs/finetune_binary"))
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of each run")
    parser.add_argument("--train-images", type=int, default=60)
    parser.add_argument("--test-images", type=int, help="first N of the test split (default all)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="config override, both runs"
    )
    args = parser.parse_args()
    setup_logging()  # one INFO line per epoch
    task, counts = build_task(
        args.data, args.manifest, args.out / "data", args.train_images, args.test_images
    )
    print(f"binary task in {task}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    results = [
        run(
            task,
            args.out,
            "pets-default",
            args.minutes,
            ["model.init=pets-default"],
            args.overrides,
        ),
        run(
            task,
            args.out,
            "imagenet",
            args.minutes,
            ["model.backbone_weights=imagenet"],
            args.overrides,
        ),
    ]
    write_json(args.out / "results.json", {"images": counts, "results": results})
    print("\n| start | minutes trained | epochs | test mIoU | IoU background / pet |")
    print("|---|---|---|---|---|")
    for r in results:
        ious = " / ".join(f"{v:.3f}" for v in r["test_iou"])
        print(
            f"| {r['start']} | {r['minutes']:.1f} | {r['epochs']} | {r['test_miou']:.4f} | {ious} |"
        )
    print(f"\n{args.out / 'results.json'}")


if __name__ == "__main__":
    main()
