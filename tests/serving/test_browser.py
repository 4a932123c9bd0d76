"""The web page in a real browser: Debian's headless Chromium, driven by Playwright for Python.

Playwright's own browser download cannot work offline, so it is pointed at /usr/bin/chromium.
Playwright is a dev extra (`make test` installs it); without the browser the test is skipped
with the reason, except under CI, which installs it (.ci/run) and so must run it.
GCNSEG_UPDATE_SCREENSHOTS=1 writes the README's picture of the page, docs/images/serve_page.png.

What the page promises, each held here: an example photo at a click, the mask and overlay to
download as PNGs, only the classes found listed, a styled drop area, a refused photo sent again
once an API key is entered, and a phone photo shown upright with its mask fitting it.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from _serving import Photo, Server, running_server

BROWSER = Path("/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "serve_page.png"
UPDATE_ENV = "GCNSEG_UPDATE_SCREENSHOTS"
TIMEOUT_MS = 120_000  # a fresh server's first request on a busy 2-core machine

# Per canvas: size, brightness spread (a blank canvas has none) and the share of pixels that
# differ from the original canvas (the painted classes).
CANVAS_STATS = """() => {
  const read = (id) => {
    const c = document.getElementById(id);
    return c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  };
  const overlay = read("overlay"), original = read("original");
  let sum = 0, squares = 0, changed = 0;
  const n = overlay.length / 4;
  for (let i = 0; i < overlay.length; i += 4) {
    const v = (overlay[i] + overlay[i + 1] + overlay[i + 2]) / 3;
    sum += v;
    squares += v * v;
    const d = Math.abs(overlay[i] - original[i]) + Math.abs(overlay[i + 1] - original[i + 1])
      + Math.abs(overlay[i + 2] - original[i + 2]);
    if (d > 30) changed++;
  }
  const mean = sum / n;
  const c = document.getElementById("overlay");
  return {width: c.width, height: c.height, std: Math.sqrt(squares / n - mean * mean),
          changed: changed / n};
}"""


def browser_missing() -> str | None:
    if not BROWSER.is_file():
        return f"no headless browser: {BROWSER} is missing (apt-get install chromium; .ci/run does)"
    if importlib.util.find_spec("playwright") is None:
        return "no browser driver: Playwright for Python is missing (pip install playwright)"
    return None


@pytest.fixture
def page() -> Iterator[Any]:
    if (reason := browser_missing()) is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI installs the browser (.ci/run), yet: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = playwright.chromium.launch(executable_path=str(BROWSER), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 760}, accept_downloads=True)
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if browser_missing() is not None and not os.environ.get("CI"):
        pytest.skip(browser_missing())
    with running_server(tmp_path_factory.mktemp("serve") / "serve.log") as server:
        yield server


def open_page(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_function("document.getElementById('model').textContent.includes('engine')")


def listed_classes(page: Any) -> list[str]:
    return page.eval_on_selector_all("#legend .name", "els => els.map((e) => e.textContent)")


def link_type(page: Any, anchor: str) -> str:
    """The content type a download link's target is served with."""
    return page.evaluate(
        "async (id) => (await fetch(document.getElementById(id).href)).headers.get('content-type')",
        anchor,
    )


def download(page: Any, anchor: str) -> tuple[str, Image.Image]:
    with page.expect_download() as info:
        page.click(f"#{anchor}")
    saved = info.value
    return saved.suggested_filename, Image.open(io.BytesIO(Path(saved.path()).read_bytes()))


def set_opacity(page: Any, value: float) -> None:
    page.eval_on_selector(
        "#opacity", f"el => {{ el.value = '{value}'; el.dispatchEvent(new Event('input')); }}"
    )


@pytest.mark.slow
def test_an_example_at_a_click_with_its_mask_and_overlay_to_download(
    tmp_path: Path, server: Server, page: Any
) -> None:
    open_page(page, server.url)
    # the styled drop area is the button: the browser's "Choose File" control is not shown
    assert page.eval_on_selector("#file", "el => getComputedStyle(el).opacity") == "0"
    assert page.is_visible("#drop .button")
    assert "CC0" in page.inner_text("#attribution")
    licence = page.get_attribute("#attribution a", "href")
    assert "no copyright restrictions" in page.context.request.get(server.url + licence).text()
    with page.expect_response("**/v1/segment") as answer:
        page.click("button.example >> nth=0")  # the cat
    result = answer.value.json()
    page.wait_for_selector("#result:not([hidden])")
    found = [c["name"] for c in result["classes"] if c["share"] > 0]
    assert len(found) < len(result["classes"])  # a class the photo lacks exists to leave out
    assert listed_classes(page) == found
    size = (result["width"], result["height"])
    assert (
        size
        == Image.open(
            io.BytesIO(page.context.request.get(f"{server.url}/static/examples/cat.jpg").body())
        ).size
    )
    page.wait_for_function("document.getElementById('download-overlay').href !== ''")
    assert link_type(page, "download-mask") == link_type(page, "download-overlay") == "image/png"
    name, mask = download(page, "download-mask")
    assert (name, mask.format, mask.size) == ("cat_mask.png", "PNG", size)
    name, drawn = download(page, "download-overlay")
    assert (name, drawn.format, drawn.size) == ("cat_overlay.png", "PNG", size)
    canvas = np.asarray(drawn.convert("RGB"), dtype=np.int16)
    set_opacity(page, 0)
    page.wait_for_timeout(200)  # the overlay link follows the slider
    _, plain = download(page, "download-overlay")
    assert np.abs(canvas - np.asarray(plain.convert("RGB"), dtype=np.int16)).max() > 30
    set_opacity(page, 0.5)
    page.screenshot(path=str(tmp_path / "serve_page.png"), full_page=True)
    if os.environ.get(UPDATE_ENV) == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "serve_page.png", SCREENSHOT)


@pytest.mark.slow
def test_page_segments_a_photo_and_explains_a_bad_file(
    tmp_path: Path, photo: Photo, server: Server, page: Any
) -> None:
    picture = tmp_path / photo.name
    picture.write_bytes(photo.data)
    text = tmp_path / "notes.txt"
    text.write_text("a shopping list, not a photo\n")
    open_page(page, server.url)
    assert "torch-fp32" in page.inner_text("#model")

    page.set_input_files("#file", str(picture))
    page.wait_for_selector("#result:not([hidden])")
    legend = page.inner_text("#legend")
    assert ("cat" if photo.real else "background") in legend, legend
    assert "%" in legend and " ms " in page.inner_text("#timing")
    stats = page.evaluate(CANVAS_STATS)
    assert (stats["width"], stats["height"]) == photo.size
    assert stats["std"] > 10, stats  # not blank
    if photo.real:
        assert stats["changed"] > 0.05, stats  # the cat is painted over
    set_opacity(page, 0)
    assert page.evaluate(CANVAS_STATS)["changed"] < 0.001  # opacity 0: the photo alone

    page.set_input_files("#file", str(text))
    page.wait_for_selector("#error:not([hidden])")
    error = page.inner_text("#error")
    assert "Could not segment notes.txt" in error and "400" in error, error
    assert "unreadable image" in error, error
    assert page.is_hidden("#result")

    page.goto(f"{server.url}/docs")  # Swagger UI, served by gcnseg: no CDN needed
    page.get_by_text("/v1/segment", exact=True).wait_for()


@pytest.mark.slow
def test_a_phone_photo_is_shown_upright_and_its_mask_fits(
    tmp_path: Path, photo: Photo, server: Server, page: Any
) -> None:
    upright = Image.open(io.BytesIO(photo.data)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned a quarter left: viewers turn it back clockwise
    phone = tmp_path / "phone.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(phone, quality=95, exif=exif)
    open_page(page, server.url)
    page.set_input_files("#file", str(phone))
    page.wait_for_selector("#result:not([hidden])")
    stats = page.evaluate(CANVAS_STATS)
    assert (stats["width"], stats["height"]) == upright.size
    shown = page.evaluate(
        """() => {
      const c = document.getElementById("original");
      return Array.from(c.getContext("2d").getImageData(0, 0, c.width, c.height).data);
    }"""
    )
    shown = np.asarray(shown, np.int16).reshape(upright.size[1], upright.size[0], 4)[..., :3]
    assert np.abs(shown - np.asarray(upright, np.int16)).mean() < 8  # upright, as the photo
    _, mask = download(page, "download-mask")
    assert mask.size == upright.size
    if photo.real:
        assert stats["changed"] > 0.05, stats  # the cat is painted over


@pytest.mark.slow
def test_a_photo_refused_for_want_of_a_key_is_sent_again_once_it_is_entered(
    tmp_path: Path, photo: Photo, page: Any
) -> None:
    picture = tmp_path / photo.name
    picture.write_bytes(photo.data)
    with running_server(tmp_path / "serve.log", "--api-key", "k3y") as server:
        page.goto(server.url)
        page.wait_for_selector("#key-row:not([hidden])")
        page.set_input_files("#file", str(picture))
        page.wait_for_selector("#error:not([hidden])")
        assert "401" in page.inner_text("#error")
        page.fill("#api-key", "wrong")
        page.click("#key-row button")
        page.wait_for_function("document.getElementById('error').textContent.includes('401')")
        page.fill("#api-key", "k3y")
        page.click("#key-row button")  # no new upload: the refused photo goes again
        page.wait_for_selector("#result:not([hidden])")
        assert page.is_hidden("#error")
        assert listed_classes(page)
        assert "engine" in page.inner_text("#model")
