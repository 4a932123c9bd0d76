"""The HTTP API through the ASGI test client: answers, and every error code with its JSON."""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from _serving import Photo, hold_predictions, png_claiming
from gcnseg.data.images import decode_image
from gcnseg.inference.segmenter import Segmenter
from gcnseg.serving.app import create_app
from gcnseg.serving.limits import ServeSettings
from gcnseg.viz.draw import overlay


@pytest.fixture
def client(segmenter: Segmenter) -> Iterator[TestClient]:
    with TestClient(create_app(segmenter)) as test_client:
        yield test_client


def upload(photo: Photo, name: str | None = None, data: bytes | None = None) -> dict:
    return {"image": (name or photo.name, photo.data if data is None else data, "image/jpeg")}


def read_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def test_segment_returns_shares_and_the_mask_of_the_one_pipeline(
    client: TestClient, photo: Photo, segmenter: Segmenter
) -> None:
    response = client.post("/v1/segment", files=upload(photo))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == photo.size
    assert body["engine"] == segmenter.engine_name == "torch-fp32"
    assert [c["name"] for c in body["classes"]] == list(segmenter.classes.names)
    assert sum(c["share"] for c in body["classes"]) == pytest.approx(1.0, abs=1e-5)
    assert set(body["timings_ms"]) == {"decode", "queue", "inference", "encode", "total"}
    assert "inference;dur=" in response.headers["server-timing"]
    mask_png = read_png(base64.b64decode(body["mask_png"]))
    assert mask_png.mode == "P" and mask_png.size == photo.size
    # The same mask as the Python API gives for the same file.
    expected = segmenter.predict(decode_image(photo.data, photo.name))
    np.testing.assert_array_equal(np.asarray(mask_png), expected)
    shares = {c["name"]: c["share"] for c in body["classes"]}
    if photo.real:  # the sample's Abyssinian: a cat, and hardly any dog
        assert shares["cat"] > 0.1 > shares["dog"]


def test_segment_format_png_is_the_mask_itself(client: TestClient, photo: Photo) -> None:
    as_json = client.post("/v1/segment", files=upload(photo)).json()
    response = client.post("/v1/segment?format=png", files=upload(photo))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == base64.b64decode(as_json["mask_png"])


def test_overlay_is_a_jpeg_of_the_photo(
    client: TestClient, photo: Photo, segmenter: Segmenter
) -> None:
    painted = client.post("/v1/overlay", files=upload(photo))
    assert painted.status_code == 200 and painted.headers["content-type"] == "image/jpeg"
    bare = client.post("/v1/overlay?alpha=0&legend=false", files=upload(photo))
    original = decode_image(photo.data, photo.name)
    expected = overlay(original, segmenter.predict(original), segmenter.classes)
    images = [np.asarray(Image.open(io.BytesIO(r.content)), float) for r in (painted, bare)]
    # What `gcnseg predict` draws, and alpha 0 without a legend is the photo (up to JPEG loss).
    assert np.abs(images[0] - expected).mean() < 3
    assert np.abs(images[1] - original).mean() < 3
    if photo.real:  # the cat is painted
        assert np.abs(images[0] - original).mean() > np.abs(images[1] - original).mean() + 1


def test_model_health_docs_and_page(client: TestClient, segmenter: Segmenter) -> None:
    model = client.get("/v1/model").json()
    assert model["classes"] == list(segmenter.classes.names)
    assert model["colors"] == [list(c) for c in segmenter.colors]
    assert model["engine"] == "torch-fp32" and model["eval_size"] == segmenter.eval_size
    assert model["version"] and model["limits"]["max_upload_mb"] == 20
    health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "in_line": 0,
        "max_queue": 16,
        "memory_reserved_mb": 0,
        "memory_budget_mb": 6144,
    }
    schema = client.get("/openapi.json").json()
    assert {"/v1/segment", "/v1/overlay", "/v1/model", "/healthz"} <= set(schema["paths"])
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower() and "/static-offline-docs/swagger-ui-bundle.js" in docs
    assert client.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    page = client.get("/").text
    assert "/static/app.js" in page and "http" not in page.replace('href="/docs"', "")
    for asset in ("app.js", "style.css"):
        assert client.get(f"/static/{asset}").status_code == 200


def _truncated(photo: Photo) -> bytes:
    if photo.real:
        return photo.data[: len(photo.data) // 2]
    return photo.data[:-200]


HOSTILE = {
    "text": (lambda p: b"just some words, not a picture\n", 400, "unreadable image"),
    "empty": (lambda p: b"", 400, "unreadable image"),
    "corrupt": (lambda p: p.data[:20] + bytes(range(256)) * 8, 400, "unreadable image"),
    "truncated": (_truncated, 400, "truncated"),
    "bomb": (lambda p: png_claiming(30_000, 30_000), 400, "too large"),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize("path", ["/v1/segment", "/v1/overlay"])
def test_bad_images_are_400_naming_the_upload(
    client: TestClient, photo: Photo, kind: str, path: str
) -> None:
    make, status, words = HOSTILE[kind]
    response = client.post(path, files=upload(photo, name=f"{kind}.jpg", data=make(photo)))
    assert response.status_code == status
    detail = response.json()["detail"]
    assert detail.startswith(f"{kind}.jpg: ") and words in detail and "\n" not in detail


def test_unsupported_types_are_415(client: TestClient, photo: Photo) -> None:
    raw = client.post("/v1/segment", content=photo.data, headers={"content-type": "image/jpeg"})
    assert raw.status_code == 415 and "multipart/form-data" in raw.json()["detail"]
    ppm = io.BytesIO()
    Image.new("RGB", (8, 8)).save(ppm, format="PPM")
    response = client.post("/v1/segment", files=upload(photo, "x.ppm", ppm.getvalue()))
    assert response.status_code == 415
    assert "PPM images are not accepted" in response.json()["detail"]


def test_a_request_without_the_image_field_is_400(client: TestClient, photo: Photo) -> None:
    response = client.post("/v1/segment", files={"photo": (photo.name, photo.data)})
    assert response.status_code == 400 and "field named 'image'" in response.json()["detail"]
    response = client.post("/v1/segment?format=gif", files=upload(photo))
    assert response.status_code == 400 and "format" in response.json()["detail"]


def test_uploads_over_the_limit_are_413_with_or_without_a_length(
    segmenter: Segmenter, photo: Photo
) -> None:
    settings = ServeSettings(max_upload_mb=0.05)  # 52 kB
    big = b"\xff\xd8" + bytes(60_000)
    with TestClient(create_app(segmenter, settings)) as client:
        response = client.post("/v1/segment", files=upload(photo, data=big))
        assert response.status_code == 413
        assert response.json()["detail"] == "upload over the 0.05 MB limit (max_upload_mb)"
        # Chunked, without Content-Length: counted as it arrives.
        boundary = "gcnsegboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()

        def chunks() -> Iterator[bytes]:
            yield head
            for _ in range(10):
                yield bytes(10_000)
            yield f"\r\n--{boundary}--\r\n".encode()

        response = client.post(
            "/v1/segment",
            content=chunks(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        assert response.status_code == 413 and "0.05 MB" in response.json()["detail"]


def test_api_key_is_required_when_set(segmenter: Segmenter, photo: Photo) -> None:
    with TestClient(create_app(segmenter, ServeSettings(api_key="s3cret"))) as client:
        assert client.get("/v1/model").status_code == 401
        wrong = client.post("/v1/segment", files=upload(photo), headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401 and "X-API-Key" in wrong.json()["detail"]
        right = client.post("/v1/segment", files=upload(photo), headers={"X-API-Key": "s3cret"})
        assert right.status_code == 200
        assert client.get("/healthz").status_code == 200  # probes need no key
        assert client.get("/").status_code == 200  # the page asks for the key itself


def test_a_full_line_is_503_with_retry_after(
    segmenter: Segmenter, photo: Photo, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = hold_predictions(segmenter, monkeypatch)
    with TestClient(create_app(segmenter, ServeSettings(max_queue=1))) as client:
        first: Future = Future()
        thread = threading.Thread(
            target=lambda: first.set_result(client.post("/v1/segment", files=upload(photo)))
        )
        thread.start()
        deadline = time.monotonic() + 30
        while client.get("/healthz").json()["in_line"] < 1:
            assert time.monotonic() < deadline, "the first request never entered the line"
            time.sleep(0.01)
        busy = client.post("/v1/segment", files=upload(photo))
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "max_queue 1" in busy.json()["detail"]
        release.set()
        thread.join(60)
        assert first.result(0).status_code == 200
        assert client.post("/v1/segment", files=upload(photo)).status_code == 200


def test_a_crash_is_a_json_500_and_the_server_goes_on(
    segmenter: Segmenter, photo: Photo, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_predict = segmenter.predict
    calls: list[int] = []

    def predict_once_broken(images: list) -> list:
        calls.append(len(images))
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real_predict(images)

    monkeypatch.setattr(segmenter, "predict", predict_once_broken)
    app = create_app(segmenter)
    with TestClient(app, raise_server_exceptions=False) as client:
        crashed = client.post("/v1/segment", files=upload(photo))
        assert crashed.status_code == 500
        assert crashed.json()["detail"].startswith("internal error (RuntimeError)")
        assert client.post("/v1/segment", files=upload(photo)).status_code == 200


def test_the_inference_thread_stops_with_the_app(segmenter: Segmenter) -> None:
    def inference_threads() -> int:
        return sum(t.name == "gcnseg-inference" for t in threading.enumerate())

    before = inference_threads()
    with TestClient(create_app(segmenter)) as client:
        assert client.get("/healthz").status_code == 200
        assert inference_threads() == before + 1
    assert inference_threads() == before
