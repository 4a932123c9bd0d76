"""Hostile inputs: each broken file is refused in one line naming it, never replaced by
a neighbour in evaluation, never a traceback, never a hang. Tiny generated files only."""

from __future__ import annotations

import http.server
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from gcnseg.cli import main
from gcnseg.data.check import check_dataset
from gcnseg.data.dataset import SegmentationDataset, collate, make_loader
from gcnseg.data.layouts import index_dataset
from gcnseg.data.samples import Sample
from gcnseg.data.transforms import eval_transform, train_transform
from gcnseg.errors import GcnsegError
from gcnseg.io.download import Speed, download_file

SIZE = 32  # eval and crop side
PAIRS = 4
BROKEN = 1  # the pair each case breaks


def write_png_header(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width × height grey pixels: a decompression bomb to PIL."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\0" * 1024)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def make_folders(root: Path) -> Path:
    """images/ + masks/: PAIRS pairs of 24x20 noise with a class-1 box, classes background/box."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i in range(PAIRS):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
            root / "images" / f"p{i}.jpg", quality=95
        )
        mask = np.zeros((20, 24), np.uint8)
        mask[4 : 10 + i, 5:15] = 1
        Image.fromarray(mask).save(root / "masks" / f"p{i}.png")
    (root / "classes.yaml").write_text(yaml.safe_dump({"names": ["background", "box"]}))
    return root


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])


def _resize(path: Path) -> None:
    Image.fromarray(np.zeros((9, 7), np.uint8)).save(path)


def _mode(mode: str, value: int | tuple[int, ...]) -> Callable[[Path], None]:
    return lambda path: Image.new(mode, (24, 20), value).save(path)


def _values(value: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        mask = np.zeros((20, 24), np.uint8)
        mask[0, 0] = value
        Image.fromarray(mask).save(path)

    return write


# (case id, "image" or "mask", how to break that file)
BREAKAGES = [
    ("truncated-jpeg", "image", _truncate),
    ("zero-bytes-image", "image", lambda p: p.write_bytes(b"")),
    ("text-image", "image", lambda p: p.write_text("not an image\n")),
    ("bomb-image", "image", lambda p: write_png_header(p, 30_000, 30_000)),
    ("zero-bytes-mask", "mask", lambda p: p.write_bytes(b"")),
    ("size-mismatch", "mask", _resize),
    ("rgb-mask", "mask", _mode("RGB", (1, 1, 1))),
    ("two-channel-mask", "mask", _mode("LA", (1, 255))),
    ("class-value-too-high", "mask", _values(7)),
    ("bomb-mask", "mask", lambda p: write_png_header(p, 30_000, 30_000)),
]


@pytest.fixture(params=BREAKAGES, ids=[b[0] for b in BREAKAGES])
def broken(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[list[Sample], Path]:
    """The samples of a tiny dataset whose pair BROKEN is broken one way, and the broken file."""
    _, which, breaker = request.param
    root = make_folders(tmp_path / "data")
    samples = index_dataset(root).samples
    target = samples[BROKEN].image if which == "image" else samples[BROKEN].mask
    breaker(target)
    return samples, target


def test_eval_item_is_an_error_not_a_neighbour(broken: tuple[list[Sample], Path]) -> None:
    samples, target = broken
    dataset = SegmentationDataset(samples, eval_transform(SIZE), keep_original=True)
    item = dataset[BROKEN]
    assert set(item) >= {"index", "name", "error"} and "image" not in item
    assert item["index"] == BROKEN and item["name"] == samples[BROKEN].name
    assert target.name in item["error"] and "\n" not in item["error"]
    # Its neighbours are themselves, once each.
    loader = make_loader(dataset, batch_size=PAIRS, shuffle=False, workers=0)
    (batch,) = list(loader)
    assert batch["index"].tolist() == [i for i in range(PAIRS) if i != BROKEN]
    assert len(batch["original_label"]) == len(batch["letterbox"]) == PAIRS - 1
    assert batch["image"].shape == (PAIRS - 1, 3, SIZE, SIZE)
    assert [(i, name) for i, name, _ in batch["errors"]] == [(BROKEN, samples[BROKEN].name)]
    for index, label in zip(batch["index"].tolist(), batch["original_label"], strict=True):
        assert np.array_equal(label.numpy(), samples[index].load_label())


def test_all_broken_batch_is_empty_with_errors(broken: tuple[list[Sample], Path]) -> None:
    samples, _ = broken
    dataset = SegmentationDataset([samples[BROKEN]], eval_transform(SIZE), keep_original=True)
    batch = collate([dataset[0]])
    assert batch["image"].shape == (0, 3, SIZE, SIZE) and batch["label"].shape == (0, SIZE, SIZE)
    assert batch["index"].tolist() == [] and batch["original_label"] == []
    assert len(batch["errors"]) == 1


def test_train_item_is_replaced_and_reported(
    broken: tuple[list[Sample], Path], caplog: pytest.LogCaptureFixture
) -> None:
    samples, target = broken
    dataset = SegmentationDataset(samples, train_transform(SIZE), seed=0)
    with caplog.at_level("WARNING", logger="gcnseg.data.dataset"):
        item = dataset[BROKEN]
        dataset[BROKEN]
    assert item["image"].shape == (3, SIZE, SIZE)
    assert dataset.skipped == {samples[BROKEN].name}
    assert len([r for r in caplog.records if target.name in r.getMessage()]) == 1


def test_check_reports_the_broken_pair(broken: tuple[list[Sample], Path]) -> None:
    samples, target = broken
    report = check_dataset(target.parent.parent, progress=False)
    assert report.problems == 1
    assert samples[BROKEN].name not in report.usable and len(report.usable) == PAIRS - 1


def make_pets(root: Path, trimap_values: list[int]) -> Path:
    """Oxford layout: one 24x20 pair per trimap value given (1 pet, 2 background, 3 border)."""
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    for i, value in enumerate(trimap_values):
        Image.new("RGB", (24, 20), (i, 90, 90)).save(root / "images" / f"beagle_{i}.jpg")
        trimap = np.full((20, 24), 2, np.uint8)
        trimap[5:9, 5:9] = value
        Image.fromarray(trimap).save(root / "annotations" / "trimaps" / f"beagle_{i}.png")
    return root


@pytest.mark.parametrize("value", [0, 4, 255])
def test_trimap_values_outside_1_2_3_are_refused_everywhere(tmp_path: Path, value: int) -> None:
    """check, train and test agree: such a trimap is not silently read as background or ignore."""
    root = make_pets(tmp_path / "pets", [1, value, 3])
    report = check_dataset(root, progress=False)
    assert report.problems == 1 and "beagle_1" not in report.usable
    assert f"[{value}]" in report.bad_mask_values[0]
    samples = index_dataset(root).samples
    item = SegmentationDataset(samples, eval_transform(SIZE), keep_original=True)[1]
    assert "beagle_1.png" in item["error"] and f"[{value}]" in item["error"]
    train = SegmentationDataset(samples, train_transform(SIZE))
    train[1]
    assert train.skipped == {"beagle_1"}


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ("names: background cat dog\n", "names must be a list"),
        ("names: [background, cat, cat]\n", "repeated: cat"),
        ("names: [background, '']\n", "non-empty strings"),
        ("names: [background, 3]\n", "non-empty strings"),
        ("names: [a, b]\ncolors: [[300, -5, 0], [0, 0, 0]]\n", "three integers in 0-255"),
        ("names: [a, b]\ncolors: [[0, 0], [0, 0, 0]]\n", "three integers in 0-255"),
        ("names: [a, b]\ncolors: [[0, 0, 0]]\n", "2 class names but 1 colours"),
        ("names: [a, b]\ncolors: red\n", "colors must be a list"),
        ("[background, cat]\n", "names: [...]"),
        ("names: [a, b\n", "invalid YAML"),
    ],
    ids=[
        "names-string",
        "duplicate",
        "empty-name",
        "number-name",
        "colour-range",
        "colour-length",
        "colour-count",
        "colours-string",
        "no-mapping",
        "bad-yaml",
    ],
)
def test_bad_classes_yaml_is_one_line_naming_it(tmp_path: Path, classes: str, message: str) -> None:
    root = make_folders(tmp_path / "data")
    (root / "classes.yaml").write_text(classes)
    with pytest.raises(GcnsegError) as exc:
        index_dataset(root)
    text = str(exc.value)
    assert message in text and str(root / "classes.yaml") in text and "\n" not in text


def test_non_utf8_text_files_are_one_line(tmp_path: Path) -> None:
    root = make_folders(tmp_path / "data")
    (root / "classes.yaml").write_bytes(b"names: [background, b\xe4r]\n")
    with pytest.raises(GcnsegError, match=r"classes\.yaml: not a UTF-8 text file"):
        index_dataset(root)
    pets = make_pets(tmp_path / "pets", [1])
    (pets / "annotations" / "list.txt").write_bytes(b"beagle_0 1 2 1 \xff\n")
    with pytest.raises(GcnsegError, match=r"list\.txt: not a UTF-8 text file"):
        index_dataset(pets)


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Promises 200 bytes and sends one every 20 ms: each read succeeds, the whole never ends."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "200")
        self.end_headers()
        try:
            for _ in range(200):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.02)
        except OSError:
            pass  # the client gave up, as it should

    def log_message(self, format: str, *args: object) -> None:
        """Keep pytest output clean."""


def test_trickling_download_is_abandoned_and_resumable(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/images.tar.gz"
    dest = tmp_path / "images.tar.gz"
    try:
        with pytest.raises(GcnsegError) as exc:
            download_file(
                url, dest, progress=False, speed=Speed(timeout_s=5, low_bytes=100, low_s=0.3)
            )
    finally:
        server.shutdown()
        server.server_close()
    message = str(exc.value)
    assert message.startswith(f"download failed: {url}: only ") and "run again to resume" in message
    assert not dest.exists()
    assert 0 < (tmp_path / "images.tar.gz.part").stat().st_size < 100  # kept for the next try


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], *expected: str) -> str:
    """Run the CLI; it must exit 2 with one stderr line holding every `expected` text."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gcnseg: error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["export", "--checkpoint", "pets-default", "--out", "m.onnx", "--opset", "5"], "opset 5"),
        (["test", "--checkpoint", "pets-default", "--data", ".", "--size", "-5"], "--size"),
        (["predict", "x.jpg", "--size", "16"], "--size"),
        (["predict", "x.jpg", "--alpha", "nan"], "--alpha"),
        (["predict", "x.jpg", "--alpha", "1.5"], "alpha must be in"),
        (["data", "download", "--root", "d", "--url-base", "not a url"], "--url-base"),
        (["models", "--size", "0"], "--size"),
        (["data", "split", ".", "--out", "m.json", "--max-side", "-1"], "--max-side"),
        (["test", "--checkpoint", "c", "--data", ".", "--worst", "-2"], "--worst"),
        (["train", "--nproc", "0"], "--nproc"),
        (["export", "--checkpoint", "c"], "--out"),  # a missing argument: one line too
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_arguments_are_one_line(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    _one_line_error(capsys, argv, expected)
    assert list(tmp_path.iterdir()) == []  # nothing was written or downloaded


@pytest.mark.parametrize("case", ["empty", "text", "list", "no-classes"])
@pytest.mark.parametrize("command", ["test", "predict", "export"])
def test_broken_checkpoints_are_one_line_in_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, case: str, command: str
) -> None:
    path = tmp_path / "c.pt"
    {
        "empty": lambda: path.write_bytes(b""),
        "text": lambda: path.write_text("hello\n"),
        "list": lambda: torch.save([1, 2], path),
        "no-classes": lambda: torch.save({"model": {"w": torch.zeros(1)}, "config": {}}, path),
    }[case]()
    image = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(image)
    data = make_folders(tmp_path / "data")
    argv = {
        "test": ["test", "--checkpoint", str(path), "--data", str(data)],
        "predict": ["predict", str(image), "--checkpoint", str(path), "--out", str(tmp_path / "o")],
        "export": ["export", "--checkpoint", str(path), "--out", str(tmp_path / "m.onnx")],
    }[command]
    _one_line_error(capsys, argv, str(path))
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.onnx").exists()


def test_non_utf8_config_and_list_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = tmp_path / "c.yaml"
    config.write_bytes(b"optim:\n  name: \xe9\n")
    _one_line_error(capsys, ["train", "--config", str(config)], str(config), "UTF-8")
    pets = make_pets(tmp_path / "pets", [1])
    listing = pets / "annotations" / "list.txt"
    listing.write_bytes(b"beagle_0 1 2 1 \xff\n")
    _one_line_error(capsys, ["data", "check", str(pets)], str(listing), "UTF-8")


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "taken"
    path.write_text("a file where a folder is expected\n")
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["test", "--checkpoint", "missing.pt", "--data", "nowhere", "--json", "{f}/r.json"],
        ["test", "--checkpoint", "missing.pt", "--data", "nowhere", "--draw", "{f}"],
        ["test", "--checkpoint", "missing.pt", "--data", "nowhere", "--out", "{f}/sub"],
        ["predict", "nowhere.jpg", "--checkpoint", "missing.pt", "--out", "{f}"],
        ["export", "--checkpoint", "missing.pt", "--out", "{f}/m.onnx"],
        ["data", "split", "nowhere", "--out", "{f}/deeper/m.json"],
        ["data", "download", "--root", "{f}"],
    ],
    ids=["test-json", "test-draw", "test-out", "predict-out", "export-out", "split", "download"],
)
def test_unwritable_outputs_fail_before_any_work(
    capsys: pytest.CaptureFixture[str], a_file: Path, argv: list[str]
) -> None:
    """The output is named, not the missing checkpoint or data: it was checked first."""
    argv = [a.replace("{f}", str(a_file)) for a in argv]
    line = _one_line_error(capsys, argv, str(a_file), "cannot write")
    assert "missing.pt" not in line and "nowhere" not in line


def test_folder_where_a_file_goes_and_read_only_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "report.json").mkdir()
    argv = ["test", "--checkpoint", "missing.pt", "--data", "x", "--json"]
    _one_line_error(capsys, [*argv, str(tmp_path / "report.json")], "this is a folder")
    if os.geteuid() == 0:
        pytest.skip("root may write into any folder")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    _one_line_error(capsys, [*argv, str(locked / "r.json")], f"{locked} is not writable")
