"""The JSON the API answers with: a segmentation, and `{"detail": "one line"}` for every error."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.responses import JSONResponse


class ClassShare(BaseModel):
    index: int
    name: str
    color: list[int]
    share: float  # of the image's pixels, 0-1
    background: bool = False  # the page leaves it unpainted


class Segmentation(BaseModel):
    width: int
    height: int
    model: str
    engine: str
    classes: list[ClassShare]
    timings_ms: dict[str, float]  # decode, queue, inference (of the whole batch), encode, total
    batch: int  # requests that shared the forward pass
    mask_png: str  # base64 palette PNG: pixel values are class indices


class Error(BaseModel):
    detail: str


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
