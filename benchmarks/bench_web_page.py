"""Click-to-result time of the web page against the result-only API call, on a large JPEG.

Serves the bundled default model the way ``dfnet serve`` does (``engine="optimized"``, one inference
thread) on a loopback port, makes a synthetic ``--width`` x ``--height`` JPEG, then alternates:

- the API: ``POST /api/inpaint`` with the JPEG, a PNG mask with one small square hole and
  ``return=image`` (the result as a JPEG), timed from sending to the last byte received;
- the page in headless Chromium: the same JPEG opened once and the same square painted with the
  brush, timed in the page from the click on Inpaint until the result picture is decoded and shown
  (the mask is encoded, both files are uploaded and the JPEG answer decoded within that time); Undo
  then brings back the input with its mask for the next run.

Prints one JSON object with every run, the medians and their ratio, the page's overhead beyond the server's
own time (``X-DFNet-Elapsed-Ms``) with its phases (the page's performance marks), and the CPU cores Chromium
uses while the page waits for an answer. ``--baseline-static DIR`` times another version of the page (its
``index.html``, ``app.js`` and ``style.css``) interleaved with this one. Needs Debian's chromium and the
playwright package (as tests/test_web_browser.py).

    python benchmarks/bench_web_page.py                      # 4000 x 3000, 5 runs of each
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HOLE_PX = 64  # side of the square hole, in image pixels


def photo(height: int, width: int) -> np.ndarray:
    """A smooth synthetic picture with some texture (JPEG-compressible like a photo)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = 120 + 80 * np.sin(x / 97.0) * np.cos(y / 53.0)
    green = 140 + 60 * np.sin((x + y) / 41.0)
    blue = 160 + 50 * np.cos(x / 29.0 - y / 71.0)
    return np.clip(np.stack([red, green, blue], axis=2), 0, 255).astype(np.uint8)


def serve(inpainter: object, static_dir: Path | None = None, host: str = "127.0.0.1") -> tuple[str, object]:
    """The app as ``dfnet serve`` builds it (with the page in ``static_dir``, by default the package's),
    under uvicorn in a daemon thread; returns (url, server)."""
    import uvicorn

    from dfnet.web import ServerSettings, create_app

    app = create_app(inpainter, ServerSettings(), **({"static_dir": static_dir} if static_dir else {}))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://{host}:{sock.getsockname()[1]}", server


def api_seconds(url: str, jpeg: bytes, mask_png: bytes) -> tuple[float, float]:
    """(seconds for one result-only request from sending the form to the last byte of the answer,
    the server's own seconds for it)."""
    files = {"image": ("photo.jpg", jpeg, "image/jpeg"), "mask": ("mask.png", mask_png, "image/png")}
    start = time.perf_counter()
    response = httpx.post(f"{url}/api/inpaint", files=files, data={"return": "image"}, timeout=600)
    seconds = time.perf_counter() - start
    response.raise_for_status()
    assert response.headers["content-type"] == "image/jpeg"
    return seconds, float(response.headers["X-DFNet-Elapsed-Ms"]) / 1000


# One page run: the click, then the page's own performance marks (see app.js) until the result is decoded
# and shown; returns the total, the server's time and each phase, in seconds.
PAGE_RUN = """async () => {
    let serverMs = NaN;  // from the answer's header, also for a page without the marks
    const fetchOriginal = window.fetch;
    window.fetch = async (...args) => {
        const response = await fetchOriginal(...args);
        if (String(args[0]).endsWith('/api/inpaint')) serverMs = Number(response.headers.get('X-DFNet-Elapsed-Ms'));
        return response;
    };
    const start = performance.now();
    document.getElementById('inpaint').click();
    const result = () => document.getElementById('tab-result').getAttribute('aria-selected') === 'true';
    while (!result()) await new Promise(r => setTimeout(r, 5));
    await document.getElementById('base-image').decode();
    await new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)));  // the frame showing it
    const end = performance.now();
    window.fetch = fetchOriginal;
    const at = (name) => performance.getEntriesByName('dfnet:' + name)[0];
    const headers = at('headers');
    if (!headers) return {total: (end - start) / 1000, server: serverMs / 1000};
    return {
        total: (end - start) / 1000,
        server: serverMs / 1000,
        mask: (at('mask').startTime - at('click').startTime) / 1000,
        request: (headers.startTime - at('mask').startTime) / 1000,
        body: (at('body').startTime - headers.startTime) / 1000,
        push: (at('pushed').startTime - at('body').startTime) / 1000,
        view: (at('view').startTime - at('pushed').startTime) / 1000,
        show: (end - at('body').startTime) / 1000,
    };
}"""


def open_and_paint(page, path: Path, size: tuple[int, int]) -> None:
    """Open ``path`` in the page and paint the square hole in its centre at 100 % zoom."""
    width, height = size
    page.set_input_files("#image-input", str(path))
    page.wait_for_function(
        "text => document.getElementById('image-info').textContent.includes(text)",
        arg=f"{width} × {height} px",
        timeout=120_000,
    )
    page.click("#zoom-actual")  # one screen pixel per image pixel; the picture's centre stays in place
    page.fill("#brush-size", str(HOLE_PX))
    page.dispatch_event("#brush-size", "input")
    box = page.locator("#mask-canvas").bounding_box()
    page.mouse.click(box["x"] + width / 2, box["y"] + height / 2)
    page.wait_for_selector("#inpaint:not([disabled])", timeout=120_000)


def page_run(page) -> dict[str, float]:
    """Seconds from the click on Inpaint to the result shown, with the server's time and the page's phases;
    then Undo brings back the input and its mask."""
    timings = page.evaluate(PAGE_RUN)
    page.keyboard.press("Control+z")
    page.wait_for_selector("#inpaint:not([disabled])")
    return timings


def chromium_cpu_seconds() -> float:
    """User + system CPU seconds of every running Chromium process, from /proc."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or b"chromium" not in (entry / "cmdline").read_bytes():
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:  # the process has ended
            continue
    return total


def waiting_cpu(page, seconds: float = 4.0) -> float:
    """CPU cores Chromium uses while the page waits for an answer that never comes (the request held)."""
    page.route("**/api/inpaint", lambda route: None)
    page.click("#inpaint")
    time.sleep(1.0)
    start_cpu, start = chromium_cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    used = (chromium_cpu_seconds() - start_cpu) / (time.monotonic() - start)
    page.click("#cancel")
    page.unroute("**/api/inpaint")
    return used


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def cpu_model() -> str:
    """The CPU's model name, as ``lscpu`` reports it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the test picture")
    parser.add_argument(
        "--baseline-static",
        type=Path,
        help="a folder with another version of the page (index.html, app.js, style.css), timed interleaved "
        "with this one against its own server on the same model",
    )
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    buffer = io.BytesIO()
    Image.fromarray(photo(args.height, args.width)).save(buffer, format="JPEG", quality=args.quality)
    jpeg = buffer.getvalue()
    hole = np.zeros((args.height, args.width), np.uint8)
    top, left = (args.height - HOLE_PX) // 2, (args.width - HOLE_PX) // 2
    hole[top : top + HOLE_PX, left : left + HOLE_PX] = 255
    buffer = io.BytesIO()
    Image.fromarray(hole).save(buffer, format="PNG")
    mask_png = buffer.getvalue()

    from dfnet.inference import Inpainter

    inpainter = Inpainter.from_pretrained("default", device="cpu", engine="optimized")
    url, server = serve(inpainter)
    baseline_url, baseline_server = (
        serve(inpainter, args.baseline_static) if args.baseline_static else ("", None)
    )
    api_seconds(url, jpeg, mask_png)  # warm-up: first-call allocations
    api, page_runs, baseline_runs = [], [], []
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        path = Path(folder) / "photo.jpg"
        path.write_bytes(jpeg)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        pages = []
        for address in (url, baseline_url) if baseline_url else (url,):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(address)
            open_and_paint(page, path, (args.width, args.height))
            pages.append(page)
        for _ in range(args.runs):  # alternated, so that load from elsewhere hits all alike
            api.append(api_seconds(url, jpeg, mask_png))
            page_runs.append(page_run(pages[0]))
            if baseline_url:
                baseline_runs.append(page_run(pages[1]))
        cores_waiting = [waiting_cpu(page) for page in pages]  # one browser: one page at a time
        browser.close()
    for running in (server, baseline_server):
        if running is not None:
            running.should_exit = True
    overhead = [run["total"] - run["server"] for run in page_runs]
    summary = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": cpu_model(),
        "image": f"{args.width}x{args.height} JPEG q{args.quality}, {len(jpeg) / 2**20:.2f} MB",
        "hole": f"{HOLE_PX}x{HOLE_PX} square",
        "api_seconds": [round(total, 2) for total, _ in api],
        "api_server_seconds": [round(server, 2) for _, server in api],
        "page_seconds": [round(run["total"], 2) for run in page_runs],
        "page_server_seconds": [round(run["server"], 2) for run in page_runs],
        "page_overhead_seconds": [round(value, 3) for value in overhead],
        "api_median": median([total for total, _ in api]),
        "page_median": median([run["total"] for run in page_runs]),
        "api_server_median": median([server for _, server in api]),
        "page_server_median": median([run["server"] for run in page_runs]),
        "page_overhead_median": median(overhead),
        "page_phase_medians": {
            phase: median([run[phase] for run in page_runs])
            for phase in ("mask", "request", "body", "push", "view", "show")
        },
    }
    summary["ratio"] = round(summary["page_median"] / summary["api_median"], 2)
    summary["chromium_cores_while_waiting"] = round(cores_waiting[0], 3)
    if baseline_runs:
        baseline_overhead = [run["total"] - run["server"] for run in baseline_runs]
        summary["baseline_page"] = str(args.baseline_static)
        summary["baseline_page_seconds"] = [round(run["total"], 2) for run in baseline_runs]
        summary["baseline_overhead_seconds"] = [round(value, 3) for value in baseline_overhead]
        summary["baseline_overhead_median"] = median(baseline_overhead)
        summary["baseline_chromium_cores_while_waiting"] = round(cores_waiting[1], 3)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
