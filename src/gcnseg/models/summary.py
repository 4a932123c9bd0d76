"""`gcnseg models`: parameters, forward GFLOPs and offline weight availability per model."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gcnseg.models.backbones import get_backbone_spec
from gcnseg.models.registry import create_model, list_models, model_entry


def forward_gflops(model: nn.Module, size: int) -> float:
    """GFLOPs of one forward pass on a size×size image (a multiply-add counts as 2 FLOPs)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 1e9


def model_rows(size: int, pattern: str = "*", num_classes: int = 3) -> list[dict]:
    rows = []
    for name in list_models(pattern):
        model = create_model(name, num_classes=num_classes, backbone_weights="random").eval()
        backbone = model_entry(name).backbone
        decoder = sum(
            p.numel() for n, p in model.named_parameters() if not n.startswith("backbone.")
        )
        rows.append(
            {
                "model": name,
                "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
                "decoder_params_k": decoder / 1e3,
                "gflops": forward_gflops(model, size),
                "offline_weights": get_backbone_spec(backbone).offline_weights() is not None,
            }
        )
    return rows


def format_model_table(size: int, pattern: str = "*") -> str:
    header = f"{'model':<28}{'params (M)':>11}{'decoder (k)':>12}{f'GFLOPs@{size}':>13}  pretrained offline"
    lines = [header, "-" * len(header)]
    for row in model_rows(size, pattern):
        offline = "yes" if row["offline_weights"] else "no (--backbone-weights PATH_OR_URL)"
        lines.append(
            f"{row['model']:<28}{row['params_m']:>11.2f}{row['decoder_params_k']:>12.1f}"
            f"{row['gflops']:>13.2f}  {offline}"
        )
    return "\n".join(lines)
