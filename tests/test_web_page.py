"""The painting page in headless Chromium: shortcuts whatever control was used last, the before/after
handle and the original on ``\\``, a picture area that never changes size, TIFF, several models, the
discard confirmation, exact brush sizes, downloads of every view and the shortcuts panel.

A fast stand-in model (``FlatInpainter``) serves beside the bundled one so that most tests need no
network inference."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from browser_support import drag, launch_chromium, open_image, paste_png, png_bytes, read_mask_download, scene
from helpers import live_server
from PIL import Image

from dfnet.inference import Inpainter
from dfnet.web import ServerSettings, create_app

pytestmark = pytest.mark.browser
browser = pytest.fixture(scope="module")(launch_chromium)
FLAT_LEVEL = 77  # what the stand-in model paints in the hole


class FlatInpainter:
    """Fills the hole with one grey level; its alpha map is the hole itself and its raw completion grey."""

    def __init__(self) -> None:
        self.calls = 0

    def inpaint(
        self, image, hole_mask, strategy="auto", return_details=False, *, add_texture=True, cancel=None
    ):
        self.calls += 1
        result = np.asarray(image).copy()
        result[hole_mask] = FLAT_LEVEL
        if not return_details:
            return result
        raw = np.full_like(result, FLAT_LEVEL)
        return SimpleNamespace(result=result, alpha=hole_mask.astype(np.float32)[..., None], raw=raw)

    def describe(self) -> dict:
        return {"name": "flat-stand-in", "device": "cpu", "texture": None}


@pytest.fixture(scope="module")
def flat() -> FlatInpainter:
    return FlatInpainter()


@pytest.fixture(scope="module")
def server_url(flat):
    """Two models: the stand-in first (the page's default), then the bundled DFNet."""
    models = {"flat": flat, "default": Inpainter.from_pretrained("default", device="cpu")}
    with live_server(create_app(models, ServerSettings(queue_size=2))) as port:
        yield f"http://127.0.0.1:{port}"


def new_page(browser, server_url, width=1100, height=720, **options):
    context = browser.new_context(
        viewport={"width": width, "height": height}, accept_downloads=True, color_scheme="dark", **options
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(server_url)
    page.wait_for_function("() => document.getElementById('model-info').textContent !== ''")
    return context, page, errors


@pytest.fixture
def page(browser, server_url):
    context, page, errors = new_page(browser, server_url)
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def open_scene(
    page, folder: Path, name: str, width: int = 96, height: int = 64, fmt: str | None = None
) -> None:
    Image.fromarray(scene(height, width)).save(folder / name, format=fmt)
    open_image(page, folder / name, f"{width} × {height} px")


def canvas_box(page) -> dict:
    return page.locator("#canvas-wrap").bounding_box()  # where the picture is, on every tab


def paint_line(page, left=0.3, right=0.6, at=0.5) -> None:
    box = canvas_box(page)
    y = box["y"] + box["height"] * at
    drag(page, (box["x"] + box["width"] * left, y), (box["x"] + box["width"] * right, y), steps=6)


def inpaint_and_wait(page) -> None:
    page.click("#inpaint")
    page.wait_for_selector('#tab-result[aria-selected="true"]', timeout=60_000)


def focused(page) -> str:
    return page.evaluate("() => document.activeElement.id")


def test_shortcuts_work_after_a_dropdown_or_any_control_was_used(page, tmp_path):
    open_scene(page, tmp_path, "photo.png")
    page.focus("#model")
    page.select_option("#model", "default")  # the bundled model offers the texture choice
    assert focused(page) == "stage"
    page.focus("#texture")
    page.select_option("#texture", "coarse")  # as with the mouse: the select had the focus
    assert page.input_value("#texture") == "coarse"
    assert focused(page) == "stage"
    paint_line(page)
    page.keyboard.press("Control+z")
    assert page.is_disabled("#undo") and page.is_disabled("#inpaint")
    size = int(page.input_value("#brush-size"))
    page.keyboard.press("]")
    assert int(page.input_value("#brush-size")) > size
    for control in ("#tool-eraser", "#zoom-fit", "#brush-size"):
        page.click(control)
        assert focused(page) == "stage", f"{control} kept the keyboard focus"
    page.keyboard.press("b")
    assert page.get_attribute("#tool-brush", "aria-pressed") == "true"


def test_the_page_names_the_chosen_model_in_each_request(page, tmp_path, flat):
    assert page.eval_on_selector_all("#model option", "options => options.map(o => o.value)") == [
        "flat",
        "default",
    ]
    open_scene(page, tmp_path, "photo.png")
    calls = flat.calls
    paint_line(page)
    inpaint_and_wait(page)
    assert flat.calls == calls + 1  # the first model is the page's default
    with page.expect_download() as result:
        page.click("#download-result")
    assert (np.asarray(Image.open(result.value.path())) == FLAT_LEVEL).all(axis=2).any()
    page.select_option("#model", "default")
    assert page.inner_text("#model-info").startswith("model: default")
    paint_line(page, at=0.7)
    inpaint_and_wait(page)
    assert flat.calls == calls + 1  # the bundled DFNet answered this one


def test_the_comparison_handle_drags_without_painting_and_backslash_shows_the_original(page, tmp_path):
    open_scene(page, tmp_path, "photo.png")
    paint_line(page)
    inpaint_and_wait(page)
    handle = page.locator("#compare-handle").bounding_box()
    box = canvas_box(page)
    assert handle["x"] + handle["width"] / 2 == pytest.approx(box["x"] + box["width"] / 2, abs=2)
    drag(
        page,
        (handle["x"] + handle["width"] / 2, box["y"] + box["height"] * 0.8),
        (box["x"] + box["width"] / 4, box["y"] + box["height"] * 0.8),
    )
    assert page.get_attribute("#tab-result", "aria-selected") == "true"  # still comparing, nothing painted
    assert int(page.input_value("#compare")) == pytest.approx(25, abs=2)
    page.keyboard.press("Control+z")  # the only step is the inpaint: undoing it empties the result tabs
    assert page.is_disabled("#tab-result")
    page.keyboard.press("Control+Shift+Z")
    original = page.get_attribute("#base-image", "src")
    page.keyboard.down("\\")
    assert page.is_visible("#original-image") and page.get_attribute("#original-image", "src") != original
    page.keyboard.up("\\")
    assert page.is_hidden("#original-image")
    button = page.locator("#show-original").bounding_box()
    page.mouse.move(button["x"] + 5, button["y"] + 5)
    page.mouse.down()
    assert page.is_visible("#original-image")
    page.mouse.up()
    assert page.is_hidden("#original-image")

    # The result is shown whole under the clipped "before" layer, after any number of rounds.
    for _ in range(2):
        assert (
            page.evaluate("() => getComputedStyle(document.getElementById('base-image')).clipPath") == "none"
        )
        assert "inset" in page.evaluate(
            "() => getComputedStyle(document.getElementById('before-image')).clipPath"
        )
        paint_line(page, at=0.3)
        inpaint_and_wait(page)


@pytest.mark.parametrize("width", [1280, 1366])
def test_the_picture_area_never_changes_size_and_the_toolbar_is_one_row(browser, server_url, tmp_path, width):
    context, page, errors = new_page(browser, server_url, width=width, height=800)
    toolbar = page.locator(".toolbar").bounding_box()
    inpaint = page.locator("#inpaint").bounding_box()
    assert toolbar["height"] < 50, f"the toolbar takes {toolbar['height']} px at {width} wide"
    assert inpaint["x"] + inpaint["width"] <= width and inpaint["y"] + inpaint["height"] <= toolbar["height"]
    open_scene(page, tmp_path, "photo.png", 400, 300)
    stage = page.locator("#stage").bounding_box()
    zoom = page.inner_text("#zoom-value")
    paint_line(page, 0.05, 0.95, 0.5)
    page.fill("#brush-size", "300")
    page.dispatch_event("#brush-size", "input")
    for at in (0.2, 0.5, 0.8):  # more than half the picture: the warning shows
        paint_line(page, 0.05, 0.95, at)
    page.wait_for_selector("#warning:not([hidden])")
    held: list = []
    page.route("**/api/inpaint", lambda route: held.append(route))
    page.click("#inpaint")
    page.wait_for_function("() => parseFloat(document.getElementById('elapsed').textContent) >= 1")
    assert page.locator("#stage").bounding_box() == stage and page.inner_text("#zoom-value") == zoom
    page.click("#cancel")
    page.unroute("**/api/inpaint")
    page.route(
        "**/api/inpaint",
        lambda route: route.fulfill(status=503, content_type="application/json", body='{"detail": "busy"}'),
    )
    page.click("#inpaint")
    page.wait_for_selector("#error:not([hidden])")
    assert page.locator("#stage").bounding_box() == stage and page.inner_text("#zoom-value") == zoom
    context.close()
    assert not errors


def test_tiff_pictures_open_and_inpaint(page, tmp_path):
    open_scene(page, tmp_path, "scan.tif", 80, 60, fmt="TIFF")
    assert page.is_hidden("#error")
    assert page.evaluate("() => document.getElementById('base-image').naturalWidth") == 80
    paint_line(page)
    inpaint_and_wait(page)
    with page.expect_download() as result:
        page.click("#download-result")
    assert result.value.suggested_filename == "scan-inpainted.png"
    picture = np.asarray(Image.open(result.value.path()))
    assert picture.shape == (60, 80, 3) and (picture == FLAT_LEVEL).all(axis=2).any()


def test_opening_another_picture_asks_before_discarding_a_result_not_downloaded(page, tmp_path):
    open_scene(page, tmp_path, "first.png")
    paint_line(page)
    inpaint_and_wait(page)
    Image.fromarray(scene(40, 50)).save(tmp_path / "second.png")
    asked: list[str] = []

    def answer(dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.set_input_files("#image-input", str(tmp_path / "second.png"))
    page.wait_for_timeout(300)
    assert asked and "not been downloaded" in asked[0]
    assert "first.png" in page.inner_text("#image-info") and page.is_enabled("#tab-result")
    with page.expect_download():
        page.click("#download-result")
    page.set_input_files("#image-input", str(tmp_path / "second.png"))  # saved: no question
    page.wait_for_function("() => document.getElementById('image-info').textContent.includes('second.png')")
    assert len(asked) == 1

    # A picture pasted while DFNet works says why it is not opened.
    paint_line(page)
    page.route("**/api/inpaint", lambda route: None)
    page.click("#inpaint")
    page.wait_for_selector("#busy:not([hidden])")
    paste_png(page, png_bytes(scene(20, 30)))
    page.wait_for_function("() => document.getElementById('run-info').textContent.includes('Cancel')")
    assert "second.png" in page.inner_text("#image-info")
    page.click("#cancel")


def set_brush(page, size: int) -> None:
    page.fill("#brush-size", str(size))
    page.dispatch_event("#brush-size", "input")


def downloaded_mask(page) -> np.ndarray:
    with page.expect_download() as mask:
        page.click("#download-mask")
    return read_mask_download(mask.value)


def test_even_brush_sizes_paint_exactly_their_width_and_size_keys_step_back(page, tmp_path):
    open_scene(page, tmp_path, "grid.png", 96, 64)
    page.click("#zoom-actual")
    box = canvas_box(page)
    set_brush(page, 2)
    drag(page, (box["x"] + 10.3, box["y"] + 20.6), (box["x"] + 60.3, box["y"] + 20.6), steps=5)
    rows = np.flatnonzero(downloaded_mask(page).any(axis=1))
    assert len(rows) == 2, f"a 2 px brush painted rows {rows}"
    page.click("#clear")
    set_brush(page, 20)
    page.mouse.click(box["x"] + 48.2, box["y"] + 32.7)
    hole = downloaded_mask(page)
    assert np.flatnonzero(hole.any(axis=0)).size == 20 and np.flatnonzero(hole.any(axis=1)).size == 20
    for start in (33, 20, 7):
        set_brush(page, start)
        page.keyboard.press("]")
        bigger = int(page.input_value("#brush-size"))
        page.keyboard.press("[")
        assert bigger > start and int(page.input_value("#brush-size")) == start


def test_eraser_on_an_empty_mask_is_no_step_and_mask_download_after_inpaint_is_the_mask_used(page, tmp_path):
    open_scene(page, tmp_path, "photo.png")
    page.click("#tool-eraser")
    paint_line(page)
    assert page.is_disabled("#undo")
    page.click("#tool-brush")
    paint_line(page)
    painted = downloaded_mask(page)
    inpaint_and_wait(page)
    assert np.array_equal(downloaded_mask(page), painted)


def test_alpha_and_raw_download_and_small_holes_are_not_zero_percent(page, tmp_path):
    open_scene(page, tmp_path, "photo.png")
    paint_line(page)
    inpaint_and_wait(page)
    for tab, name in (("alpha", "photo-alpha.png"), ("raw", "photo-raw.png")):
        page.click(f"#tab-{tab}")
        page.wait_for_selector(f'#tab-{tab}[aria-selected="true"]')
        with page.expect_download() as download:
            page.click("#download-result")
        assert download.value.suggested_filename == name
        data = np.asarray(Image.open(download.value.path()))
        assert data.ndim == 2 if tab == "alpha" else (data == FLAT_LEVEL).all()

    width, height = 1200, 1000
    Image.fromarray(np.full((height, width, 3), 128, np.uint8)).save(tmp_path / "big.png")
    page.click("#tab-result")
    with page.expect_download():
        page.click("#download-result")  # saved, so opening another picture asks nothing
    open_image(page, tmp_path / "big.png", f"{width} × {height} px")
    set_brush(page, 1)
    box = canvas_box(page)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    inpaint_and_wait(page)
    assert page.inner_text("#run-info").startswith("Inpainted <0.01% of the picture")


def test_shortcuts_panel_and_complete_hint(page):
    hint = page.inner_text(".keys")
    for key in ("0", "1", "Esc", "?", "\\"):
        assert key in hint, f"the hint omits {key}"
    page.keyboard.press("?")
    panel = page.locator("#shortcuts")
    assert panel.is_visible()
    for key in ("Ctrl+Z", "Ctrl+Shift+Z", "Ctrl+Enter", "[", "]", "Space", "\\", "Esc", "0", "1"):
        assert key in panel.inner_text()
    page.keyboard.press("Escape")
    assert panel.is_hidden()


def test_the_phone_toolbar_shows_that_it_scrolls(browser, server_url):
    context, page, errors = new_page(browser, server_url, width=390, height=844, has_touch=True)
    toolbar = page.locator(".toolbar")
    assert toolbar.get_attribute("data-more") == "right"
    assert "gradient" in page.evaluate("() => getComputedStyle(document.querySelector('.toolbar')).maskImage")
    page.evaluate("() => { const t = document.querySelector('.toolbar'); t.scrollLeft = t.scrollWidth; }")
    page.wait_for_function("() => document.querySelector('.toolbar').dataset.more === 'left'")
    context.close()
    assert not errors


def test_a_waiting_page_stays_still(page, tmp_path):
    """While the server works the page changes once a second (no animation, no fast timer): redrawing ten
    times a second took a sixth of a CPU core from a server on the same machine."""
    open_scene(page, tmp_path, "photo.png")
    paint_line(page)
    page.route("**/api/inpaint", lambda route: None)
    page.click("#inpaint")
    page.wait_for_selector("#busy:not([hidden])")
    changes = page.evaluate(
        """() => new Promise(resolve => {
            let changes = 0;
            const observer = new MutationObserver(records => { changes += records.length; });
            observer.observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
            setTimeout(() => { observer.disconnect(); resolve(changes); }, 2500);
        })"""
    )
    assert page.evaluate("() => document.getAnimations().length") == 0
    assert changes <= 3 * 2, f"{changes} changes in 2.5 s"  # the seconds and the busy mark's turn
    page.click("#cancel")
