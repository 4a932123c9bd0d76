#!/usr/bin/env bash
# GCN k=15 vs the paper's k=1 baseline on the pets_default recipe cut to EPOCHS: validation and
# test mIoU (benchmarks/recipe_search.sh: one run after another, whole machine) and inference img/s.
# usage: benchmarks/ablate_kernel.sh [EPOCHS] [OUT]   (from the repository root, after `make test`)
set -euo pipefail
EPOCHS=${1:-8}
OUT=${2:-runs/ablation}
BIN=.venv/bin
benchmarks/recipe_search.sh "$OUT" \
  k15 "--model gcn_efficientnet_lite2 --epochs $EPOCHS" \
  k1 "--model gcn_k1_efficientnet_lite2 --epochs $EPOCHS"
$BIN/gcnseg bench --models gcn_efficientnet_lite2 gcn_k1_efficientnet_lite2 --sizes 448 \
  --modes infer-cl --quick --json "$OUT/speed.json" >/dev/null
$BIN/python benchmarks/recipe_table.py "$OUT" k15 k1
$BIN/python - "$OUT/speed.json" <<'PY'
import json, sys
for r in json.loads(open(sys.argv[1]).read())["results"]:
    print(f"{r['model']}: {r['img_per_s']:.2f} img/s at 448 (torch, channels-last)")
PY
