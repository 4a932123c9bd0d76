"""Speed and memory benchmarks: FLOPs, training and inference throughput, latency, peak RSS.

`runner` plans the configurations and runs each model × size × mode in its own subprocess,
`worker` (the subprocess) builds the model and times it, `tables` prints rows and the machine
they were measured on. This module holds only the vocabulary, so `gcnseg --help` imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gcnseg.errors import GcnsegError
from gcnseg.limits import REFINE_DEFAULT, check_batch_size, check_eval_size, check_refine

PET_CLASSES = 3  # background, cat, dog: the Oxford-IIIT Pet task; speed barely depends on it
QUICK = {"warmup": 1, "repeats": 3}
DEFAULT_MODELS = (
    "gcn_efficientnet_lite0",
    "gcn_k1_efficientnet_lite0",
    "gcn_resnet50",
    "gcn_k1_resnet50",
)


@dataclass(frozen=True)
class Mode:
    """How one configuration runs: a training step or inference, memory format and precision."""

    train: bool = False
    channels_last: bool = False
    bf16: bool = False
    engine: str | None = None  # an engine over an ONNX export (gcnseg.inference.engines)

    @property
    def onnx(self) -> bool:
        return self.engine is not None


@dataclass(frozen=True)
class Settings:
    """What every configuration of one run shares; stored beside the results."""

    batch_size: int = 4  # for img/s; latency is measured at batch 1
    repeats: int = 10
    warmup: int = 2
    threads: int | None = None  # None: torch's default
    num_classes: int = PET_CLASSES
    refine: str = REFINE_DEFAULT  # the decoder's last refinements (gcnseg.limits.REFINE_MODES)

    def __post_init__(self) -> None:
        """A bad value is refused here, before any worker starts: a zero batch would time
        nothing and print 0 img/s."""
        check_batch_size(self.batch_size, "batch_size")
        _check_count(self.repeats, "repeats", 1)
        _check_count(self.warmup, "warmup", 0)
        if self.threads is not None:
            _check_count(self.threads, "threads", 1)
        _check_count(self.num_classes, "num_classes", 1)
        check_refine(self.refine)


def check_sizes(sizes: Sequence[int], name: str = "sizes") -> list[int]:
    """The image sides to benchmark, each one a valid eval size."""
    if not sizes:
        raise GcnsegError(f"{name} must name at least one size")
    return [check_eval_size(size, name) for size in sizes]


def _check_count(value: object, name: str, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise GcnsegError(f"{name} must be an integer >= {low}, got {value!r}")


MODES = {
    "train-fp32": Mode(train=True),
    "train-cl": Mode(train=True, channels_last=True),
    "train-bf16": Mode(train=True, channels_last=True, bf16=True),
    "infer-fp32": Mode(),
    "infer-cl": Mode(channels_last=True),
    "infer-bf16": Mode(channels_last=True, bf16=True),
    "onnx": Mode(engine="onnx"),
    "onnx-int8": Mode(engine="onnx-int8"),  # calibrated on random images: for speed only
    "openvino": Mode(engine="openvino"),
    "openvino-int8": Mode(engine="openvino-int8"),  # OpenVINO on the onnx-int8 file
}
TORCH_MODES = tuple(name for name, mode in MODES.items() if not mode.onnx)
