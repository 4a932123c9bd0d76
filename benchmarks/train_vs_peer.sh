#!/usr/bin/env bash
# Training speed of GCN-Lite0 (both decoder refinements, model.refine full and quarter) beside
# torchvision's LRASPP-MobileNetV3, in one run, 512², batch 4, 2 threads, each model in
# channels-last fp32 and with bf16 autocast; LRASPP runs before and after ours, so a drift in the
# machine shows. WITH_RESNET=1 adds GCN-ResNet50, DeepLabV3-ResNet50 and the dense 3×3
# convolution peak GCN-ResNet50's GFLOP/s is compared against. Run it on an idle machine
# (about 6 minutes; 15 with WITH_RESNET=1).
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
ours() {  # $1: refine, $2...: models
  local refine=$1
  shift
  .venv/bin/gcnseg bench --models "$@" --sizes 512 --modes train-cl train-bf16 --refine "$refine" \
    --threads 2 --batch-size 4 --warmup 2 --repeats 5 --json "$OUT/train_512_$refine.json" \
    --markdown
}
peer tv_lraspp_mbv3 | tee "$OUT/peer_lraspp_train_before.jsonl"
ours full gcn_efficientnet_lite0 | tee "$OUT/train_512_full.md"
ours quarter gcn_efficientnet_lite0 | tee "$OUT/train_512_quarter.md"
peer tv_lraspp_mbv3 | tee "$OUT/peer_lraspp_train_after.jsonl"
if [ "${WITH_RESNET:-0}" = 1 ]; then
  .venv/bin/gcnseg bench --models gcn_resnet50 --sizes 512 --modes train-cl train-bf16 \
    --threads 2 --batch-size 4 --warmup 2 --repeats 5 --json "$OUT/train_512_resnet50.json" \
    --markdown | tee "$OUT/train_512_resnet50.md"
  peer tv_deeplabv3_r50 | tee "$OUT/peer_deeplabv3_train.jsonl"
  .venv/bin/python benchmarks/conv_peak.py --threads 2 --json "$OUT/conv_peak.json"
fi
.venv/bin/python benchmarks/peer_table.py "$OUT" --train
