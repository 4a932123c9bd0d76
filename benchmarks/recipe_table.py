"""Markdown table of the runs made by `benchmarks/recipe_search.sh`: validation and test scores.

usage: .venv/bin/python benchmarks/recipe_table.py OUT [NAME ...]   (default: every run in OUT)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def row(run: Path) -> str:
    config = yaml.safe_load((run / "config.yaml").read_text())
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = json.loads((run / "val.json").read_text())
    test = json.loads((run / "test.json").read_text())
    recipe = (
        f"{config['model']['name'].removeprefix('gcn_')}, crop {config['data']['crop_size']}, "
        f"eval {config['data']['eval_size']}, width {config['model']['decoder_width'] or 'classes'}, "
        f"dice {config['train']['dice_weight']}, amp {config['train'].get('amp', 'none')}"
    )
    scales = (config["data"]["scale_min"], config["data"]["scale_max"])
    if scales != (0.5, 2.0):
        recipe += f", scale {scales[0]}–{scales[1]}"
    for key, label in (("ema_decay", "EMA"), ("label_smoothing", "label smoothing")):
        if config["train"].get(key):
            recipe += f", {label} {config['train'][key]}"
    ious = " / ".join(f"{v:.3f}" for v in test["iou"])
    minutes = epochs[-1]["elapsed_s"] / 60
    return (
        f"| {run.name} | {recipe} | {len(epochs)} | {minutes:.1f} | {val['miou']:.4f} | "
        f"{test['miou']:.4f} | {ious} | {test['mean_image_accuracy']:.4f} | "
        f"{test['pixel_accuracy']:.4f} |"
    )


def main() -> None:
    out = Path(sys.argv[1])
    names = sys.argv[2:] or sorted(p.name for p in out.iterdir() if (p / "test.json").is_file())
    print(
        "| run | recipe | epochs | train min | val mIoU | test mIoU | test IoU bg / cat / dog "
        "| test mean image acc. | test pixel acc. |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        print(row(out / name))


if __name__ == "__main__":
    main()
