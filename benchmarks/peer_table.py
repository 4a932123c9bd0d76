"""The like-for-like table of `inference_vs_peer.sh` (or, with --train, `train_vs_peer.sh`):
each of our rows beside LRASPP-MobileNetV3 on the same engine and precision, with the ratios.

    .venv/bin/python benchmarks/peer_table.py benchmarks/results [--train]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ENGINES = {
    "openvino": "OpenVINO (bf16 where native)",
    "onnx": "ONNX Runtime fp32",
    "torch": "torch channels-last + bf16 autocast",
}
REFINES = ("full", "quarter")


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def peer_inference(folder: Path, engine: str) -> tuple[list[float], list[float]]:
    """LRASPP's batch-4 img/s and batch-1 ms, before and after ours."""
    rates, latencies = [], []
    for when in ("before", "after"):
        for row in jsonl(folder / f"peer_lraspp_{engine}_{when}.jsonl"):
            (rates if row["batch"] == 4 else latencies).append(
                row["infer_img_s"] if row["batch"] == 4 else row["b1_ms"]
            )
    return rates, latencies


def inference_table(folder: Path) -> str:
    lines = [
        "| engine | model | img/s, batch 4 | × LRASPP | p50 ms, batch 1 | × LRASPP |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for engine, title in ENGINES.items():
        rates, latencies = peer_inference(folder, engine)
        rate, latency = statistics.mean(rates), statistics.mean(latencies)
        shown = " / ".join(f"{r:.1f}" for r in rates), " / ".join(f"{ms:.1f}" for ms in latencies)
        lines.append(
            f"| {title} | LRASPP-MobileNetV3 (before / after) | {shown[0]} | 1 | {shown[1]} | 1 |"
        )
        for refine in REFINES:
            for row in json.loads((folder / f"ours_{engine}_{refine}.json").read_text())["results"]:
                if "error" in row:
                    lines.append(f"| {title} | {row['model']}, {refine} | error | | | |")
                    continue
                ours, ms = row["img_per_s"], row["latency_p50_ms"]
                lines.append(
                    f"| {title} | {row['model']}, refine {refine} | {ours:.1f} | "
                    f"{ours / rate:.2f} | {ms:.1f} | {ms / latency:.2f} |"
                )
    return "\n".join(lines)


def train_table(folder: Path) -> str:
    lines = ["| model | mode | train img/s | × LRASPP's best mode |", "|---|---|---:|---:|"]
    peer = jsonl(folder / "peer_lraspp_train_before.jsonl")
    peer += jsonl(folder / "peer_lraspp_train_after.jsonl")
    best = {}
    for row in peer:
        mode = "train-bf16" if row["bf16"] else "train-cl"
        best.setdefault(mode, []).append(row["train_img_s"])
    best_rate = max(statistics.mean(v) for v in best.values())
    for mode, rates in best.items():
        shown = " / ".join(f"{r:.2f}" for r in rates)
        lines.append(
            f"| LRASPP-MobileNetV3 (before / after) | {mode} | {shown} | "
            f"{statistics.mean(rates) / best_rate:.2f} |"
        )
    for refine in REFINES:
        for row in json.loads((folder / f"train_512_{refine}.json").read_text())["results"]:
            rate = row.get("img_per_s")
            if rate is None:
                lines.append(f"| {row['model']}, refine {refine} | {row['mode']} | error | |")
                continue
            lines.append(
                f"| {row['model']}, refine {refine} | {row['mode']} | {rate:.2f} | "
                f"{rate / best_rate:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--train", action="store_true")
    args = parser.parse_args()
    print(train_table(args.folder) if args.train else inference_table(args.folder))


if __name__ == "__main__":
    main()
