"""Models: backbones by name, the GCN decoder and the segmentation models built from them."""

from gcnseg.models.registry import create_model, list_models

__all__ = ["create_model", "list_models"]
