"""What the browser tests share: Debian's Chromium under Playwright, a synthetic scene, mouse drags and
reading the page's downloads. Importing this module skips the importing test module when Chromium or
Playwright is missing."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

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


def launch_chromium():
    """Headless Chromium for a test module: ``browser = pytest.fixture(scope="module")(launch_chromium)``."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


def open_image(page, path: Path, expected_info: str) -> None:
    page.set_input_files("#image-input", str(path))
    page.wait_for_function(
        "text => document.getElementById('image-info').textContent.includes(text)", arg=expected_info
    )


def read_mask_download(download) -> np.ndarray:
    """The page's mask PNG (canvas PNGs are RGBA, opaque) as a hole mask."""
    return np.asarray(Image.open(download.path()).convert("L")) > 127


def drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 25) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def paste_png(page, data: bytes) -> None:
    """Paste PNG bytes into the page the way Ctrl+V does with an image on the clipboard."""
    page.evaluate(
        """b64 => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], 'image.png', {type: 'image/png'}));
            document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: transfer, bubbles: true}));
        }""",
        base64.b64encode(data).decode("ascii"),
    )
