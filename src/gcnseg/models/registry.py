"""Segmentation models by name: `gcn_<backbone>` and the paper's k=1 baseline `gcn_k1_<backbone>`."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from torch import nn

from gcnseg.errors import GcnsegError
from gcnseg.limits import REFINE_DEFAULT
from gcnseg.models.backbones import get_backbone_spec, list_backbones
from gcnseg.models.frozen_bn import freeze_batchnorm
from gcnseg.models.gcn import GCN

DEFAULT_KERNEL_SIZE = 15  # the paper's best at 512² input (the seed project used input/32 - 1)


@dataclass(frozen=True)
class ModelEntry:
    backbone: str
    kernel_size: int


def _entries() -> dict[str, ModelEntry]:
    entries = {}
    for backbone in list_backbones():
        entries[f"gcn_{backbone}"] = ModelEntry(backbone, DEFAULT_KERNEL_SIZE)
        entries[f"gcn_k1_{backbone}"] = ModelEntry(backbone, 1)
    return entries


def list_models(pattern: str = "*") -> list[str]:
    return sorted(n for n in _entries() if fnmatch.fnmatch(n, pattern))


def model_entry(name: str) -> ModelEntry:
    entries = _entries()
    if name not in entries:
        raise GcnsegError(f"unknown model {name!r}; known: {', '.join(sorted(entries))}")
    return entries[name]


def create_model(
    name: str,
    *,
    num_classes: int,
    backbone_weights: str = "imagenet",
    kernel_size: int | None = None,
    decoder_width: int | None = None,
    refine: str = REFINE_DEFAULT,
    freeze_bn: bool = False,
    freeze_stem: bool = False,
) -> nn.Module:
    """Build a model. `backbone_weights`: "imagenet" (weights shipped offline), "random", or a path/URL."""
    entry = model_entry(name)
    spec = get_backbone_spec(entry.backbone)
    backbone = build_backbone(entry.backbone, backbone_weights)
    backbone.strip_classifier()
    model = GCN(
        backbone,
        num_classes,
        mean=spec.mean,
        std=spec.std,
        kernel_size=kernel_size or entry.kernel_size,
        width=decoder_width,
        refine=refine,
    )
    if freeze_stem:
        for module in backbone.stem():
            module.requires_grad_(False)
    if freeze_bn:
        freeze_batchnorm(backbone)
    return model


def build_backbone(name: str, weights: str) -> nn.Module:
    from gcnseg.models.weights import load_backbone_weights

    spec = get_backbone_spec(name)
    backbone = spec.builder()
    if weights == "random":
        return backbone
    if weights == "imagenet":
        source = spec.offline_weights()
        if source is None:
            raise GcnsegError(spec.missing_weights(name))
        weights = source
    load_backbone_weights(backbone, weights)
    return backbone
