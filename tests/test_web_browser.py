"""End to end: the real page in headless Chromium against ``dfnet serve`` with the bundled default model.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) and the Python
``playwright`` package; no browser is downloaded. Set ``DFNET_UPDATE_SCREENSHOTS=1`` to write the
before/after screenshots to ``docs/images/`` (otherwise they go to a temporary folder).
"""

from __future__ import annotations

import base64
import io
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from dfnet.inference import Inpainter
from dfnet.web import ServerSettings, create_app

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
TOLERANCE_PX = 3  # antialiased stroke edges may round either way
BRUSH_PX = 40  # the page's default brush diameter on screen
UPLOAD_LIMIT = 1024 * 1024

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")


def scene(height: int = 256, width: int = 384) -> np.ndarray:
    """A small synthetic landscape: sky gradient, a sun, hills and striped ground."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = np.stack([90 + 60 * y / height, 150 + 50 * y / height, np.full_like(y, 235)], axis=2)
    rgb = sky.copy()
    sun = (x - 0.72 * width) ** 2 + (y - 0.28 * height) ** 2 < (0.09 * height) ** 2
    rgb[sun] = (255, 214, 90)
    hill = y > 0.62 * height + 18 * np.sin(x / 37.0) + 10 * np.cos(x / 13.0)
    ground = np.stack([60 + 25 * np.sin(x / 5.0), 125 + 20 * np.sin((x + y) / 9.0), 55 + 0 * x], axis=2)
    rgb[hill] = ground[hill]
    return np.clip(rgb, 0, 255).astype(np.uint8)


def capsule(
    shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float], radius: float
) -> np.ndarray:
    """Pixels whose centres lie within ``radius`` of the segment start-end (what a round brush paints)."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64) + 0.5
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
    return (x - x0 - t * dx) ** 2 + (y - y0 - t * dy) ** 2 <= radius**2


@pytest.fixture(scope="module")
def server_url():
    """``dfnet serve``'s app under uvicorn on a free loopback port, in a background thread."""
    import uvicorn

    inpainter = Inpainter.from_pretrained("default", device="cpu")  # the bundled model: real screenshots
    app = create_app(inpainter, ServerSettings(queue_size=2, max_upload_bytes=UPLOAD_LIMIT))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(viewport={"width": 1100, "height": 720}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server_url)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_image(page, path: Path, expected_info: str) -> None:
    page.set_input_files("#image-input", str(path))
    page.wait_for_function(
        "text => document.getElementById('image-info').textContent.includes(text)", arg=expected_info
    )


def screen_to_image(box: dict, point: tuple[float, float], size: tuple[int, int]) -> tuple[float, float]:
    """A screen point over the displayed picture -> image pixel coordinates (size = (width, height))."""
    return ((point[0] - box["x"]) * size[0] / box["width"], (point[1] - box["y"]) * size[1] / box["height"])


def read_download(download) -> np.ndarray:
    return np.asarray(Image.open(download.path()))


def read_mask_download(download) -> np.ndarray:
    """The page's mask PNG (canvas PNGs are RGBA, opaque) as a hole mask."""
    return np.asarray(Image.open(download.path()).convert("L")) > 127


def screenshot_dir(tmp_path: Path) -> Path:
    if os.environ.get("DFNET_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOCS_IMAGES
    return tmp_path


def test_paint_inpaint_download(page, tmp_path):
    photo = scene()
    height, width = photo.shape[:2]
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    open_image(page, source, f"{width} × {height} px")

    # An empty mask is refused by the server and the page says why.
    page.click("#inpaint")
    page.wait_for_selector("#error:not([hidden])")
    assert "mask has no hole" in page.inner_text("#error")

    # Paint one stroke across the sun; undo and redo it from the keyboard.
    box = page.locator("#mask-canvas").bounding_box()
    start = (box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.22)
    end = (box["x"] + box["width"] * 0.86, box["y"] + box["height"] * 0.36)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=25)
    page.mouse.up()
    assert page.is_enabled("#undo") and not page.is_enabled("#redo")
    page.keyboard.press("Control+z")
    assert not page.is_enabled("#undo") and page.is_enabled("#redo")
    page.keyboard.press("Control+Shift+Z")
    assert page.is_enabled("#undo") and not page.is_enabled("#redo")
    shots = screenshot_dir(tmp_path)
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)  # brush cursor in view
    page.screenshot(path=str(shots / "web-before.png"))

    page.click("#inpaint")
    page.wait_for_selector('#tab-result[aria-selected="true"]', timeout=60_000)
    assert page.is_hidden("#error")
    assert page.is_enabled("#tab-alpha") and page.is_enabled("#tab-raw")
    page.fill("#compare", "50")
    page.dispatch_event("#compare", "input")
    page.screenshot(path=str(shots / "web-after.png"))

    with page.expect_download() as result_download:
        page.click("#download-result")
    with page.expect_download() as mask_download:
        page.click("#download-mask")
    assert result_download.value.suggested_filename == "photo-inpainted.png"
    result = read_download(result_download.value)
    hole = read_mask_download(mask_download.value)
    assert result.shape == photo.shape and hole.shape == photo.shape[:2]

    # The mask the page sent is the stroke that was painted, at the image's full resolution.
    radius = BRUSH_PX / 2 * width / box["width"]
    painted = capsule(
        hole.shape,
        screen_to_image(box, start, (width, height)),
        screen_to_image(box, end, (width, height)),
        radius,
    )
    tolerant = ndimage.binary_dilation(painted, iterations=TOLERANCE_PX)
    assert hole.any() and not (hole & ~tolerant).any()
    assert np.count_nonzero(hole & painted) / np.count_nonzero(painted | hole) > 0.9

    # The result differs from the input only inside the painted area, and does differ there.
    changed = (result != photo).any(axis=2)
    assert not (changed & ~tolerant).any(), "pixels outside the painted area changed"
    assert not (changed & ~hole).any(), "known pixels must be bit-identical"
    assert changed[painted].any()

    # The alpha map and raw completion tabs show pictures; the result can be edited again.
    for tab in ("#tab-alpha", "#tab-raw"):
        page.click(tab)
        page.wait_for_function(
            "() => document.getElementById('view-image').complete && !document.getElementById('view-image').hidden"
        )
    page.click("#use-result")
    page.wait_for_function(
        "() => document.getElementById('image-info').textContent.startsWith('photo-inpainted.png')"
    )
    assert page.is_disabled("#tab-result") and page.is_disabled("#undo")


def test_paste_and_drop_images_then_load_masks(page, tmp_path):
    page.evaluate(
        """b64 => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], 'image.png', {type: 'image/png'}));
            document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: transfer, bubbles: true}));
        }""",
        base64.b64encode(png_bytes(scene(64, 96))).decode("ascii"),
    )
    page.wait_for_function(
        "() => document.getElementById('image-info').textContent.includes('pasted.png · 96 × 64 px')"
    )
    drop_file(page, png_bytes(scene(128, 160)), "dropped.png")
    page.wait_for_function(
        "() => document.getElementById('image-info').textContent.includes('dropped.png · 160 × 128 px')"
    )
    wrong_mask = tmp_path / "mask.png"
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(wrong_mask)
    page.set_input_files("#mask-input", str(wrong_mask))
    page.wait_for_selector("#error:not([hidden])")
    assert "mask is 64x64 but the image is 160x128" in page.inner_text("#error")

    # A mask of the right size replaces the painting (one undoable step) and is sent as it is.
    hole = np.zeros((128, 160), dtype=bool)
    hole[30:60, 40:100] = True
    good_mask = tmp_path / "good-mask.png"
    Image.fromarray(hole.astype(np.uint8) * 255).save(good_mask)
    page.set_input_files("#mask-input", str(good_mask))
    page.wait_for_selector("#undo:not([disabled])")
    assert page.is_hidden("#error")
    with page.expect_download() as mask_download:
        page.click("#download-mask")
    assert np.array_equal(read_mask_download(mask_download.value), hole)


def drop_file(page, data: bytes, name: str) -> None:
    """Drop a file on the page the way a file manager does."""
    transfer = page.evaluate_handle(
        """([b64, name]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: 'image/png'}));
            return transfer;
        }""",
        [base64.b64encode(data).decode("ascii"), name],
    )
    page.dispatch_event("#stage", "drop", {"dataTransfer": transfer})


def test_too_large_upload_is_explained_on_the_page(page):
    noise = np.random.default_rng(0).integers(0, 256, (640, 640, 3), dtype=np.uint8)
    data = png_bytes(noise)
    assert len(data) > UPLOAD_LIMIT
    drop_file(page, data, "noise.png")
    page.wait_for_function("() => document.getElementById('image-info').textContent.includes('640 × 640')")
    page.click("#inpaint")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == (
        "The server refused the request (413): upload too large: image and mask together may be at most 1 MB"
    )
    assert page.is_hidden("#busy") and page.is_enabled("#inpaint")


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
