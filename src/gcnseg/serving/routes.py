"""The endpoints: the API under /v1 (`api`), and /healthz and the page (`pages`).

The API key is checked by `limits.Gate` in front of /v1, before any body is read; the key's
header is declared here so the OpenAPI docs offer it.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, File, Query, Request, Security, UploadFile
from fastapi.responses import FileResponse, Response
from fastapi.security import APIKeyHeader

from gcnseg.evaluation.metrics import pixel_shares
from gcnseg.inference.segmenter import Segmenter
from gcnseg.serving.limits import API_KEY_HEADER
from gcnseg.serving.schemas import ClassShare, Error, Segmentation
from gcnseg.serving.worker import FORMATS, Result, Service
from gcnseg.viz.draw import jpeg_bytes, mask_png_bytes, overlay

STATIC = Path(__file__).parent / "static"
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Error, "description": text}
    for status, text in [
        (400, "not an image, corrupt, truncated, or too many pixels (a decompression bomb)"),
        (401, f"missing or wrong {API_KEY_HEADER} (when the server has an API key)"),
        (408, "the upload did not arrive within body_timeout_s of its headers"),
        (413, "upload over max_upload_mb, or an image needing more than memory_budget_mb"),
        (415, "not multipart/form-data, or an image format that is not accepted"),
        (503, "the line (max_queue) or the memory budget is full; retry after Retry-After s"),
    ]
}

API_KEY = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="needed when the server has an API key"
)
api = APIRouter(prefix="/v1", dependencies=[Security(API_KEY)], responses=ERRORS)
pages = APIRouter()


def _service(request: Request) -> Service:
    return request.app.state.service


Served = Annotated[Service, Depends(_service)]
Upload = Annotated[UploadFile, File(description="the photo: JPEG, PNG, GIF, BMP, TIFF or WebP")]


@api.post("/segment", response_model=Segmentation, responses={200: {"content": {"image/png": {}}}})
async def segment(
    image: Upload,
    response: Response,
    service: Served,
    format: Annotated[
        Literal["json", "png"], Query(description="png: the mask PNG itself, not JSON")
    ] = "json",
) -> Segmentation | Response:
    """The mask of one photo: JSON with the share of each class, or the palette PNG."""
    started = time.perf_counter()
    segmenter = service.segmenter
    data, name = await image.read(), image.filename or "upload"
    with service.admitted(data, name, overlay=False):
        decoded, decode_s = await service.decode(data, name)
        result = await service.segment(decoded)
        png, encode_s = await service.in_thread(mask_png_bytes, result.mask, segmenter.classes)
    spent = timings(started, decode_s, result, encode_s)
    if format == "png":
        return Response(png, media_type="image/png", headers=server_timing(spent))
    response.headers.update(server_timing(spent))
    height, width = result.mask.shape
    return Segmentation(
        width=width,
        height=height,
        model=segmenter.model_name,
        engine=segmenter.engine_name,
        classes=class_shares(result.mask, segmenter),
        timings_ms=spent,
        batch=result.batch,
        mask_png=base64.b64encode(png).decode("ascii"),
    )


@api.post("/overlay", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
async def overlay_jpeg(
    image: Upload,
    service: Served,
    alpha: Annotated[float, Query(ge=0, le=1, description="opacity of the class colours")] = 0.5,
    legend: Annotated[bool, Query(description="draw a colour key in the corner")] = True,
) -> Response:
    """The photo with its classes painted over it, as a JPEG."""
    started = time.perf_counter()
    classes = service.segmenter.classes
    data, name = await image.read(), image.filename or "upload"
    with service.admitted(data, name, overlay=True):
        decoded, decode_s = await service.decode(data, name)
        result = await service.segment(decoded)

        def draw() -> bytes:
            return jpeg_bytes(overlay(decoded, result.mask, classes, alpha=alpha, legend=legend))

        jpeg, encode_s = await service.in_thread(draw)
    spent = timings(started, decode_s, result, encode_s)
    return Response(jpeg, media_type="image/jpeg", headers=server_timing(spent))


@api.get("/model")
async def model(service: Served) -> dict[str, Any]:
    """The model: name, classes, colours, eval size, engine (and why), version; the limits."""
    settings = service.settings
    limits = {
        "max_upload_mb": settings.max_upload_mb,
        "max_queue": settings.max_queue,
        "max_batch": settings.max_batch,
        "memory_budget_mb": settings.memory_budget_mb,
        "body_timeout_s": settings.body_timeout_s,
        "formats": sorted(FORMATS),
    }
    return {**service.segmenter.describe(), "limits": limits}


@pages.get("/healthz")
async def healthz(service: Served) -> dict[str, Any]:
    """Liveness, and how full the line and the memory budget are (no API key needed)."""
    admission = service.admission
    return {
        "status": "ok",
        "in_line": admission.count,
        "max_queue": admission.max_queue,
        "memory_reserved_mb": round(admission.reserved / 2**20, 1),
        "memory_budget_mb": service.settings.memory_budget_mb,
    }


@pages.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


def timings(started: float, decode_s: float, result: Result, encode_s: float) -> dict[str, float]:
    parts = {
        "decode": decode_s,
        "queue": result.queued_s,
        "inference": result.inference_s,
        "encode": encode_s,
        "total": time.perf_counter() - started,
    }
    return {name: round(seconds * 1000, 1) for name, seconds in parts.items()}


def server_timing(values: dict[str, float]) -> dict[str, str]:
    """The standard Server-Timing header, which browsers' developer tools show."""
    return {"Server-Timing": ", ".join(f"{name};dur={ms}" for name, ms in values.items())}


def class_shares(mask: np.ndarray, segmenter: Segmenter) -> list[ClassShare]:
    names = segmenter.classes.names
    shares = pixel_shares(mask, len(names))
    return [
        ClassShare(
            index=i,
            name=name,
            color=list(color),
            share=share,
            background=i == segmenter.classes.background,
        )
        for i, (name, color, share) in enumerate(zip(names, segmenter.colors, shares, strict=True))
    ]
