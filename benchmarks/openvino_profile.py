"""Where an exported GCN spends its time in OpenVINO: per part (backbone / decoder / input and
output), per layer type and kernel, the slowest layers, and the layers that run in fp32 inside a
bf16 graph (the "fp32 islands"). Random weights: speed does not depend on them.

    .venv/bin/python benchmarks/openvino_profile.py gcn_efficientnet_lite0 --refine quarter
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

import numpy as np
import openvino
import torch

from gcnseg.classes import ClassSet
from gcnseg.inference.engines import native_bf16
from gcnseg.inference.export import export_onnx
from gcnseg.limits import REFINE_DEFAULT, REFINE_MODES
from gcnseg.models import create_model


def part(node: str) -> str:
    for name in ("backbone", "decoder", "classifier"):
        if f"/{name}/" in node or node.startswith(name):
            return "decoder" if name == "classifier" else name
    return "input/output"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--refine", choices=REFINE_MODES, default=REFINE_DEFAULT)
    parser.add_argument("--num-classes", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()

    torch.manual_seed(0)
    names = tuple(f"class_{i}" for i in range(args.num_classes))
    classes = ClassSet(names, ((0, 0, 0),) * args.num_classes)
    model = create_model(
        args.model, num_classes=args.num_classes, backbone_weights="random", refine=args.refine
    )
    precision = "bf16" if native_bf16() else "f32"
    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "model.onnx", classes=classes)
        config = {
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": args.threads,
            "PERF_COUNT": True,
        }
        compiled = openvino.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()
    images = np.random.rand(args.batch_size, 3, args.size, args.size).astype(np.float32)
    for _ in range(5):
        request.infer({0: images})
    parts: collections.Counter = collections.Counter()
    kinds: collections.Counter = collections.Counter()
    layers: collections.Counter = collections.Counter()
    for _ in range(args.runs):
        request.infer({0: images})
        for info in request.profiling_info:
            ms = info.real_time.total_seconds() * 1e3 / args.runs
            if ms > 0:
                parts[part(info.node_name)] += ms
                kinds[(part(info.node_name), info.node_type, info.exec_type)] += ms
                layers[(info.node_name, info.node_type, info.exec_type)] += ms
    total = sum(parts.values())
    print(
        f"{args.model}, refine {args.refine}, {args.num_classes} classes, {args.size}², batch "
        f"{args.batch_size}, {args.threads} threads, OpenVINO {precision}: {total:.2f} ms "
        "of layer time per inference (profiling adds a little)"
    )
    for name, ms in parts.most_common():
        print(f"  {name:<13} {ms:7.2f} ms  {ms / total:4.0%}")
    print("by layer type and kernel:")
    for (name, node_type, kernel), ms in kinds.most_common(args.top):
        print(f"  {ms:7.2f} ms  {name:<13} {node_type:<17} {kernel}")
    print("slowest layers:")
    for (node, node_type, kernel), ms in layers.most_common(args.top):
        print(f"  {ms:7.3f} ms  {node_type:<17} {kernel:<28} {node}")
    islands = [(k, ms) for k, ms in layers.items() if precision == "bf16" and "f32" in k[2]]
    print(f"fp32 layers in the {precision} graph: {sum(ms for _, ms in islands):.2f} ms")
    for (node, node_type, kernel), ms in sorted(islands, key=lambda item: -item[1])[: args.top]:
        print(f"  {ms:7.3f} ms  {node_type:<17} {kernel:<28} {node}")


if __name__ == "__main__":
    main()
