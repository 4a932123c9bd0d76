"""Tiny generated datasets in both layouts, so every end-to-end test runs on any clone.

Each image is a noisy background with one filled shape; the masks label that shape exactly, so a
model can learn something in a few steps and metrics have something real to count.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml
from PIL import Image, ImageDraw

# /work/main/tests/_data.py -> /work/shared/data/oxford-pets-sample
PETS_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "oxford-pets-sample"
CAMVID = PETS_SAMPLE.parent / "camvid"
NO_SHARED_ENV = "GCNSEG_NO_SHARED"

# Oxford's convention: capitalised names are cats (species 1), lowercase are dogs (species 2).
PET_BREEDS = {"Abyssinian": 1, "Bengal": 1, "beagle": 2, "boxer": 2}
PER_BREED = 7  # the fewest for which a seeded 0.2 test / 0.1 val split leaves every split non-empty
# Width × height per image, cycled: odd and non-square, all within 64-96 px.
SIZES = [(96, 64), (64, 80), (77, 70), (90, 90), (72, 95), (80, 66), (65, 85)]
FOLDER_CLASSES = {"names": ["background", "disc", "box"], "colors": [[0, 0, 0], [220, 40, 40], [40, 40, 220]]}  # fmt: skip
FOLDER_IMAGES = 8


def pets_sample_missing() -> str | None:
    """Why the real Oxford-IIIT Pet sample cannot be used here, or None when it can."""
    if os.environ.get(NO_SHARED_ENV) == "1":
        return f"Oxford-IIIT Pet sample disabled by {NO_SHARED_ENV}=1 (as on a clone without it)"
    if not (PETS_SAMPLE / "images").is_dir() or not (PETS_SAMPLE / "annotations").is_dir():
        return f"Oxford-IIIT Pet sample not found at {PETS_SAMPLE}"
    return None


def camvid_missing() -> str | None:
    """Why the real CamVid train + val folders cannot be used here, or None when they can."""
    if os.environ.get(NO_SHARED_ENV) == "1":
        return f"CamVid disabled by {NO_SHARED_ENV}=1 (as on a clone without it)"
    if not (CAMVID / "val").is_dir() or not (CAMVID / "valannot").is_dir():
        return f"CamVid not found at {CAMVID}"
    return None


def _scene(
    rng: np.random.Generator, size: tuple[int, int], shape: str
) -> tuple[Image.Image, np.ndarray]:
    """(RGB image, boolean mask of the shape): a disc or box on a noisy background."""
    width, height = size
    pixels = rng.integers(60, 140, (height, width, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    mask = Image.new("L", size, 0)
    x0, y0 = int(rng.integers(4, width // 3)), int(rng.integers(4, height // 3))
    x1, y1 = (
        int(rng.integers(2 * width // 3, width - 4)),
        int(rng.integers(2 * height // 3, height - 4)),
    )
    color = tuple(int(c) for c in rng.integers(150, 255, 3))
    for canvas, fill in ((ImageDraw.Draw(image), color), (ImageDraw.Draw(mask), 1)):
        if shape == "disc":
            canvas.ellipse((x0, y0, x1, y1), fill=fill)
        else:
            canvas.rectangle((x0, y0, x1, y1), fill=fill)
    return image, np.asarray(mask).astype(bool)


def _trimap(inside: np.ndarray) -> np.ndarray:
    """Oxford trimap values: 1 pet, 2 background, 3 a two-pixel border around the pet's edge."""
    grown, shrunk = inside.copy(), inside.copy()
    for axis in (0, 1):
        for shift in (-2, -1, 1, 2):
            grown |= np.roll(inside, shift, axis)
            shrunk &= np.roll(inside, shift, axis)
    trimap = np.full(inside.shape, 2, np.uint8)
    trimap[grown] = 3
    trimap[shrunk] = 1
    return trimap


def make_tiny_pets(root: Path, *, official_splits: bool = False, seed: int = 0) -> Path:
    """Oxford-IIIT Pet layout: 4 breeds (2 cats, 2 dogs) × 7 JPEGs, trimaps and list.txt."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "annotations" / "trimaps").mkdir(parents=True)
    lines = ["#Image CLASS-ID SPECIES BREED ID", "#SPECIES: 1:Cat 2:Dog"]
    trainval, test = [], []
    for class_id, (breed, species) in enumerate(PET_BREEDS.items(), start=1):
        for i in range(1, PER_BREED + 1):
            name = f"{breed}_{i}"
            image, inside = _scene(rng, SIZES[i % len(SIZES)], "disc" if species == 1 else "box")
            image.save(root / "images" / f"{name}.jpg", quality=90)
            Image.fromarray(_trimap(inside)).save(root / "annotations" / "trimaps" / f"{name}.png")
            line = f"{name} {class_id} {species} {class_id}"
            lines.append(line)
            (test if i == PER_BREED else trainval).append(line)
    (root / "annotations" / "list.txt").write_text("\n".join(lines) + "\n")
    if official_splits:
        (root / "annotations" / "trainval.txt").write_text("\n".join(trainval) + "\n")
        (root / "annotations" / "test.txt").write_text("\n".join(test) + "\n")
    return root


def make_tiny_folders(root: Path, *, seed: int = 1) -> Path:
    """images/ + masks/ layout: 8 PNG pairs of class 1 (disc) or 2 (box), 255 around each shape."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir(parents=True)
    for i in range(FOLDER_IMAGES):
        shape, class_index = ("disc", 1) if i % 2 == 0 else ("box", 2)
        image, inside = _scene(rng, SIZES[i % len(SIZES)], shape)
        mask = np.where(_trimap(inside) == 3, 255, np.where(inside, class_index, 0))
        image.save(root / "images" / f"scene_{i}.png")
        Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"scene_{i}.png")
    (root / "classes.yaml").write_text(yaml.safe_dump(FOLDER_CLASSES))
    return root


# The real release ships a GIF and an RGBA PNG named .jpg, and .mat files beside the images.
GIF_NAMED_JPG, RGBA_PNG_NAMED_JPG, STRAY_FILE = "Abyssinian_2", "Abyssinian_3", "Abyssinian_1.mat"


def add_release_quirks(root: Path) -> Path:
    """Give a `make_tiny_pets` layout the release's quirks: GIF and RGBA PNG content named .jpg."""
    images = root / "images"
    for stem, mode, kind in ((GIF_NAMED_JPG, "RGB", "GIF"), (RGBA_PNG_NAMED_JPG, "RGBA", "PNG")):
        with Image.open(images / f"{stem}.jpg") as image:
            converted = image.convert(mode)
        converted.save(images / f"{stem}.jpg", format=kind)
    (images / STRAY_FILE).write_bytes(b"MATLAB 5.0 MAT-file")
    return root


def write_odd_images(source: Path, folder: Path) -> list[Path]:
    """Grey, RGBA, 16-bit and palette PNGs and a GIF named .jpg made from `source`, plus one
    unreadable `broken.jpg`: the inputs predict must take (or skip) whatever their format."""
    folder.mkdir()
    rgb = np.asarray(Image.open(source).convert("RGB").resize((90, 70)))
    images = {
        "grey.png": Image.fromarray(rgb[..., 0]),
        "rgba.png": Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])),
        "deep.png": Image.fromarray(rgb[..., 1].astype(np.uint16) * 257).convert("I;16"),
        "palette.png": Image.fromarray(rgb).convert("P"),
    }
    for name, image in images.items():
        image.save(folder / name)
    Image.fromarray(rgb).convert("P").save(folder / "gif.jpg", format="GIF")
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    return sorted(folder.iterdir())


def assert_predicted(inputs: list[Path], out: Path, *, num_classes: int) -> None:
    """predict wrote a palette mask at each input's size and an overlay, except for broken.jpg."""
    for path in inputs:
        if path.name == "broken.jpg":
            assert not (out / "broken_mask.png").exists()
            continue
        mask = Image.open(out / f"{path.stem}_mask.png")
        assert mask.mode == "P" and mask.size == Image.open(path).size
        assert set(np.unique(np.asarray(mask))) <= set(range(num_classes))
        assert (out / f"{path.stem}_overlay.jpg").is_file()


def make_clip(path: Path, frames: int = 5, size: tuple[int, int] = (48, 64)) -> Path:
    """A short clip of noise, `size` (height, width), 10 frames a second (needs PyAV)."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as sink:
        stream = sink.add_stream("mpeg4", rate=10)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (*size, 3), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                sink.mux(packet)
        for packet in stream.encode():
            sink.mux(packet)
    return path


def overlay_frames(path: Path) -> list[tuple[int, int]]:
    """(height, width) of each frame of a video (needs PyAV)."""
    import av

    with av.open(str(path)) as container:
        return [(f.height, f.width) for f in container.decode(video=0)]
