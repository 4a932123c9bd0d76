"""What `test` and `predict` score when not told: a run folder's own data and split.

A run folder keeps its dataset folder (data.json, else config.yaml's data.root) and its split
(manifest.json), so `gcnseg test --checkpoint runs/RUN` scores the run's test split with no
`--data`, and `gcnseg predict --checkpoint runs/RUN` segments its test images. Without a
manifest, a dataset with its own split (CamVid, split folders) scores that split; in any other a
named split cannot be told apart from the rest: scoring "val" would score every pair, training
images included, so a split without a manifest is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gcnseg.data.layouts import index_dataset
from gcnseg.data.samples import DatasetIndex
from gcnseg.data.splits import has_own_split, split_samples
from gcnseg.errors import GcnsegError
from gcnseg.io.formats import read_yaml
from gcnseg.source import PACKAGED, RUN_CHECKPOINTS
from gcnseg.training.rundata import MANIFEST_FILE, read_data_record


@dataclass(frozen=True)
class Scored:
    """The data to score: a dataset folder, and a manifest's split of it or (None) every pair."""

    root: Path
    manifest: Path | None
    split: str | None
    index: DatasetIndex  # root's, read once: callers need its samples


def run_folder(checkpoint: str | Path) -> Path | None:
    """The run folder a checkpoint names (the folder itself or its best.pt / last.pt), if it
    keeps a manifest; None for a packaged model or any other file."""
    if str(checkpoint) in PACKAGED:
        return None
    path = Path(checkpoint)
    folder = path if path.is_dir() else path.parent if path.name in RUN_CHECKPOINTS else None
    return folder if folder is not None and (folder / MANIFEST_FILE).is_file() else None


def run_root(run_dir: Path) -> Path | None:
    """The dataset folder the run trained on: recorded at its start, else its config's."""
    record = read_data_record(run_dir)
    if record is not None:
        return Path(record["root"])
    config = run_dir / "config.yaml"
    root = (read_yaml(config) or {}).get("data", {}).get("root") if config.is_file() else None
    return Path(root) if isinstance(root, str) and root else None


def scored_data(
    checkpoint: str | Path,
    data_root: Path | None = None,
    manifest: Path | None = None,
    split: str | None = None,
) -> Scored:
    """What to score: `data_root` (default: the run's own), split `split` (default test) of
    `manifest` (default: the run's, when scoring its own data), or every pair without one."""
    run = run_folder(checkpoint)
    own = run_root(run) if run is not None else None
    if data_root is None:
        if own is None:
            raise GcnsegError(
                f"{checkpoint}: no dataset to score: pass data_root (--data), or a run folder "
                "as the checkpoint (it keeps its dataset folder)"
            )
        data_root = own
    if manifest is None and own is not None and _same(data_root, own):
        manifest = run / MANIFEST_FILE  # type: ignore[operator]
    index = index_dataset(data_root)
    if manifest is not None:
        return Scored(Path(data_root), Path(manifest), split or "test", index)
    if split is not None and not has_own_split(index):
        raise GcnsegError(
            f"split {split!r} needs a manifest (--manifest), or a run folder as the checkpoint "
            f"(it keeps its split): without one every pair of {data_root} would be scored, "
            "training images included"
        )
    return Scored(Path(data_root), None, split, index)


def _same(a: Path, b: Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def run_test_images(checkpoint: str | Path) -> list[str]:
    """The images of a run folder's test split, for `predict` given no inputs."""
    if run_folder(checkpoint) is None:
        raise GcnsegError(
            "no inputs: pass images, folders or patterns to segment, or a run folder as "
            "--checkpoint to segment its test split"
        )
    scored = scored_data(checkpoint)
    samples = split_samples(scored.index, scored.manifest, "test")
    if not samples:
        raise GcnsegError(f"{scored.manifest}: the test split is empty; pass images to segment")
    return [str(sample.image) for sample in samples]
