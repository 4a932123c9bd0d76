"""Seeded, stratified, disjoint train/val/test splits saved as a JSON manifest of sample names."""

from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from pathlib import Path

from gcnseg.data.images import ImageTooLarge, image_size
from gcnseg.data.samples import DatasetIndex, Sample
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import write_json

SPLITS = ("train", "val", "test")
log = logging.getLogger(__name__)


def _take(names: list[str], fraction: float, rng: random.Random) -> tuple[list[str], list[str]]:
    """Split each group's names; a group's share is rounded, so each group is represented."""
    shuffled = sorted(names)
    rng.shuffle(shuffled)
    count = round(len(shuffled) * fraction)
    return shuffled[:count], shuffled[count:]


def _stratified(
    samples: list[Sample], fraction: float, rng: random.Random
) -> tuple[list[str], list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for sample in samples:
        groups[sample.group].append(sample.name)
    taken, rest = [], []
    for group in sorted(groups):
        t, r = _take(groups[group], fraction, rng)
        taken += t
        rest += r
    return sorted(taken), sorted(rest)


def longer_side(path: Path) -> int | None:
    """From the header; None (logged) for an image too large to ever be used, which the
    `max_side` filter drops like any large image; other unreadable files stop the split."""
    try:
        return max(image_size(path))
    except ImageTooLarge as exc:
        log.warning("dropping %s", exc)
        return None
    except GcnsegError as exc:
        raise GcnsegError(f"{exc}; see `gcnseg data check`") from None


def make_split(
    index: DatasetIndex,
    *,
    test_fraction: float = 0.1,
    val_fraction: float = 0.1,
    seed: int = 0,
    max_side: int | None = None,
    use_official: bool = True,
) -> dict:
    """Manifest dict: the split of `index` by name; official trainval/test lists when present.

    `max_side` drops images whose longer side is >= it (the seed project's filter).
    """
    if not 0 <= test_fraction < 1 or not 0 <= val_fraction < 1:
        raise GcnsegError("split fractions must be in [0, 1)")
    samples = index.samples
    if max_side:
        samples = [s for s in samples if (side := longer_side(s.image)) and side < max_side]
    if not samples:
        raise GcnsegError(f"{index.root}: no samples left to split")
    rng = random.Random(seed)
    by_name = {s.name: s for s in samples}
    if use_official and {"trainval", "test"} <= index.official_splits.keys():
        test = sorted(n for n in index.official_splits["test"] if n in by_name)
        trainval = [by_name[n] for n in index.official_splits["trainval"] if n in by_name]
        source = "official"
    else:
        test, rest = _stratified(samples, test_fraction, rng)
        trainval = [by_name[n] for n in rest]
        source = "seeded"
    val, train = _stratified(trainval, val_fraction, rng)
    return {
        "dataset": index.layout,
        "source": source,
        "seed": seed,
        "test_fraction": test_fraction,
        "val_fraction": val_fraction,
        "max_side": max_side,
        "classes": index.classes.to_dict(),
        "splits": {"train": train, "val": val, "test": test},
    }


def save_manifest(path: str | Path, manifest: dict) -> None:
    write_json(path, manifest)


def load_manifest(path: str | Path) -> dict:
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise GcnsegError(f"{path}: manifest not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GcnsegError(f"{path}: not a JSON manifest ({exc})") from None
    except OSError as exc:
        raise GcnsegError(f"{path}: cannot read manifest ({exc})") from None
    splits = manifest.get("splits") if isinstance(manifest, dict) else None
    if not isinstance(splits, dict) or not all(isinstance(splits.get(k), list) for k in SPLITS):
        raise GcnsegError(f"{path}: manifest needs splits {', '.join(SPLITS)}")
    for split in SPLITS:
        if not all(isinstance(name, str) for name in splits[split]):
            raise GcnsegError(f"{path}: split {split} must list sample names (strings)")
    _check_disjoint(path, splits)
    return manifest


def _check_disjoint(path: Path, splits: dict[str, list[str]]) -> None:
    """A name in two splits (or twice in one) would be scored on what it was trained on."""
    seen: dict[str, str] = {}
    for split in SPLITS:
        for name in splits[split]:
            if name in seen:
                if seen[name] == split:
                    raise GcnsegError(f"{path}: sample {name!r} is listed twice in {split}")
                raise GcnsegError(
                    f"{path}: sample {name!r} is in both {seen[name]} and {split}; "
                    "splits must not overlap"
                )
            seen[name] = split


def select(index: DatasetIndex, names: list[str]) -> list[Sample]:
    """The samples of `index` named in a split, in the split's order; unknown names are an error."""
    by_name = {s.name: s for s in index.samples}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise GcnsegError(
            f"{index.root}: {len(missing)} split names have no image/mask pair, e.g. {missing[:3]}"
        )
    return [by_name[n] for n in names]


def split_samples(index: DatasetIndex, manifest: str | Path | None, split: str) -> list[Sample]:
    """The samples of one split of `manifest`, or every pair of `index` without a manifest."""
    return select(index, load_manifest(manifest)["splits"][split]) if manifest else index.samples
