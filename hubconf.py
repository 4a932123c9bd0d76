"""torch.hub entry points: `torch.hub.load(path_to_this_repo, "pets_default", source="local")`."""

import sys
from pathlib import Path

dependencies = ["torch", "numpy", "PIL", "yaml"]

# A clone used without `pip install`: import the package from its source folder.
sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))


def pets_default(engine: str = "auto", **kwargs):
    """The packaged cat / dog / background model (GCN + BR on EfficientNet-Lite2), a Segmenter."""
    import gcnseg

    return gcnseg.load("pets-default", engine=engine, **kwargs)
