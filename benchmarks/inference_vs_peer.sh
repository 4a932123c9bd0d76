#!/usr/bin/env bash
# GCN-Lite0 beside torchvision's LRASPP-MobileNetV3, like with like: each engine and precision
# times both models (OpenVINO, bf16 where the CPU has it natively; ONNX Runtime fp32; eager torch
# channels-last + bf16 autocast), 512², 2 threads, batch 4 (img/s) and batch 1 (p50 latency).
# The peer runs before and after ours on each engine, so a drift in the machine shows. Run it
# on an idle machine.
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
ours() {  # $1: gcnseg bench modes
  # shellcheck disable=SC2086
  .venv/bin/gcnseg bench --models gcn_efficientnet_lite0 --sizes 512 --modes $1 --threads 2 \
    --batch-size 4 --warmup 3 --repeats 10 --json "$OUT/lite0_$2.json" --markdown
}
for engine in openvino onnx torch; do
  case $engine in
    openvino) flags="--engine openvino"; modes="openvino" ;;
    onnx) flags="--engine onnx"; modes="onnx" ;;
    torch) flags="--cl --bf16"; modes="infer-bf16" ;;
  esac
  peer "$flags" | tee "$OUT/peer_lraspp_${engine}_before.jsonl"
  ours "$modes" "$engine" | tee "$OUT/lite0_${engine}.md"
  peer "$flags" | tee "$OUT/peer_lraspp_${engine}_after.jsonl"
done
