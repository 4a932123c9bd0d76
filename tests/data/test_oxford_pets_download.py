"""download_oxford_pets against a loopback server serving tarballs built from the real sample."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gcnseg.data.oxford_pets import COMPLETE_MARKER, download_oxford_pets
from gcnseg.errors import GcnsegError

SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "oxford-pets-sample"
STEMS = ["Abyssinian_10", "Abyssinian_100", "Abyssinian_101", "Abyssinian_102"]


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]  # set per server by the fixture

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        """Keep pytest output clean."""


def _tar(path: Path, files: dict[str, Path]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for arcname, source in files.items():
            tar.add(source, arcname=arcname)
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[str], dict[str, str]]]:
    """(url_base, request log, checksums) for official-layout tarballs of a few sample pairs."""
    if not SAMPLE.is_dir():
        pytest.skip(f"Oxford-IIIT Pet sample not found at {SAMPLE.resolve()}")
    srv_dir = tmp_path / "srv"
    srv_dir.mkdir()
    images = _tar(
        srv_dir / "images.tar.gz",
        {f"images/{s}.jpg": SAMPLE / "images" / f"{s}.jpg" for s in STEMS},
    )
    annotations = _tar(
        srv_dir / "annotations.tar.gz",
        {
            "annotations/list.txt": SAMPLE / "annotations" / "list.txt",
            **{
                f"annotations/trimaps/{s}.png": SAMPLE / "annotations" / "trimaps" / f"{s}.png"
                for s in STEMS
            },
        },
    )
    checksums = {  # one of each kind, as both are accepted
        images.name: hashlib.md5(images.read_bytes()).hexdigest(),
        annotations.name: hashlib.sha256(annotations.read_bytes()).hexdigest(),
    }
    requests: list[str] = []
    handler = type("Handler", (_CountingHandler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(srv_dir))
    )
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", requests, checksums
    server.shutdown()
    server.server_close()


def test_download_oxford_pets_official_layout_and_marker(
    served: tuple[str, list[str], dict[str, str]], tmp_path: Path
) -> None:
    url_base, requests, checksums = served
    root = tmp_path / "pets"
    assert download_oxford_pets(root, url_base, progress=False, checksums=checksums) == root
    for stem in STEMS:
        image = root / "images" / f"{stem}.jpg"
        assert image.read_bytes() == (SAMPLE / "images" / f"{stem}.jpg").read_bytes()
        assert (root / "annotations" / "trimaps" / f"{stem}.png").is_file()
    assert (root / "annotations" / "list.txt").is_file()
    assert sorted(p.name for p in (root / "downloads").iterdir()) == [
        "annotations.tar.gz",
        "images.tar.gz",
    ]
    assert json.loads((root / COMPLETE_MARKER).read_text())["files"] == checksums
    assert sorted(requests) == ["/annotations.tar.gz", "/images.tar.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets", "srv"]  # no temp dirs left

    download_oxford_pets(root, url_base, progress=False, checksums=checksums)
    assert len(requests) == 2


def test_download_oxford_pets_bad_checksum_writes_no_marker(
    served: tuple[str, list[str], dict[str, str]], tmp_path: Path
) -> None:
    url_base, _, checksums = served
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
