"""download_oxford_pets against a loopback server serving tarballs of generated pairs."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from _loopback import LoopbackServer
from gcnseg.data.layouts import index_dataset
from gcnseg.data.oxford_pets import COMPLETE_MARKER, download_oxford_pets
from gcnseg.errors import GcnsegError

STEMS = ["Abyssinian_1", "Abyssinian_2", "beagle_1", "beagle_2"]


def _tar(path: Path, files: dict[str, Path]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for arcname, source in files.items():
            tar.add(source, arcname=arcname)
    return path


@pytest.fixture
def served(tiny_pets: Path, http_server: LoopbackServer) -> tuple[str, dict[str, str]]:
    """(url_base, checksums) for official-layout tarballs of a few generated pairs."""
    images = _tar(
        http_server.root / "images.tar.gz",
        {f"images/{s}.jpg": tiny_pets / "images" / f"{s}.jpg" for s in STEMS},
    )
    annotations = _tar(
        http_server.root / "annotations.tar.gz",
        {
            "annotations/list.txt": tiny_pets / "annotations" / "list.txt",
            **{
                f"annotations/trimaps/{s}.png": tiny_pets / "annotations" / "trimaps" / f"{s}.png"
                for s in STEMS
            },
        },
    )
    checksums = {  # one of each kind, as both are accepted
        images.name: hashlib.md5(images.read_bytes()).hexdigest(),
        annotations.name: hashlib.sha256(annotations.read_bytes()).hexdigest(),
    }
    return f"{http_server.url}/", checksums


def test_download_oxford_pets_official_layout_and_marker(
    served: tuple[str, dict[str, str]],
    http_server: LoopbackServer,
    tiny_pets: Path,
    tmp_path: Path,
) -> None:
    url_base, checksums = served
    root = tmp_path / "pets"
    assert download_oxford_pets(root, url_base, progress=False, checksums=checksums) == root
    for stem in STEMS:
        image = root / "images" / f"{stem}.jpg"
        assert image.read_bytes() == (tiny_pets / "images" / f"{stem}.jpg").read_bytes()
        assert (root / "annotations" / "trimaps" / f"{stem}.png").is_file()
    assert len(index_dataset(root).samples) == len(STEMS)
    assert sorted(p.name for p in (root / "downloads").iterdir()) == [
        "annotations.tar.gz",
        "images.tar.gz",
    ]
    assert json.loads((root / COMPLETE_MARKER).read_text())["files"] == checksums
    assert sorted(http_server.paths) == ["/annotations.tar.gz", "/images.tar.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets", "srv"]  # no temp dirs left

    download_oxford_pets(root, url_base, progress=False, checksums=checksums)
    assert len(http_server.paths) == 2  # the marker says done: nothing fetched again


def test_download_oxford_pets_bad_checksum_writes_no_marker(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    url_base, checksums = served
    root = tmp_path / "pets"
    wrong = {**checksums, "annotations.tar.gz": "0" * 32}
    with pytest.raises(GcnsegError, match=r"checksum mismatch for .*annotations\.tar\.gz"):
        download_oxford_pets(root, url_base, progress=False, checksums=wrong)
    assert not (root / COMPLETE_MARKER).exists()
    assert not (root / "annotations").exists()


def test_download_oxford_pets_rejects_unknown_checksum_name(tmp_path: Path) -> None:
    with pytest.raises(GcnsegError, match="unknown Oxford-IIIT Pet archive"):
        download_oxford_pets(tmp_path, "http://127.0.0.1:9", checksums={"image.tar.gz": "0" * 32})
    assert list(tmp_path.iterdir()) == []
