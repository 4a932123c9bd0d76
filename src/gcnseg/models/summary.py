"""What a model costs: the one FLOP counter (`gcnseg models`, `gcnseg bench`) and the table."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from gcnseg.errors import GcnsegError
from gcnseg.models.backbones import get_backbone_spec
from gcnseg.models.registry import create_model, list_models, model_entry


def count_gflops(model: nn.Module, size: int, *, train: bool = False) -> float:
    """GFLOPs per size×size image (2 × multiply-adds) of a forward, or forward + backward.

    The model runs in contiguous format (channels-last changes no FLOPs) and goes back to the
    train/eval mode it came in.
    """
    was_training = model.training
    model = model.to(memory_format=torch.contiguous_format).train(train)
    images = torch.rand(1, 3, size, size)
    counter = FlopCounterMode(
        display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flops}
    )
    with counter:
        if train:
            labels = torch.zeros(1, size, size, dtype=torch.long)
            F.cross_entropy(model(images), labels).backward()
        else:
            with torch.no_grad():
                model(images)
    model.train(was_training)
    return counter.get_total_flops() / 1e9


def _conv_backward_flops(
    grad_out_shape: list[int],
    x_shape: list[int],
    w_shape: list[int],
    _bias: Any,
    _stride: Any,
    _padding: Any,
    _dilation: Any,
    transposed: bool,
    _output_padding: Any,
    _groups: int,
    output_mask: list[bool],
    **_kwargs: Any,
) -> int:
    """Each requested gradient costs one forward's multiply-adds.

    torch's own formula prices grad_weight of a grouped conv as if dense (×C for a depthwise conv,
    pytorch/pytorch#183405), which made EfficientNet's training FLOPs ~40× too high.
    """
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


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
                "gflops": count_gflops(model, size),
                "offline_weights": get_backbone_spec(backbone).offline_weights() is not None,
            }
        )
    return rows


def format_model_table(size: int, pattern: str = "*") -> str:
    """The `gcnseg models` table; a pattern that matches nothing is a one-line error saying why."""
    if not list_models(pattern):
        raise GcnsegError(
            f"no model matches {pattern!r}: gcnseg builds GCN models only, named gcn_<backbone> "
            f"and gcn_k1_<backbone> ({', '.join(list_models())})"
        )
    header = f"{'model':<28}{'params (M)':>11}{'decoder (k)':>12}{f'GFLOPs@{size}':>13}  pretrained offline"
    lines = [header, "-" * len(header)]
    for row in model_rows(size, pattern):
        offline = "yes" if row["offline_weights"] else "no (--backbone-weights PATH_OR_URL)"
        lines.append(
            f"{row['model']:<28}{row['params_m']:>11.2f}{row['decoder_params_k']:>12.1f}"
            f"{row['gflops']:>13.2f}  {offline}"
        )
    return "\n".join(lines)
