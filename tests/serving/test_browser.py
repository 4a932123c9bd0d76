"""The web page in a real browser: Debian's headless Chromium, driven by Playwright for Python.

Playwright's own browser download cannot work offline, so it is pointed at /usr/bin/chromium.
Without that browser or Playwright the test is skipped with the reason, except under CI, which
installs both (.ci/run) and so must run it. GCNSEG_UPDATE_SCREENSHOTS=1 writes the README's
picture of the page, docs/images/serve_page.png.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _serving import Photo, running_server

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
        page = browser.new_page(viewport={"width": 1280, "height": 760})
        page.set_default_timeout(TIMEOUT_MS)
        yield page
        browser.close()


def set_opacity(page: Any, value: float) -> None:
    page.eval_on_selector(
        "#opacity", f"el => {{ el.value = '{value}'; el.dispatchEvent(new Event('input')); }}"
    )


@pytest.mark.slow
def test_page_segments_a_photo_and_explains_a_bad_file(
    tmp_path: Path, photo: Photo, page: Any
) -> None:
    picture = tmp_path / photo.name
    picture.write_bytes(photo.data)
    text = tmp_path / "notes.txt"
    text.write_text("a shopping list, not a photo\n")
    with running_server(tmp_path / "serve.log") as server:
        page.goto(server.url)
        page.wait_for_function("document.getElementById('model').textContent.includes('engine')")
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
        set_opacity(page, 0.5)
        page.screenshot(path=str(tmp_path / "serve_page.png"), full_page=True)
        if os.environ.get(UPDATE_ENV) == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp_path / "serve_page.png", SCREENSHOT)

        page.set_input_files("#file", str(text))
        page.wait_for_selector("#error:not([hidden])")
        error = page.inner_text("#error")
        assert "Could not segment notes.txt" in error and "400" in error, error
        assert "unreadable image" in error, error
        assert page.is_hidden("#result")

        page.goto(f"{server.url}/docs")  # Swagger UI, served by gcnseg: no CDN needed
        page.get_by_text("/v1/segment", exact=True).wait_for()
