"""gcnseg: semantic segmentation with Global Convolutional Networks (Peng et al., 2017).

    import gcnseg
    seg = gcnseg.load("pets-default")        # or a run folder, checkpoint, saved folder, .onnx
    mask = seg.predict("photo.jpg")          # HxW uint8 class indices at the photo's size
    print(seg.classes.names, mask.shape)

Names here are imported on first use, so `import gcnseg` (and the CLI's start) stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from gcnseg._version import __version__

_EXPORTS = {
    "load": "gcnseg.inference.segmenter",
    "Segmenter": "gcnseg.inference.segmenter",
    "create_model": "gcnseg.models.registry",
    "list_models": "gcnseg.models.registry",
    "ClassSet": "gcnseg.classes",
    "GcnsegError": "gcnseg.errors",
}
__all__ = [
    "ClassSet",
    "GcnsegError",
    "Segmenter",
    "__version__",
    "create_model",
    "list_models",
    "load",
]

if TYPE_CHECKING:
    from gcnseg.classes import ClassSet
    from gcnseg.errors import GcnsegError
    from gcnseg.inference.segmenter import Segmenter, load
    from gcnseg.models.registry import create_model, list_models


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gcnseg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
