#!/usr/bin/env bash
# GCN-Lite0 and GCN-Lite2 (pets-default's architecture) beside torchvision's LRASPP-MobileNetV3,
# like with like: each engine and precision times every model (OpenVINO, bf16 where the CPU has
# it natively; ONNX Runtime fp32; eager torch channels-last + bf16 autocast), 512², 2 threads,
# batch 4 (img/s) and batch 1 (p50 latency). Ours run with both decoder refinements
# (model.refine: the paper's `full` and the default `quarter`). The peer runs before and after
# ours on each engine, so a drift in the machine shows. Run it on an idle machine (~15 minutes).
#   PEER_PYTHON=/tmp/peer/bin/python benchmarks/inference_vs_peer.sh [OUT_DIR]
# (the peer's venv: see the docstring of ../shared/tools/peer_bench.py; --engine needs openvino,
# onnx, onnxscript and onnxruntime there too)
set -euo pipefail
cd "$(dirname "$0")/.."
PEER_PYTHON=${PEER_PYTHON:-/tmp/peer/bin/python}
PEER=../shared/tools/peer_bench.py
OUT=${1:-benchmarks/results}
mkdir -p "$OUT"
COMMON=(--size 512 --threads 2 --warmup 3 --repeats 10)
peer() {  # $1: the peer's engine flags
  for batch in 4 1; do
    # shellcheck disable=SC2086
    "$PEER_PYTHON" "$PEER" tv_lraspp_mbv3 "${COMMON[@]}" --batch "$batch" $1
  done
}
ours() {  # $1: gcnseg bench mode, $2: engine, $3: refine
  .venv/bin/gcnseg bench --models gcn_efficientnet_lite0 gcn_efficientnet_lite2 --sizes 512 \
    --modes "$1" --refine "$3" --threads 2 --batch-size 4 --warmup 3 --repeats 10 \
    --json "$OUT/ours_${2}_$3.json" --markdown
}
for engine in openvino onnx torch; do
  case $engine in
    openvino) flags="--engine openvino"; mode="openvino" ;;
    onnx) flags="--engine onnx"; mode="onnx" ;;
    torch) flags="--cl --bf16"; mode="infer-bf16" ;;
  esac
  peer "$flags" | tee "$OUT/peer_lraspp_${engine}_before.jsonl"
  for refine in full quarter; do
    ours "$mode" "$engine" "$refine" | tee "$OUT/ours_${engine}_$refine.md"
  done
  peer "$flags" | tee "$OUT/peer_lraspp_${engine}_after.jsonl"
done
.venv/bin/python benchmarks/peer_table.py "$OUT"
