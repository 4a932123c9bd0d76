"""Seeded, stratified, disjoint train/val/test splits saved as a JSON manifest of sample names.

A dataset's own split wins: CamVid's and split folders' train/val/test are taken whole, Oxford's
and VOC's trainval/test lists with a seeded val part of trainval.
"""

from __future__ import annotations

import json
import logging
import random
from collections import defaultdict
from pathlib import Path

from gcnseg.classes import ClassSet
from gcnseg.data.images import ImageTooLarge, image_size
from gcnseg.data.samples import DatasetIndex, Sample
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import write_json

SPLITS = ("train", "val", "test")
SOURCES = ("seeded", "official")
# What a manifest may hold besides `splits`: the record of how it was made (see `make_split`).
PROVENANCE_KEYS = (
    "dataset",
    "source",
    "seed",
    "test_fraction",
    "val_fraction",
    "max_side",
    "classes",
)
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
    train_on_val: bool = False,
) -> dict:
    """Manifest dict: the split of `index` by name; official trainval/test lists when present.

    `max_side` drops images whose longer side is >= it (the seed project's filter).
    `train_on_val` moves val into train, for a final model that learns from every labelled image
    once a recipe is chosen (CamVid papers train on train + val); test stays held out.
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
    official = index.official_splits if use_official else {}
    if set(SPLITS) <= official.keys():
        splits = {split: sorted(n for n in official[split] if n in by_name) for split in SPLITS}
        source = "official"
    else:
        if {"trainval", "test"} <= official.keys():
            test = sorted(n for n in official["test"] if n in by_name)
            trainval = [by_name[n] for n in official["trainval"] if n in by_name]
            source = "official"
        else:
            test, rest = _stratified(samples, test_fraction, rng)
            trainval = [by_name[n] for n in rest]
            source = "seeded"
        val, train = _stratified(trainval, val_fraction, rng)
        splits = {"train": train, "val": val, "test": test}
    if train_on_val:
        splits = {**splits, "train": sorted(splits["train"] + splits["val"]), "val": []}
    return {
        "dataset": index.layout,
        "source": source,
        "seed": seed,
        "test_fraction": test_fraction,
        "val_fraction": val_fraction,
        "max_side": max_side,
        "classes": index.classes.to_dict(),
        "splits": splits,
    }


def save_manifest(path: str | Path, manifest: dict) -> None:
    write_json(path, manifest)


def load_manifest(path: str | Path) -> dict:
    """The manifest at `path`, checked strictly (see `check_manifest`)."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise GcnsegError(f"{path}: manifest not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GcnsegError(f"{path}: not a JSON manifest ({exc})") from None
    except OSError as exc:
        raise GcnsegError(f"{path}: cannot read manifest ({exc})") from None
    check_manifest(manifest, path)
    return manifest


def check_manifest(manifest: object, path: Path) -> None:
    """`splits` is required and holds exactly train, val and test, lists of sample names that
    no two splits share. Everything else records how the split was made and is optional, so a
    bare `{"splits": {...}}` is a hand-made split of whatever dataset it is used with; a key
    that is present must have its type, and any other key is an error naming it."""
    if not isinstance(manifest, dict):
        raise GcnsegError(f"{path}: a manifest is a JSON object with `splits`")
    unknown = [key for key in manifest if key != "splits" and key not in PROVENANCE_KEYS]
    if unknown:
        known = ", ".join(("splits", *PROVENANCE_KEYS))
        raise GcnsegError(f"{path}: unknown manifest key {unknown[0]!r} (known: {known})")
    splits = manifest.get("splits")
    if not isinstance(splits, dict) or set(splits) != set(SPLITS):
        raise GcnsegError(f"{path}: manifest needs `splits` with exactly {', '.join(SPLITS)}")
    for split in SPLITS:
        names = splits[split]
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise GcnsegError(f"{path}: split {split} must list sample names (strings)")
    _check_disjoint(path, splits)
    _check_provenance(manifest, path)


def _check_provenance(manifest: dict, path: Path) -> None:
    def fail(key: str, rule: str) -> None:
        raise GcnsegError(f"{path}: manifest {key} must be {rule}, got {manifest[key]!r}")

    def number(value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if "dataset" in manifest and not isinstance(manifest["dataset"], str):
        fail("dataset", "a layout name (a string)")
    if "source" in manifest and manifest["source"] not in SOURCES:
        fail("source", " or ".join(SOURCES))
    seed = manifest.get("seed", 0)
    if not (isinstance(seed, int) and not isinstance(seed, bool)):
        fail("seed", "an int")
    for key in ("test_fraction", "val_fraction"):
        if key in manifest and not (number(manifest[key]) and 0 <= manifest[key] < 1):
            fail(key, "a number in [0, 1)")
    side = manifest.get("max_side")
    if side is not None and not (isinstance(side, int) and not isinstance(side, bool) and side > 0):
        fail("max_side", "a positive int or null")
    if "classes" in manifest:
        try:
            ClassSet.from_dict(manifest["classes"])
        except GcnsegError as exc:
            raise GcnsegError(f"{path}: manifest classes: {exc}") from None


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


def has_own_split(index: DatasetIndex) -> bool:
    """Whether the dataset comes split whole (CamVid's folders, images/train + images/val)."""
    return set(SPLITS) <= index.official_splits.keys()


def split_samples(index: DatasetIndex, manifest: str | Path | None, split: str) -> list[Sample]:
    """The samples of one split of `manifest`; without one, of the dataset's own split when it
    has a whole one (CamVid, split folders), else every pair of `index`. An empty split is one
    line saying why, where the dataset knows (CamVid without its test folders)."""
    if manifest:
        names, where = load_manifest(manifest)["splits"][split], manifest
    elif has_own_split(index):
        names, where = index.official_splits[split], index.root
    else:
        return index.samples
    if not names:
        note = index.split_notes.get(split)
        raise GcnsegError(f"{where}: the {split} split is empty" + (f": {note}" if note else ""))
    return select(index, names)
