#!/usr/bin/env bash
# GCN k=15 vs the paper's k=1 baseline on the same recipe and split: mIoU on the test split and
# inference img/s. Both runs train side by side, one thread each, so they see the same machine.
# usage: benchmarks/ablate_kernel.sh [EPOCHS] [OUT]   (from the repository root, after `make test`)
set -euo pipefail
EPOCHS=${1:-4}
OUT=${2:-runs/ablation}
DATA=${DATA:-../shared/data/oxford-pets-sample}
BIN=.venv/bin
for model in gcn_efficientnet_lite0 gcn_k1_efficientnet_lite0; do
  $BIN/gcnseg -q train --config pets_default --data "$DATA" --model "$model" --epochs "$EPOCHS" \
    --output "$OUT" --name "$model" --set train.threads=1 --set data.workers=0 &
done
wait
for model in gcn_efficientnet_lite0 gcn_k1_efficientnet_lite0; do
  $BIN/gcnseg -q test --checkpoint "$OUT/$model" --data "$DATA" \
    --manifest manifests/oxford-pets-sample.json --json "$OUT/$model/test.json" --worst 0 >/dev/null
done
$BIN/gcnseg bench --models gcn_efficientnet_lite0 gcn_k1_efficientnet_lite0 --sizes 448 \
  --modes infer-cl --quick --json "$OUT/speed.json" >/dev/null
$BIN/python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
speed = {r["model"]: r for r in json.loads((out / "speed.json").read_text())["results"]}
print("| model | k | test mIoU | IoU bg / cat / dog | pixel acc. | infer img/s @448 |")
print("|---|---|---|---|---|---|")
for model, k in (("gcn_efficientnet_lite0", 15), ("gcn_k1_efficientnet_lite0", 1)):
    r = json.loads((out / model / "test.json").read_text())
    ious = " / ".join(f"{v:.3f}" for v in r["iou"])
    rate = speed.get(model, {}).get("img_per_s")
    print(f"| {model} | {k} | {r['miou']:.4f} | {ious} | {r['pixel_accuracy']:.4f} | {rate if rate is None else f'{rate:.2f}'} |")
PY
