"""Backbones by name. Each returns the feature maps at strides 4, 8, 16 and 32 as a list."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from gcnseg.errors import GcnsegError
from gcnseg.extras import install_hint


@dataclass(frozen=True)
class FeatureInfo:
    """Channels and stride of one tapped feature map (in the spirit of timm's feature_info)."""

    num_chs: int
    reduction: int


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone, and where its pretrained weights come from."""

    builder: Callable[..., nn.Module]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    offline_weights: Callable[[], str | None]  # path of weights shipped in an installed package
    weights_extra: str | None = None  # the gcnseg extra that installs that package, if optional

    def missing_weights(self, name: str) -> str:
        """Why `imagenet` cannot load offline, and what to do instead."""
        install = (
            f"install them ({install_hint(self.weights_extra)}), " if self.weights_extra else ""
        )
        return (
            f"no offline ImageNet weights for {name}: {install}pass a file or URL of "
            "torchvision-compatible weights (--backbone-weights PATH_OR_URL), or 'random'"
        )


BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(name: str, spec: BackboneSpec) -> None:
    if name in BACKBONES:
        raise ValueError(f"backbone {name!r} is already registered")
    BACKBONES[name] = spec


def get_backbone_spec(name: str) -> BackboneSpec:
    _import_families()
    if name not in BACKBONES:
        raise GcnsegError(f"unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}")
    return BACKBONES[name]


def list_backbones(pattern: str = "*") -> list[str]:
    _import_families()
    return sorted(n for n in BACKBONES if fnmatch.fnmatch(n, pattern))


def _import_families() -> None:
    # Imported lazily so `import gcnseg.models.backbones` stays cheap; each module registers itself.
    from gcnseg.models.backbones import efficientnet_lite, resnet  # noqa: F401
