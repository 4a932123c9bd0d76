"""Fixtures for the server tests: a photo to send and the packaged model."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from _data import PETS_SAMPLE, pets_sample_missing
from _serving import CAT, ENGINE, Photo
from gcnseg.inference.segmenter import Segmenter, load


@pytest.fixture(scope="session")
def photo() -> Photo:
    """The sample's cat photo when ../shared has it, else a generated 160×120 JPEG."""
    if pets_sample_missing() is None:
        return Photo(CAT, (PETS_SAMPLE / "images" / CAT).read_bytes(), real=True)
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(40, 120, (120, 160, 3), dtype=np.uint8))
    ImageDraw.Draw(image).ellipse((40, 20, 130, 110), fill=(200, 140, 60))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return Photo("generated.jpg", buffer.getvalue(), real=False)


@pytest.fixture(scope="session")
def segmenter() -> Segmenter:
    return load("pets-default", engine=ENGINE, device="cpu")
