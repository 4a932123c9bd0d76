#!/usr/bin/env bash
# GCN-Lite0's inference engines beside torchvision's LRASPP-MobileNetV3, side by side in one
# run, 512², 2 threads, batch 4 (img/s) and batch 1 (p50 latency). The peer runs before and
# after ours, so a drift in the machine shows. Run it on an idle machine.
#   PEER_PYTHON=/tmp/peer/bin/python benchmarks/inference_vs_peer.sh [OUT_DIR]
# (the peer's venv: see the docstring of ../shared/tools/peer_bench.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PEER_PYTHON=${PEER_PYTHON:-/tmp/peer/bin/python}
PEER=../shared/tools/peer_bench.py
OUT=${1:-benchmarks/results}
mkdir -p "$OUT"
peer() {
  for batch in 4 1; do
    "$PEER_PYTHON" "$PEER" tv_lraspp_mbv3 --size 512 --batch "$batch" --threads 2 --cl --bf16 \
      --warmup 3 --repeats 10
  done
}
peer | tee "$OUT/peer_lraspp_before.jsonl"
.venv/bin/gcnseg bench --models gcn_efficientnet_lite0 --sizes 512 \
  --modes infer-cl infer-bf16 onnx onnx-int8 openvino openvino-int8 --threads 2 --batch-size 4 \
  --warmup 3 --repeats 10 --json "$OUT/engines_lite0_512.json" --markdown | tee "$OUT/engines_lite0_512.md"
peer | tee "$OUT/peer_lraspp_after.jsonl"
