"""What `predict` reads and the names it writes: inputs expanded safely, one output name per input.

Two inputs may share a file name (`sub1/x.jpg`, `sub2/x.jpg`); their outputs must not overwrite
each other, so names mirror the paths below the inputs' common folder. Nor may an output overwrite
an input, and a previous run's outputs in a listed folder are not taken for new inputs.
"""

from __future__ import annotations

import glob
import logging
import os
import stat
from pathlib import Path

from gcnseg.data.images import IMAGE_EXTENSIONS
from gcnseg.errors import GcnsegError

log = logging.getLogger(__name__)

OUTPUT_SUFFIXES = ("_mask.png", "_overlay.jpg", "_panel.png")  # what `predict` writes per input


def _is_regular(path: Path) -> bool:
    """A regular file (after symlinks); a FIFO or device named x.jpg would block a reader."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _keep(path: Path) -> bool:
    if _is_regular(path):
        return True
    log.warning("skipping %s: not a regular file", path)
    return False


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns, in order, without duplicates.

    Anything that is not a regular file (a FIFO, a socket, a device) is skipped with a warning
    and never opened. A folder contributes only files with an image extension; a file named
    explicitly is taken whatever its extension (its content decides, see `read_image`). A
    folder or pattern does not contribute files named like `predict`'s outputs
    (OUTPUT_SUFFIXES): predicting into the input folder twice must not segment the overlays.
    """
    found: list[Path] = []
    earlier_outputs = 0
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            listed = [p for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS]
        elif os.path.lexists(path):
            if _keep(path):
                found.append(path)
            continue
        else:
            listed = sorted(Path(p) for p in glob.glob(item, recursive=True))
            if not listed:
                raise GcnsegError(f"{item}: no such file, folder or matching pattern")
        inputs_here = [p for p in listed if not is_output_name(p)]
        earlier_outputs += len(listed) - len(inputs_here)
        found += [p for p in inputs_here if not p.is_dir() and _keep(p)]
    if earlier_outputs:
        log.info("not segmenting %d files named like earlier predictions", earlier_outputs)
    by_identity: dict[Path, Path] = {}
    for p in found:
        by_identity.setdefault(_identity(p), p)  # the first spelling the user gave
    if not by_identity:
        raise GcnsegError("no input images found")
    return list(by_identity.values())


def is_output_name(path: Path) -> bool:
    """Named like one of `predict`'s outputs (`x_mask.png`, `x_overlay.jpg`, `x_panel.png`)."""
    return path.name.lower().endswith(OUTPUT_SUFFIXES)


def check_no_overwrite(inputs: list[Path], prefixes: list[Path]) -> None:
    """Refuse, before any work, an output (`prefixes[i]` + one of OUTPUT_SUFFIXES) that is an
    input: `predict pin/cat.jpg pin/cat_overlay.jpg --out pin` would replace the user's file."""
    by_identity = {_identity(p): p for p in inputs}
    by_inode = {_inode(p): p for p in inputs}  # a link to an input, or a case-blind disk
    by_inode.pop(None, None)
    for source, prefix in zip(inputs, prefixes, strict=True):
        for suffix in OUTPUT_SUFFIXES:
            out = Path(f"{prefix}{suffix}")
            clash = by_identity.get(_identity(out)) or by_inode.get(_inode(out))
            if clash is not None:
                kind = suffix[1:].split(".")[0]
                raise GcnsegError(
                    f"{clash}: the {kind} of {source} would overwrite this input; "
                    "write the predictions to another folder"
                )


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _identity(path: Path) -> Path:
    """`a/../a/x.jpg` and `./a/x.jpg` are one input: compare normalised absolute paths."""
    return Path(os.path.normpath(path.absolute()))


def output_stems(paths: list[Path]) -> list[str]:
    """One unique output name per input (no extension; callers add `_mask.png` and so on).

    An input whose stem no other input shares keeps its bare stem (`x.jpg` gives `x`). Stems
    that clash mirror the inputs' paths below their common folder, so `sub1/x.jpg` and
    `sub2/x.jpg` give `sub1/x` and `sub2/x`; names that still collide (`x.jpg` and `x.png`) get
    the extension appended (`x_jpg`, `x_png`), then a counter as the last resort.
    """
    if not paths:
        return []
    absolute = [_identity(p) for p in paths]
    bare = [p.stem.lower() for p in absolute]
    clashing = [p for p, stem in zip(absolute, bare, strict=True) if bare.count(stem) > 1]
    common = Path(os.path.commonpath([p.parent for p in clashing])) if clashing else None
    stems = [
        p.relative_to(common).with_suffix("").as_posix() if p in clashing else p.stem
        for p in absolute
    ]
    lowered = [s.lower() for s in stems]
    repeated = {s for s in stems if lowered.count(s.lower()) > 1}
    names = [
        f"{s}_{p.suffix.lstrip('.').lower()}" if s in repeated and p.suffix else s
        for s, p in zip(stems, absolute, strict=True)
    ]
    taken: set[str] = set()  # lowercased: x.jpg and X.jpg clash on case-insensitive disks
    unique = []
    for name in names:
        candidate, count = name, 0
        while candidate.lower() in taken:
            count += 1
            candidate = f"{name}_{count}"
        taken.add(candidate.lower())
        unique.append(candidate)
    return unique
