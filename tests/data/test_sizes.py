"""fitted_sizes and `gcnseg init`: crop and eval sizes follow the frames, multiples of 32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from gcnseg.cli import main
from gcnseg.data.layouts import index_dataset
from gcnseg.data.sizes import MAX_CROP_SIZE, MAX_EVAL_SIZE, fitted_sizes


def _frames(root: Path, sizes: list[tuple[int, int]]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "classes.yaml").write_text("names: [sky, road]\n")
    for i, (width, height) in enumerate(sizes):
        Image.new("RGB", (width, height)).save(root / "images" / f"f{i}.png")
        Image.fromarray(np.zeros((height, width), np.uint8)).save(root / "masks" / f"f{i}.png")
    return root


@pytest.mark.parametrize(
    ("sizes", "crop", "evaluation"),
    [
        ([(480, 360)] * 3, 352, 480),  # CamVid's frames
        ([(500, 375), (375, 500), (500, 333)], 352, 512),  # photos either way up
        ([(4000, 3000)] * 2, MAX_CROP_SIZE, MAX_EVAL_SIZE),  # capped
        ([(40, 20)], 32, 32),  # never below the stride
    ],
)
def test_sizes_follow_the_median_frame(
    tmp_path: Path, sizes: list[tuple[int, int]], crop: int, evaluation: int
) -> None:
    fitted = fitted_sizes(index_dataset(_frames(tmp_path / "d", sizes)))
    assert (fitted.crop_size, fitted.eval_size) == (crop, evaluation)
    assert fitted.crop_size % 32 == 0 and fitted.eval_size % 32 == 0
    shorter = sorted(min(s) for s in sizes)[len(sizes) // 2]
    assert fitted.crop_size <= max(32, shorter)  # crops within the frames


def test_init_writes_the_fitted_sizes(tmp_path: Path, capsys) -> None:
    root = _frames(tmp_path / "d", [(480, 360)] * 2)
    out = tmp_path / "gcnseg.yaml"
    assert main(["init", str(root), "--out", str(out)]) == 0
    text = out.read_text()
    config = yaml.safe_load(text)
    assert config["data"]["crop_size"] == 352 and config["data"]["eval_size"] == 480
    assert "480x360" in text
