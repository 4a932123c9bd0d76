"""Everything Oxford-IIIT Pet: classes, trimap decoding, list.txt, official splits, indexing,
the ground truth of an image in the layout, and the download of the official release.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gcnseg.classes import IGNORE_INDEX, ClassSet
from gcnseg.data.samples import DatasetIndex, Sample, files_by_stem, unpaired
from gcnseg.errors import GcnsegError
from gcnseg.io.atomic import write_json
from gcnseg.io.download import download_file, safe_extract_tar

LICENSE = "CC BY-SA 4.0"  # the annotations' licence, as the dataset's page states
PETS = ClassSet(
    ("background", "cat", "dog"), ((0, 0, 0), (255, 140, 0), (30, 144, 255)), background=0
)
CAT, DOG = 1, 2  # class indices, and list.txt's SPECIES ids
# Trimap values: the pet, the background, and the uncertain border (ignored).
TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER = 1, 2, 3
TRIMAP_VALUES = frozenset({TRIMAP_PET, TRIMAP_BACKGROUND, TRIMAP_BORDER})


@dataclass(frozen=True)
class TrimapDecoder:
    """Trimap -> class indices: pet pixels become `pet_class`, the border becomes ignore."""

    pet_class: int

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        label = np.full(raw.shape, IGNORE_INDEX, np.uint8)
        label[raw == TRIMAP_BACKGROUND] = 0
        label[raw == TRIMAP_PET] = self.pet_class
        return label


def is_oxford_layout(root: Path) -> bool:
    return (root / "annotations" / "trimaps").is_dir() and (root / "images").is_dir()


def read_species(path: Path) -> dict[str, int]:
    """list.txt lines are "Image CLASS-ID SPECIES BREED-ID" with species 1 = cat, 2 = dog."""
    species = {}
    if path.is_file():
        for line in read_lines(path):
            parts = line.split()
            if len(parts) >= 3 and not line.startswith("#") and parts[2] in ("1", "2"):
                species[parts[0]] = int(parts[2])
    return species


def read_lines(path: Path) -> list[str]:
    """The lines of one of the release's text files, or one line naming it when unreadable."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise GcnsegError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise GcnsegError(f"{path}: cannot read ({exc.strerror or exc})") from None


def pet_class(stem: str, species: dict[str, int]) -> int:
    """From list.txt; else the dataset's convention: capitalised names are cats."""
    return species.get(stem, CAT if stem[:1].isupper() else DOG)


def breed(stem: str) -> str:
    """The breed in an image's name: `Abyssinian_12` -> `Abyssinian`, `great_pyrenees_3` -> ..."""
    return stem.rsplit("_", 1)[0]


def index_oxford(root: Path) -> DatasetIndex:
    image_files = files_by_stem(root / "images")
    mask_files = files_by_stem(root / "annotations" / "trimaps")
    images, masks = image_files.by_name, mask_files.by_name
    species = read_species(root / "annotations" / "list.txt")
    samples = [
        Sample(
            stem,
            image,
            masks[stem],
            stem.rsplit("_", 1)[0],
            TrimapDecoder(pet_class(stem, species)),
            TRIMAP_VALUES,
        )
        for stem, image in images.items()
        if stem in masks
    ]
    official = {}
    for split, filename in (("trainval", "trainval.txt"), ("test", "test.txt")):
        listing = root / "annotations" / filename
        if listing.is_file():
            official[split] = [ln.split()[0] for ln in read_lines(listing) if ln.strip()]
    return DatasetIndex(
        root=root,
        layout="oxford-pets",
        classes=PETS,
        samples=samples,
        allowed_mask_values=TRIMAP_VALUES,
        official_splits=official,
        **unpaired(image_files, mask_files),
    )


def truth_sample(image_path: Path) -> Sample | None:
    """The labelled sample of an image inside an Oxford layout (images/X.jpg), if it has a trimap."""
    root = image_path.parent.parent
    trimap = root / "annotations" / "trimaps" / f"{image_path.stem}.png"
    if image_path.parent.name != "images" or not trimap.is_file():
        return None
    species = read_species(root / "annotations" / "list.txt")
    decoder = TrimapDecoder(pet_class(image_path.stem, species))
    return Sample(image_path.stem, image_path, trimap, "", decoder, TRIMAP_VALUES)


OXFORD_PETS_URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data"
# The md5s torchvision's OxfordIIITPet checks, so a file that passes here passes there too.
OXFORD_PETS_MD5 = {
    "images.tar.gz": "5c4f3ee8e5d25df40f4fd59a7f44e54c",
    "annotations.tar.gz": "95a8c909bbe2e81eed6a22bccdf3f68f",
}
COMPLETE_MARKER = ".gcnseg-complete"


def download_oxford_pets(
    root: Path,
    url_base: str = OXFORD_PETS_URL,
    *,
    progress: bool = True,
    checksums: dict[str, str] | None = None,
) -> Path:
    """Download, verify and unpack both archives into `root`; return `root`.

    `checksums` maps an archive name to an md5 (32 hex digits) or sha256 hex digest and
    overrides the official one, e.g. for a mirror or test tarballs. The archives stay in
    `root/downloads/`, so an interrupted run resumes instead of starting over; the marker file
    is written last, so its presence means the whole dataset is in place.
    """
    root = Path(root)
    marker = root / COMPLETE_MARKER
    if marker.is_file():
        return root
    digests = _digests(checksums)
    for name, digest in digests.items():
        archive = download_file(
            f"{url_base.rstrip('/')}/{name}",
            root / "downloads" / name,
            progress=progress,
            **_digest_kwarg(digest),
        )
        safe_extract_tar(archive, root)
    missing = [d for d in ("images", "annotations") if not (root / d).is_dir()]
    if missing:
        raise GcnsegError(f"the Oxford-IIIT Pet archives did not contain {missing} under {root}")
    write_json(marker, {"dataset": "oxford-iiit-pet", "url_base": url_base, "files": digests})
    return root


def _digests(checksums: dict[str, str] | None) -> dict[str, str]:
    """Official md5s with overrides; an unknown name is a typo that would otherwise be ignored."""
    unknown = sorted(set(checksums or {}) - set(OXFORD_PETS_MD5))
    if unknown:
        raise GcnsegError(
            f"unknown Oxford-IIIT Pet archive(s) {unknown}: use {list(OXFORD_PETS_MD5)}"
        )
    return {**OXFORD_PETS_MD5, **(checksums or {})}


def _digest_kwarg(digest: str) -> dict[str, str]:
    """32 hex digits is an md5; anything else is taken as a sha256 (or a prefix of one)."""
    return {"md5": digest} if len(digest) == 32 else {"sha256": digest}
