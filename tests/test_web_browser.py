"""End to end: the real page in headless Chromium against ``dfnet serve`` with the bundled default model.

Painting, zoom and pan (wheel, keys, space-drag, pinch) at exact image pixels, limits refused when a
picture is opened, result-only requests with alpha/raw fetched per tab, Cancel, the undo history
across inpaints, themes and the phone layout.

Needs Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) and the Python
``playwright`` package; no browser is downloaded. Set ``DFNET_UPDATE_SCREENSHOTS=1`` to write the
before/after screenshots to ``docs/images/`` (otherwise they go to a temporary folder).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest
from browser_support import (
    drag,
    launch_chromium,
    open_image,
    paste_png,
    png_bytes,
    read_mask_download,
    scene,
)
from helpers import live_server
from PIL import Image
from scipy import ndimage

from dfnet.inference import Inpainter
from dfnet.web import ServerSettings, create_app

pytestmark = pytest.mark.browser
browser = pytest.fixture(scope="module")(launch_chromium)

BRUSH_PX = 40  # the page's default brush diameter on screen
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
TOLERANCE_PX = 3  # antialiased stroke edges may round either way
UPLOAD_LIMIT = 1024 * 1024
VIEWPORT = (1280, 760)  # a laptop screen: the toolbar is one row, as in the README's screenshots


def capsule(
    shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float], radius: float
) -> np.ndarray:
    """Pixels whose centres lie within ``radius`` of the segment start-end (what a round brush paints)."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64) + 0.5
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0.0, 1.0)
    return (x - x0 - t * dx) ** 2 + (y - y0 - t * dy) ** 2 <= radius**2


class RecordingInpainter:
    """The real inpainter, noting for each call whether the alpha map and raw completion were asked for,
    and whether the exemplar texture was."""

    def __init__(self, inner: Inpainter) -> None:
        self.inner = inner
        self.details_asked: list[bool] = []
        self.texture_asked: list[bool | str] = []

    def inpaint(
        self, image, hole_mask, strategy="auto", return_details=False, *, add_texture=True, cancel=None
    ):
        self.details_asked.append(return_details)
        self.texture_asked.append(add_texture)
        return self.inner.inpaint(
            image,
            hole_mask,
            strategy=strategy,
            return_details=return_details,
            add_texture=add_texture,
            cancel=cancel,
        )

    def describe(self) -> dict:
        return self.inner.describe()


@pytest.fixture(scope="module")
def recorder() -> RecordingInpainter:
    return RecordingInpainter(Inpainter.from_pretrained("default", device="cpu"))  # the bundled model


@pytest.fixture(scope="module")
def server_url(recorder):
    """``dfnet serve``'s app under uvicorn on a free loopback port, in a background thread."""
    app = create_app(recorder, ServerSettings(queue_size=2, max_upload_bytes=UPLOAD_LIMIT))
    with live_server(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(
        viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]}, accept_downloads=True, color_scheme="dark"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server_url)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screen_to_image(box: dict, point: tuple[float, float], size: tuple[int, int]) -> tuple[float, float]:
    """A screen point over the displayed picture -> image pixel coordinates (size = (width, height))."""
    return ((point[0] - box["x"]) * size[0] / box["width"], (point[1] - box["y"]) * size[1] / box["height"])


def read_download(download) -> np.ndarray:
    return np.asarray(Image.open(download.path()))


def screenshot_dir(tmp_path: Path) -> Path:
    if os.environ.get("DFNET_UPDATE_SCREENSHOTS") == "1":
        DOCS_IMAGES.mkdir(parents=True, exist_ok=True)
        return DOCS_IMAGES
    return tmp_path


def inpaint_answers(page) -> list[str]:
    """Content types of the answers the page gets from /api/inpaint, collected as they arrive."""
    types: list[str] = []
    page.on(
        "response",
        lambda response: (
            types.append(response.headers.get("content-type", ""))
            if response.url.endswith("/api/inpaint")
            else None
        ),
    )
    return types


def brush_px(page) -> int:
    return int(page.input_value("#brush-size"))


def picture_src(page) -> str:
    return page.get_attribute("#base-image", "src") or ""


def test_paint_inpaint_undo_and_continue_on_the_result(page, tmp_path, recorder):
    photo = scene()
    height, width = photo.shape[:2]
    source = tmp_path / "photo.png"
    Image.fromarray(photo).save(source)
    answers = inpaint_answers(page)
    recorder.details_asked.clear()
    recorder.texture_asked.clear()
    open_image(page, source, f"{width} × {height} px")
    # The bundled model has exemplar detail: the page offers the choice, the model's own setting by default.
    assert page.is_visible("#texture-label") and page.input_value("#texture") == "true"
    original_src = picture_src(page)

    # Nothing to fill yet: Inpaint waits for a painted hole instead of asking the server.
    assert page.is_disabled("#inpaint")

    # Paint one stroke across the sun; undo and redo it from the keyboard.
    box = page.locator("#mask-canvas").bounding_box()
    start = (box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.22)
    end = (box["x"] + box["width"] * 0.86, box["y"] + box["height"] * 0.36)
    drag(page, start, end)
    assert page.is_enabled("#undo") and not page.is_enabled("#redo") and page.is_enabled("#inpaint")
    page.keyboard.press("Control+z")
    assert not page.is_enabled("#undo") and page.is_enabled("#redo") and page.is_disabled("#inpaint")
    page.keyboard.press("Control+Shift+Z")
    assert page.is_enabled("#undo") and not page.is_enabled("#redo")
    shots = screenshot_dir(tmp_path)
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.7)  # brush cursor in view
    page.screenshot(path=str(shots / "web-before.png"))
    with page.expect_download() as mask_download:
        page.click("#download-mask")
    hole = read_mask_download(mask_download.value)

    page.click("#inpaint")
    page.wait_for_selector('#tab-result[aria-selected="true"]', timeout=60_000)
    assert page.is_hidden("#error")
    assert page.input_value("#compare") == "50"  # the split starts in the middle, before on the left
    assert page.inner_text("#run-info").startswith(f"Inpainted {100 * hole.mean():.1f}% of the picture in")
    page.fill("#compare", "72")  # the line through the sun: the input on its left, the result on its right
    page.dispatch_event("#compare", "input")
    page.screenshot(path=str(shots / "web-after.png"))

    # One request, asking for the result alone; alpha and raw come only when their tab is opened.
    assert answers == ["image/png"] and recorder.details_asked == [False] and recorder.texture_asked == [True]
    with page.expect_download() as result_download:
        page.click("#download-result")
    assert result_download.value.suggested_filename == "photo-inpainted.png"
    result = read_download(result_download.value)
    assert result.shape == photo.shape and hole.shape == photo.shape[:2]

    # The mask the page sent is the stroke that was painted, at the image's full resolution.
    painted = capsule(
        hole.shape,
        screen_to_image(box, start, (width, height)),
        screen_to_image(box, end, (width, height)),
        brush_px(page) / 2,
    )
    tolerant = ndimage.binary_dilation(painted, iterations=TOLERANCE_PX)
    assert hole.any() and not (hole & ~tolerant).any()
    assert np.count_nonzero(hole & painted) / np.count_nonzero(painted | hole) > 0.9

    # The result differs from the input only inside the painted area, and does differ there.
    changed = (result != photo).any(axis=2)
    assert not (changed & ~hole).any(), "known pixels must be bit-identical"
    assert changed[painted].any()

    for number, tab in enumerate(("alpha", "raw"), start=2):
        page.click(f"#tab-{tab}")
        page.wait_for_selector(f'#tab-{tab}[aria-selected="true"]', timeout=60_000)
        page.wait_for_function("() => document.getElementById('view-image').complete")
        assert len(answers) == number and recorder.details_asked[-1] is True
    assert answers == ["image/png"] * 3
    page.click("#tab-alpha")  # fetched once, shown again without asking
    assert len(answers) == 3

    # The inpaint is a step of the history: undo brings back the input with its mask, redo the result.
    result_src = picture_src(page)
    page.keyboard.press("Control+z")
    assert picture_src(page) == original_src and page.is_disabled("#tab-result")
    assert page.is_disabled("#download-result") and page.is_enabled("#inpaint")
    with page.expect_download() as mask_again:
        page.click("#download-mask")
    assert np.array_equal(read_mask_download(mask_again.value), hole)
    page.keyboard.press("Control+Shift+Z")
    assert picture_src(page) == result_src and page.is_enabled("#tab-result")

    # Painting on the result tab continues editing the result; a second round keeps one name suffix.
    page.click("#tab-result")
    second = (box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.8)
    drag(page, second, (second[0] + 30, second[1]), steps=5)
    assert page.get_attribute("#tab-edit", "aria-selected") == "true"
    page.select_option("#texture", "coarse")  # this round with the coarse preset instead of the model's own
    page.click("#inpaint")
    page.wait_for_selector('#tab-result[aria-selected="true"]', timeout=60_000)
    assert (
        len(answers) == 4 and recorder.details_asked[-1] is False and recorder.texture_asked[-1] == "coarse"
    )
    with page.expect_download() as second_download:
        page.click("#download-result")
    assert second_download.value.suggested_filename == "photo-inpainted.png"
    twice = read_download(second_download.value)
    changed_again = (twice != result).any(axis=2)  # the second round started from the first result
    assert changed_again.any() and not (changed_again & hole).any()


def test_paste_and_drop_images_then_load_masks(page, tmp_path):
    paste_png(page, png_bytes(scene(64, 96)))
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


def test_limits_and_unreadable_files_are_refused_when_opened(page, tmp_path):
    answers = inpaint_answers(page)
    huge = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(huge)  # 400 MP, but a small file: the header tells
    page.set_input_files("#image-input", str(huge))
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == (
        "huge.png is 20000 × 20000 = 400,000,000 pixels; "
        "the server accepts at most 25,000,000 (dfnet serve --max-pixels)"
    )
    assert page.inner_text("#image-info") == "No image loaded"
    photo = tmp_path / "camera.jpg"
    Image.new("RGB", (6000, 5000), (90, 120, 200)).save(photo, quality=50)  # 30 MP, a few hundred KB
    assert photo.stat().st_size < UPLOAD_LIMIT
    page.set_input_files("#image-input", str(photo))
    page.wait_for_function("() => document.getElementById('error').textContent.startsWith('camera.jpg')")
    assert page.inner_text("#error").startswith("camera.jpg is 6000 × 5000 = 30,000,000 pixels;")

    noise = np.random.default_rng(0).integers(0, 256, (640, 640, 3), dtype=np.uint8)
    data = png_bytes(noise)
    assert len(data) > UPLOAD_LIMIT
    drop_file(page, data, "noise.png")
    page.wait_for_function("() => document.getElementById('error').textContent.startsWith('noise.png')")
    assert page.inner_text("#error") == (
        f"noise.png is {len(data) / 2**20:.3g} MB; the server accepts at most 1 MB "
        "for image and mask together (dfnet serve --max-upload-mb)"
    )

    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page.set_input_files("#image-input", str(notes))
    page.wait_for_function("() => document.getElementById('error').textContent.startsWith('notes.txt')")
    assert page.inner_text("#error") == "notes.txt is not an image (text/plain)"
    drop_file(page, b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "broken.png")
    page.wait_for_function("() => document.getElementById('error').textContent.startsWith('broken.png')")
    assert "this browser cannot display that file" in page.inner_text("#error")
    assert page.inner_text("#image-info") == "No image loaded" and not answers


def open_scene(page, folder: Path, name: str, width: int, height: int) -> None:
    """Save a ``scene`` of that size as ``folder / name`` and open it in the page."""
    Image.fromarray(scene(height, width)).save(folder / name)
    open_image(page, folder / name, f"{width} × {height} px")


def zoom_percent(page) -> int:
    return int(page.inner_text("#zoom-value").rstrip("%"))


def image_point(box: dict, point: tuple[float, float], width: int) -> tuple[float, float]:
    """The image coordinates under a screen point, from where the browser laid the picture out."""
    scale = box["width"] / width
    return ((point[0] - box["x"]) / scale, (point[1] - box["y"]) / scale)


def test_zoom_and_pan_then_paint_the_pixel_under_the_pointer(page, tmp_path):
    width, height = 64, 48
    open_scene(page, tmp_path, "tiny.png", width, height)
    canvas = page.locator("#mask-canvas")
    fitted = canvas.bounding_box()
    assert fitted["width"] == pytest.approx(width * zoom_percent(page) / 100, rel=0.01)
    assert zoom_percent(page) > 1000  # a tiny picture is fitted to the window, not shown at 64 px

    page.click("#zoom-actual")
    assert zoom_percent(page) == 100 and canvas.bounding_box()["width"] == pytest.approx(width)

    # The wheel zooms about the pointer: the image point under it stays under it.
    box = canvas.bounding_box()
    pointer = (round(box["x"]) + 20, round(box["y"]) + 10)  # mouse events carry whole pixels
    before = image_point(box, pointer, width)
    page.mouse.move(*pointer)
    page.mouse.wheel(0, -600)
    page.wait_for_function("() => parseInt(document.getElementById('zoom-value').textContent) > 300")
    box = canvas.bounding_box()
    assert box["width"] == pytest.approx(width * zoom_percent(page) / 100, rel=0.01)
    assert image_point(box, pointer, width) == pytest.approx(before, abs=0.05)

    # "+" zooms further; space + drag pans by exactly the distance dragged.
    for _ in range(4):
        page.keyboard.press("+")
    zoom = canvas.bounding_box()["width"] / width
    assert zoom > 8
    box = canvas.bounding_box()
    page.keyboard.down(" ")
    drag(page, (600, 400), (570, 420), steps=4)
    page.keyboard.up(" ")
    moved = canvas.bounding_box()
    assert (moved["x"] - box["x"], moved["y"] - box["y"]) == pytest.approx((-30, 20), abs=0.01)
    assert page.is_disabled("#undo")  # panning painted nothing

    # A 1-pixel brush at this zoom paints exactly the pixel under the pointer.
    page.fill("#brush-size", "1")
    page.dispatch_event("#brush-size", "input")
    assert page.inner_text("#brush-size-value") == "1 px"
    target = (round(moved["x"] + 37.5 * zoom), round(moved["y"] + 21.5 * zoom))
    assert 0 < target[0] < VIEWPORT[0] and 0 < target[1] < VIEWPORT[1], "the target pixel must be on screen"
    page.mouse.click(*target)
    with page.expect_download() as mask_download:
        page.click("#download-mask")
    hole = read_mask_download(mask_download.value)
    expected = np.zeros((height, width), dtype=bool)
    column, row = (int(v) for v in image_point(moved, target, width))
    expected[row, column] = True
    assert (column, row) == (37, 21) and np.array_equal(hole, expected)
    page.screenshot(path=str(screenshot_dir(tmp_path) / "web-zoom.png"))

    # "−" steps back by the same factor as "+"; Fit returns to the fitted view.
    page.click("#zoom-out")
    assert canvas.bounding_box()["width"] == pytest.approx(width * zoom / 1.25, rel=0.001)
    page.click("#zoom-fit")
    assert canvas.bounding_box() == pytest.approx(fitted)


def touch(page, kind: str, pointer_id: int, x: float, y: float) -> None:
    """A synthetic touch pointer event on the stage (Playwright's touchscreen only taps)."""
    page.evaluate(
        """([kind, id, x, y]) => document.getElementById('stage').dispatchEvent(new PointerEvent(kind, {
            pointerId: id, pointerType: 'touch', clientX: x, clientY: y, button: 0, buttons: 1,
            isPrimary: id === 1, bubbles: true, cancelable: true}))""",
        [kind, pointer_id, x, y],
    )


def test_two_fingers_pinch_zoom_and_pan_without_painting(page, tmp_path):
    width, height = 96, 64
    open_scene(page, tmp_path, "pinch.png", width, height)
    canvas = page.locator("#mask-canvas")
    box = canvas.bounding_box()
    centre = (round(box["x"] + box["width"] / 2), round(box["y"] + box["height"] / 2))
    under_centre = image_point(box, centre, width)
    touch(page, "pointerdown", 1, centre[0] - 50, centre[1])
    touch(page, "pointermove", 1, centre[0] - 55, centre[1])  # one finger alone would paint...
    touch(page, "pointermove", 1, centre[0] - 50, centre[1])
    touch(page, "pointerdown", 2, centre[0] + 50, centre[1])  # ...a second one turns it into a pinch
    touch(page, "pointermove", 1, centre[0] - 100 + 40, centre[1] + 25)
    touch(page, "pointermove", 2, centre[0] + 100 + 40, centre[1] + 25)
    touch(page, "pointerup", 1, centre[0] - 60, centre[1] + 25)
    touch(page, "pointerup", 2, centre[0] + 140, centre[1] + 25)
    pinched = canvas.bounding_box()
    assert pinched["width"] == pytest.approx(2 * box["width"], rel=0.01)  # fingers twice as far apart
    moved_centre = (centre[0] + 40, centre[1] + 25)  # the fingers' midpoint moved by (40, 25)
    assert image_point(pinched, moved_centre, width) == pytest.approx(under_centre, abs=0.05)
    assert page.is_disabled("#undo") and page.is_disabled("#inpaint")  # the first finger's stroke was dropped


def test_cancel_aborts_the_request_and_the_mask_is_locked_meanwhile(page, tmp_path):
    open_scene(page, tmp_path, "photo.png", 96, 64)
    held: list = []
    page.route("**/api/inpaint", lambda route: held.append(route))  # the server never answers
    box = page.locator("#mask-canvas").bounding_box()
    drag(page, (box["x"] + 20, box["y"] + 20), (box["x"] + 60, box["y"] + 30), steps=5)
    page.click("#inpaint")
    page.wait_for_function("() => parseFloat(document.getElementById('elapsed').textContent) >= 1")
    assert page.is_visible("#busy") and page.is_disabled("#undo") and page.is_disabled("#inpaint")
    drag(page, (box["x"] + 20, box["y"] + 50), (box["x"] + 60, box["y"] + 50), steps=5)
    assert "locked" in page.inner_text("#run-info")
    with page.expect_event("requestfailed") as failed:  # the request is aborted (the event may come late)
        page.click("#cancel")
    page.wait_for_selector("#busy", state="hidden")
    assert page.inner_text("#run-info").startswith("Cancelled after")
    assert held and failed.value.url.endswith("/api/inpaint")
    assert page.is_hidden("#error") and page.is_enabled("#inpaint")
    page.click("#undo")  # the stroke painted while locked was never added: one undo empties the mask
    assert page.is_disabled("#undo") and page.is_disabled("#inpaint")

    # A refusal from the server is shown as the server worded it.
    page.unroute("**/api/inpaint")
    page.route(
        "**/api/inpaint",
        lambda route: route.fulfill(
            status=503, content_type="application/json", body='{"detail": "server busy: try again"}'
        ),
    )
    page.click("#redo")
    page.click("#inpaint")
    page.wait_for_selector("#error:not([hidden])")
    assert page.inner_text("#error") == "The server refused the request (503): server busy: try again"
    drag(page, (box["x"] + 20, box["y"] + 40), (box["x"] + 30, box["y"] + 40), steps=3)
    assert page.is_hidden("#error")  # painting again clears the old refusal


def test_jpeg_comes_back_as_jpeg_and_small_pictures_warn_about_large_holes(page, tmp_path):
    source = tmp_path / "holiday.jpg"
    Image.fromarray(scene(96, 128)).save(source, quality=85)
    open_image(page, source, "128 × 96 px")
    box = page.locator("#mask-canvas").bounding_box()
    drag(
        page,
        (box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5),
        (box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5),
        steps=5,
    )
    assert page.is_hidden("#warning")
    page.click("#inpaint")
    page.wait_for_selector('#tab-result[aria-selected="true"]', timeout=60_000)
    with page.expect_download() as result_download:
        page.click("#download-result")
    assert result_download.value.suggested_filename == "holiday-inpainted.jpg"
    with Image.open(result_download.value.path()) as result:
        assert result.format == "JPEG" and result.size == (128, 96)

    open_scene(page, tmp_path, "icon.png", 10, 10)
    assert brush_px(page) <= 2  # the default brush is 40 screen pixels at the fitted zoom
    box = page.locator("#mask-canvas").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert page.is_hidden("#warning")
    for _ in range(10):  # 1 -> 2 -> 3 -> 4 -> 5 -> 6 -> 7 -> 8 -> 10 -> 12 -> 15 px: wider than the picture
        page.keyboard.press("]")
    assert brush_px(page) == 15
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#warning:not([hidden])")
    assert page.inner_text("#warning").startswith("The mask covers ")


def test_light_theme_follows_the_system_and_phones_get_one_toolbar_row(browser, server_url):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, color_scheme="light", has_touch=True
    )
    page = context.new_page()
    page.goto(server_url)
    page.wait_for_function("() => document.documentElement.dataset.theme === 'light'")
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(244, 245, 247)"
    page.click("#theme")
    assert page.evaluate("() => document.documentElement.dataset.theme") == "dark"
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == "rgb(27, 29, 33)"
    page.reload()  # the toggle's choice is remembered
    page.wait_for_function("() => document.documentElement.dataset.theme === 'dark'")
    toolbar = page.locator(".toolbar").bounding_box()
    assert toolbar["height"] < 50, f"the phone toolbar is {toolbar['height']} px tall"
    inpaint = page.locator("#inpaint").bounding_box()
    assert inpaint["x"] >= 0 and inpaint["x"] + inpaint["width"] <= 390  # the main action is in view
    chrome = sum(
        page.locator(selector).bounding_box()["height"]
        for selector in (".toolbar", ".status", ".tabs", ".actions")
    )
    assert chrome < 0.25 * 844
    context.close()
