"""Fetch the Oxford-IIIT Pet dataset into the official layout (`images/`, `annotations/`)."""

from __future__ import annotations

from pathlib import Path

from gcnseg.download import download_file, safe_extract_tar
from gcnseg.errors import GcnsegError
from gcnseg.fileio import write_json

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
