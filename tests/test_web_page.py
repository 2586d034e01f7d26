"""``pconv serve`` for real: the command starts a server, and Chromium drives the web page.

The browser tests need Playwright for Python (in the test extra) and Debian's
``chromium`` (``/usr/bin/chromium``, or the path in ``PCONV_CHROMIUM``); ``.ci/run``
installs it. Without it they skip; ``tests/test_serve.py`` covers the API they use.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("fastapi", reason="pconv serve needs the serve extra: pip install 'pconv[serve]'")

pytestmark = pytest.mark.slow  # a real server and Chromium; tests/test_serve.py covers the API in-process

EXAMPLE = Path(__file__).parent.parent / "examples" / "coffee.png"
CHROMIUM = os.environ.get("PCONV_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Strokes in image pixels (the example is 600 × 400): a line across the cup, an L on the saucer.
STROKES = [[(150, 190), (300, 230)], [(420, 300), (470, 330), (470, 360)]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """``pconv serve`` with the shipped model, in a child process; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pconv", "serve", "--port", str(port), "--device", "cpu", "--queue-size", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/health", timeout=1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"pconv serve did not start:\n{process.stdout.read()}")
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_the_serve_command_starts_a_server_with_the_shipped_model(server):
    with urllib.request.urlopen(f"{server}/api/health") as response:
        health = json.load(response)
    assert health["model"]["file"] == "default.safetensors" and health["model"]["preset"] == "mini"
    assert health["limits"]["queue_size"] == 2 and health["device"] == "cpu"


# ---------------------------------------------------------------- browser


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is in the test extra")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set PCONV_CHROMIUM)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A laptop-sized page of the server that records every URL it requests."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    page = context.new_page()
    page.requested, page.errors = [], []
    page.on("request", lambda request: page.requested.append(request.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(server)
    yield page
    context.close()
    assert not page.errors, f"errors in the page: {page.errors}"
    foreign = [url for url in page.requested if not url.startswith((server, "blob:", "data:"))]
    assert not foreign, f"the page requested other sites: {foreign}"


def open_example(page) -> dict:
    """Load the example photo through the file input; returns the paint canvas's page box."""
    page.set_input_files("#file", str(EXAMPLE))
    page.wait_for_selector("#view:not([hidden])")
    page.wait_for_function("() => document.getElementById('model').textContent.includes('mini')")
    return page.locator("#paint").bounding_box()


def to_page(box: dict, point: tuple[float, float]) -> tuple[float, float]:
    scale = box["width"] / 600
    return box["x"] + point[0] * scale, box["y"] + point[1] * scale


def paint_with_mouse(page, box: dict, stroke: list[tuple[float, float]]) -> None:
    page.mouse.move(*to_page(box, stroke[0]))
    page.mouse.down()
    for point in stroke[1:]:
        page.mouse.move(*to_page(box, point), steps=12)
    page.mouse.up()


def painted_pixels(page) -> int:
    """Pixels of the paint layer with any paint on them."""
    return page.evaluate(
        """() => {
            const canvas = document.getElementById('paint');
            const alpha = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let count = 0;
            for (let i = 3; i < alpha.length; i += 4) if (alpha[i] > 0) count++;
            return count;
        }"""
    )


def stroke_region(strokes, width: float) -> np.ndarray:
    """bool ``(400, 600)``: pixels within ``width / 2`` of the strokes."""
    region = Image.new("L", (600, 400))
    draw = ImageDraw.Draw(region)
    for stroke in strokes:
        draw.line(stroke, fill=255, width=round(width), joint="curve")
        for x, y in stroke:
            draw.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=255)
    return np.asarray(region) > 0


def test_paint_inpaint_and_download_change_only_the_painted_region(page, tmp_path):
    box = open_example(page)
    for stroke in STROKES:
        paint_with_mouse(page, box, stroke)
    page.screenshot(path=tmp_path / "painted.png")
    page.click("#inpaint")
    page.wait_for_selector("#download[aria-disabled='false']", timeout=60_000)
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "coffee-inpainted.png"
    download.value.save_as(tmp_path / "result.png")

    original = np.asarray(Image.open(EXAMPLE).convert("RGB")).astype(int)
    result = np.asarray(Image.open(tmp_path / "result.png")).astype(int)
    assert result.shape == original.shape
    brush = 32 * 600 / box["width"]  # the default brush size, 32 screen pixels, in image pixels
    changed = np.abs(result - original).sum(axis=-1) > 0
    inside, outside = stroke_region(STROKES, brush - 4), ~stroke_region(STROKES, brush + 4)
    assert changed[inside].mean() > 0.9, "the painted region was not filled"
    assert np.abs(result - original)[inside].mean() > 5
    assert not changed[outside].any(), "pixels outside the painted region changed"

    page.click("#compare")
    page.wait_for_selector("#compare-control:not([hidden])")
    page.screenshot(path=tmp_path / "compare.png")
    assert Image.open(tmp_path / "compare.png").size == (1280, 800)


def test_brush_erase_undo_redo_clear_and_painting_again_on_the_result(page):
    box = open_example(page)
    paint_with_mouse(page, box, STROKES[0])
    painted = painted_pixels(page)
    assert painted > 1000
    page.click("#eraser")
    paint_with_mouse(page, box, [(150, 210), (300, 210)])  # across the first stroke
    erased = painted_pixels(page)
    assert 0 < erased < painted
    page.keyboard.press("Control+z")
    assert painted_pixels(page) == painted
    page.click("#undo")
    assert painted_pixels(page) == 0
    page.click("#redo")
    page.keyboard.press("Control+Shift+z")
    assert painted_pixels(page) == erased
    page.click("#clear")
    assert painted_pixels(page) == 0 and page.is_disabled("#inpaint")
    page.click("#undo")
    assert painted_pixels(page) == erased

    page.click("#brush")
    inpaint_and_wait(page)
    assert page.is_enabled("#compare")
    assert painted_pixels(page) == 0  # the result is the new image, with nothing painted on it
    paint_with_mouse(page, box, STROKES[1])
    second = painted_pixels(page)
    inpaint_and_wait(page)
    assert painted_pixels(page) == 0
    page.click("#undo")  # the first result with the second stroke on it
    assert painted_pixels(page) == second and page.is_enabled("#compare")
    page.click("#undo")
    page.click("#undo")  # the photo as opened, with the erased stroke
    assert painted_pixels(page) == erased and page.is_disabled("#compare")


def inpaint_and_wait(page, *, tap: bool = False) -> None:
    (page.tap if tap else page.click)("#inpaint")  # marks the page busy before it returns
    page.wait_for_function("() => document.body.getAttribute('aria-busy') === 'false'", timeout=60_000)
    assert page.is_hidden("#error"), page.inner_text("#error-text")


def test_server_errors_are_shown_as_readable_messages(page):
    box = open_example(page)
    page.route(
        "**/api/inpaint",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "7"},
            content_type="application/json",
            body=json.dumps({"detail": "the server is busy: 2 requests are waiting for the model"}),
        ),
    )
    paint_with_mouse(page, box, STROKES[0])
    page.click("#inpaint")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error-text") == (
        "Inpainting failed: the server is busy: 2 requests are waiting for the model (retry in 7 s)"
    )
    assert page.is_hidden("#progress") and page.is_enabled("#inpaint")
    page.click("#error-close")
    assert page.is_hidden("#error")


def test_the_texture_toggle_asks_the_server_to_refine(page):
    box = open_example(page)
    sent = []

    def answer(route):
        sent.append(route.request.post_data_buffer)
        route.fulfill(status=503, content_type="application/json", body=json.dumps({"detail": "busy"}))

    page.route("**/api/inpaint", answer)
    paint_with_mouse(page, box, STROKES[0])
    for texture in (False, True):
        if texture:
            page.check("#refine")
        page.click("#inpaint")
        page.wait_for_selector("#error:not([hidden])")
        page.click("#error-close")
    assert [b'name="refine"\r\n\r\ntrue' in body for body in sent] == [False, True]
    assert b'name="refine"\r\n\r\nfalse' in sent[0]


def test_files_the_browser_cannot_open_are_refused_in_words(page, tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    page.set_input_files("#file", str(tmp_path / "notes.png"))
    page.wait_for_selector("#error:not([hidden])")
    assert "cannot show notes.png" in page.inner_text("#error-text")


def test_an_image_dropped_on_the_page_opens(page):
    data = list(EXAMPLE.read_bytes())
    transfer = page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], 'dropped.png', {type: 'image/png'}));
            return transfer;
        }""",
        data,
    )
    page.dispatch_event("#stage", "dragover", {"dataTransfer": transfer})
    assert "dragging" in page.get_attribute("#stage", "class")
    page.dispatch_event("#stage", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#view:not([hidden])")
    assert page.evaluate(
        "() => [document.getElementById('picture').width, document.getElementById('picture').height]"
    ) == [600, 400]
    assert "dragging" not in page.get_attribute("#stage", "class")


def touch_drag(page, points: list[tuple[float, float]]) -> None:
    """A one-finger drag through ``points`` (page pixels), as a phone's touch screen sends it."""
    session = page.context.new_cdp_session(page)
    kinds = ["touchStart"] + ["touchMove"] * (len(points) - 1)
    for kind, (x, y) in zip(kinds, points, strict=True):
        session.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
    session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    # A finger needs longer than this to reach a button; Chromium's gesture detector drops
    # a tap that comes at once after a drag (seen: the Inpaint tap then never clicks).
    page.wait_for_timeout(200)


def test_phone_viewport_fits_and_paints_with_touch(browser, server, tmp_path):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.goto(server)
    box = open_example(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "the page scrolls sideways"
    assert box["width"] <= 390
    for button in ("#open", "#brush", "#eraser", "#undo", "#redo", "#clear", "#inpaint", "#download"):
        button_box = page.locator(button).bounding_box()
        assert button_box["x"] >= 0 and button_box["x"] + button_box["width"] <= 390, button

    start, end = to_page(box, (150, 190)), to_page(box, (300, 230))
    line = [
        (start[0] + (end[0] - start[0]) * t / 20, start[1] + (end[1] - start[1]) * t / 20) for t in range(21)
    ]
    touch_drag(page, line)
    assert painted_pixels(page) > 1000
    inpaint_and_wait(page, tap=True)
    assert page.get_attribute("#download", "aria-disabled") == "false"
    page.screenshot(path=tmp_path / "phone.png")
    context.close()


def test_api_docs_render_the_operations_without_outside_requests(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    docs = context.new_page()
    requested, errors = [], []
    docs.on("request", lambda request: requested.append(request.url))
    docs.on("pageerror", lambda error: errors.append(str(error)))
    docs.goto(f"{server}/docs")
    docs.wait_for_selector('.opblock-summary-path[data-path="/api/inpaint"]', timeout=30_000)
    assert docs.locator(".opblock-post").count() == 1 and docs.locator(".opblock-get").count() >= 1
    docs.locator(".opblock-post .opblock-summary").click()  # the form's fields are listed
    docs.wait_for_selector("text=mask_convention")
    context.close()
    assert not errors, errors
    foreign = [url for url in requested if not url.startswith((server, "blob:", "data:"))]
    assert not foreign, f"the docs requested other sites: {foreign}"
