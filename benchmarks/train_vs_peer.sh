#!/usr/bin/env bash
# Training speed of GCN-Lite0 and GCN-ResNet50 beside torchvision's
# LRASPP-MobileNetV3 and DeepLabV3-ResNet50, side by side in one run, 512², batch 4, 2 threads,
# each model in channels-last fp32 and with bf16 autocast, then the dense 3×3 convolution peak
# that GCN-ResNet50's achieved GFLOP/s is compared against. The light peer runs before and after
# ours, so a drift in the machine shows. Run it on an idle machine (about 10 minutes).
#   PEER_PYTHON=/tmp/peer/bin/python benchmarks/train_vs_peer.sh [OUT_DIR]
# (the peer's venv: see the docstring of ../shared/tools/peer_bench.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PEER_PYTHON=${PEER_PYTHON:-/tmp/peer/bin/python}
PEER=../shared/tools/peer_bench.py
OUT=${1:-benchmarks/results}
mkdir -p "$OUT"
peer() {
  for flags in "--cl --bf16" "--cl"; do
    # shellcheck disable=SC2086
    "$PEER_PYTHON" "$PEER" "$1" --size 512 --batch 4 --threads 2 $flags --warmup 2 --repeats 5
  done
}
peer tv_lraspp_mbv3 | tee "$OUT/peer_lraspp_train_before.jsonl"
.venv/bin/gcnseg bench --models gcn_efficientnet_lite0 gcn_resnet50 --sizes 512 \
  --modes train-cl train-bf16 --threads 2 --batch-size 4 --warmup 2 --repeats 5 \
  --json "$OUT/train_512.json" --markdown | tee "$OUT/train_512.md"
peer tv_deeplabv3_r50 | tee "$OUT/peer_deeplabv3_train.jsonl"
peer tv_lraspp_mbv3 | tee "$OUT/peer_lraspp_train_after.jsonl"
.venv/bin/python benchmarks/conv_peak.py --threads 2 --json "$OUT/conv_peak.json"
