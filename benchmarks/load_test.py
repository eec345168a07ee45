"""Loopback load test of ``dfnet serve``: many concurrent clients, mixed valid and invalid requests.

Starts ``dfnet serve`` as a child process on 127.0.0.1 with a tiny random DFNet, then sends
``--requests`` requests from ``--clients`` concurrent asyncio + httpx clients while ``--slow-clients``
more connections upload at ``--slow-rate`` bytes per second (each is answered 408 when the server's
``--body-timeout`` runs out, and starts again until the run ends). Of the requests, about half are valid
inpainting requests (PNG, EXIF-rotated JPEG, JSON with details, a 7x5 image) and half are each kind
of bad input (empty, not an image, truncated, decompression bomb, too many pixels, body over the
byte limit, size mismatch, no hole, unknown strategy, not multipart, missing mask, a text part).

Checks (exit status 1 and a list of failures otherwise):

- every valid request ends in 200 with a correct result (size, known pixels bit-identical); a 503 or
  429 (the documented back-pressure: the queue is full, or the client has too many requests open,
  see ``Retry-After``) is counted and retried with exponential backoff, for invalid requests too;
- every slow upload ends in 408 (or 429 when its address has too many open); none holds a queue slot;
- every invalid request ends in its documented 4xx, never a 5xx;
- no request fails at the client (connection errors, timeouts) and the run ends within ``--time-limit``;
- the server's peak resident memory grows by at most ``--max-rss-growth-mb`` over its warm baseline;
- ``/api/health`` answers afterwards with nothing in flight, and the server log holds no traceback.

The model is a 3-layer, width-1/8 DFNet (sides multiples of 8) so that the test measures the server,
not the network; ``--layers 8`` serves the full-depth architecture. Prints a JSON summary and writes
it to ``--summary``.

Every client has its own loopback source address (127.0.0.N, Linux) so that the per-client limit
sees 100 users rather than one; where such addresses cannot be bound, all use 127.0.0.1.

    python benchmarks/load_test.py                                   # 100 clients, 1,000 requests
    python benchmarks/load_test.py --clients 50 --slow-clients 50 --requests 500   # half of them slow
    python benchmarks/load_test.py --clients 20 --requests 100       # the reduced run of the test suite
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import io
import json
import os
import platform
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers import encode, png_declaring  # noqa: E402  (tests/helpers.py)

from dfnet.files import atomic_write_text  # noqa: E402

DEFAULT_SUMMARY = Path(__file__).resolve().parent / "results" / "load_test.json"
BACKOFF_START, BACKOFF_CAP = 0.05, 1.0  # seconds; doubled after every 503 or 429, with jitter
BACK_PRESSURE = (503, 429)
SLOW_BODY_BYTES = 100_000  # what a slow upload declares; it never gets near sending it all


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------
def photo(height: int, width: int, seed: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(seed).integers(0, 40, (height, width, 3))
    return np.clip(np.stack([x * 3, y * 4, (x + y) * 2], axis=2) + noise, 0, 255).astype(np.uint8)


def hole_png(height: int, width: int, empty: bool = False) -> tuple[bytes, np.ndarray]:
    hole = np.zeros((height, width), bool)
    if not empty:
        hole[height // 4 : height // 2 + 1, width // 4 : width // 2 + 1] = True
    return encode(hole.astype(np.uint8) * 255, "PNG"), hole


@dataclass
class RequestKind:
    """One kind of request: how to send it, the status it must end with and, for 200s, a result check."""

    name: str
    expected: int
    weight: float
    request: dict[str, Any]  # keyword arguments of httpx.AsyncClient.request (method and url excluded)
    check: Callable[[httpx.Response], str | None] | None = None

    @property
    def valid(self) -> bool:
        return self.expected == 200


def form(
    image: bytes, mask: bytes, image_type: str = "image/png", mask_type: str = "image/png", **fields: str
) -> dict:
    return {
        "files": {"image": ("image", image, image_type), "mask": ("mask.png", mask, mask_type)},
        "data": fields,
    }


def result_check(
    expected_rgb: np.ndarray, hole: np.ndarray, as_json: bool = False
) -> Callable[[httpx.Response], str | None]:
    """A check that the answer is an image of the input's size whose known pixels equal the input's."""

    def check(response: httpx.Response) -> str | None:
        if as_json:
            body = response.json()
            missing = {"result", "alpha", "raw"} - set(body)
            if missing:
                return f"JSON answer lacks {sorted(missing)}"
            data = base64.b64decode(body["result"])
        else:
            data = response.content
        result = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        if result.shape != expected_rgb.shape:
            return f"result is {result.shape}, expected {expected_rgb.shape}"
        if not np.array_equal(result[~hole], expected_rgb[~hole]):
            return "known pixels changed"
        return None

    return check


def build_kinds(max_upload_bytes: int) -> list[RequestKind]:
    """Every request kind of the mix; valid kinds carry half of the total weight."""
    from dfnet.imageio import load_image

    rgb = photo(48, 64, 0)
    mask, hole = hole_png(48, 64)
    png = encode(rgb, "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated: 48 wide, 64 high
    rotated = encode(photo(48, 64, 1), "JPEG", quality=90, exif=exif.tobytes())
    rotated_mask, rotated_hole = hole_png(64, 48)
    tiny = photo(5, 7, 2)
    tiny_mask, tiny_hole = hole_png(5, 7)
    rgba = np.dstack([photo(48, 64, 3), np.full((48, 64), 200, np.uint8)])
    empty_mask, _ = hole_png(48, 64, empty=True)
    other_mask, _ = hole_png(40, 64)
    noise = np.random.default_rng(4).integers(
        0, 256, (max_upload_bytes // 3 // 400 + 8, 400, 3), dtype=np.uint8
    )
    oversize = encode(noise, "PNG")  # incompressible: larger than the byte limit
    valid = [
        RequestKind("valid_png", 200, 0, form(png, mask), result_check(rgb, hole)),
        RequestKind("valid_exif_rotated_jpeg", 200, 0, form(rotated, rotated_mask, "image/jpeg"),
                    result_check(load_image(rotated).rgb, rotated_hole)),
        RequestKind("valid_rgba_json_details", 200, 0, form(encode(rgba, "PNG"), mask, **{"return": "json", "alpha": "true", "raw": "true"}),
                    result_check(rgba[:, :, :3], hole, as_json=True)),
        RequestKind("valid_7x5", 200, 0, form(encode(tiny, "PNG"), tiny_mask), result_check(tiny, tiny_hole)),
    ]  # fmt: skip
    invalid = [
        RequestKind("zero_byte_image", 400, 0, form(b"", mask)),
        RequestKind("not_an_image", 415, 0, form(b"%PDF-1.4 a document, not a picture", mask)),
        RequestKind("truncated_png", 400, 0, form(png[: len(png) // 2], mask)),
        RequestKind("decompression_bomb", 413, 0, form(png_declaring(200_000, 200_000), mask)),
        RequestKind("too_many_pixels", 413, 0, form(png_declaring(6000, 6000), mask)),
        RequestKind("body_over_byte_limit", 413, 0, form(oversize, mask)),
        RequestKind("mask_size_mismatch", 400, 0, form(png, other_mask)),
        RequestKind("mask_without_hole", 400, 0, form(png, empty_mask)),
        RequestKind("unknown_strategy", 422, 0, form(png, mask, strategy="stretch")),
        RequestKind("not_multipart", 415, 0, {"content": b'{"image": "..."}', "headers": {"content-type": "application/json"}}),
        RequestKind("missing_mask", 422, 0, {"files": {"image": ("image", png, "image/png")}}),
        RequestKind("mask_part_is_text", 415, 0, form(png, b"white = hole", mask_type="text/plain")),
    ]  # fmt: skip
    if len(oversize) <= max_upload_bytes:
        raise RuntimeError("the oversize body is not over the limit")
    for kind in valid:
        kind.weight = 0.5 / len(valid)
    for kind in invalid:
        kind.weight = 0.5 / len(invalid)
    return valid + invalid


def request_plan(kinds: list[RequestKind], count: int, seed: int) -> list[RequestKind]:
    """``count`` requests: every kind at least once, the rest drawn by weight, in a shuffled order."""
    rng = random.Random(seed)
    plan = list(kinds[:count]) + rng.choices(
        kinds, weights=[k.weight for k in kinds], k=max(0, count - len(kinds))
    )
    rng.shuffle(plan)
    return plan


# ---------------------------------------------------------------------------------------------
# The server and its memory
# ---------------------------------------------------------------------------------------------
def write_model(folder: Path, layers: int, width: float) -> Path:
    """A random DFNet with ``layers`` encoder layers (fusion in every one) as safetensors."""
    import torch

    from dfnet.checkpoint import save_model
    from dfnet.model import DFNet, DFNetConfig

    torch.manual_seed(0)
    kernels = DFNetConfig().encoder_kernels[:layers]
    config = DFNetConfig(encoder_kernels=kernels, fusion_layers=tuple(range(min(layers, 6))), width=width)
    path = folder / "load_test_model.safetensors"
    save_model(DFNet(config).eval(), path, metadata={"note": "untrained, load test"})
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str | Path, port: int, args: argparse.Namespace, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "dfnet.cli", "serve", "--model", str(model), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--queue-size", str(args.queue_size),
               "--workers", str(args.workers), "--max-upload-mb", str(args.max_upload_mb), "--log-level", "warning",
               "--body-timeout", str(args.body_timeout)]  # fmt: skip
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS=str(args.threads))
    with open(log_path, "w") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_until_healthy(base: str, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"dfnet serve exited with status {server.returncode} before answering")
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"dfnet serve did not answer /api/health within {timeout:.0f} s")


class RssMonitor:
    """Samples a process's resident memory every ``interval`` seconds in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        return self.process.memory_info().rss

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.rss())
                self.samples += 1
            except psutil.Error:
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> RssMonitor:
        self.peak = self.rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------------------------
# The clients
# ---------------------------------------------------------------------------------------------
@dataclass
class Outcome:
    """How one planned request ended."""

    kind: str
    expected: int
    status: int | None = None
    attempts: int = 0
    busy: int = 0  # 503 and 429 answers before the final one
    seconds: float = 0.0
    error: str | None = None  # client-side failure (connection, timeout) or a failed result check
    statuses: list[int] = field(default_factory=list)


async def send(client: httpx.AsyncClient, url: str, kind: RequestKind, deadline: float) -> Outcome:
    """Send one request, retrying 503s with jittered exponential backoff until ``deadline``."""
    outcome = Outcome(kind.name, kind.expected)
    start = time.monotonic()
    delay = BACKOFF_START
    while True:
        outcome.attempts += 1
        try:
            response = await client.post(url, **kind.request)
        except httpx.HTTPError as err:
            outcome.error = f"{type(err).__name__}: {err}"
            break
        outcome.statuses.append(response.status_code)
        if response.status_code in BACK_PRESSURE and time.monotonic() + delay < deadline:
            outcome.busy += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(BACKOFF_CAP, delay * 2)
            continue
        outcome.status = response.status_code
        if response.status_code == 200 and kind.check is not None:
            outcome.error = kind.check(response)
        elif response.status_code >= 400:
            detail = (
                response.json().get("detail") if "json" in response.headers.get("content-type", "") else None
            )
            if not detail:
                outcome.error = "error answer without a detail message"
        break
    outcome.seconds = time.monotonic() - start
    return outcome


def source_address(group: int, index: int) -> str:
    """Loopback source address ``127.0.group.index+1`` where it can be bound, else 127.0.0.1."""
    address = f"127.0.{group}.{index % 250 + 1}"
    try:
        with socket.socket() as probe:
            probe.bind((address, 0))
    except OSError:
        return "127.0.0.1"
    return address


async def run_clients(
    base: str, plan: list[RequestKind], clients: int, time_limit: float, stop: asyncio.Event
) -> list[Outcome]:
    """``clients`` concurrent workers, each from its own address, take the planned requests in order
    until none is left; then ``stop`` is set."""
    queue: asyncio.Queue[RequestKind] = asyncio.Queue()
    for kind in plan:
        queue.put_nowait(kind)
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + time_limit

    async def worker(index: int) -> None:
        transport = httpx.AsyncHTTPTransport(local_address=source_address(1, index))
        async with httpx.AsyncClient(timeout=60.0, transport=transport) as client:
            while not queue.empty() and time.monotonic() < deadline:
                kind = queue.get_nowait()
                outcomes.append(await send(client, f"{base}/api/inpaint", kind, deadline))

    try:
        await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(clients))), timeout=time_limit + 60)
    finally:
        stop.set()
    return outcomes


async def slow_client(port: int, source: str, rate: float, stop: asyncio.Event, answers: list[str]) -> None:
    """Upload at ``rate`` bytes per second, again and again until ``stop``; record how each upload ended."""
    head = (
        "POST /api/inpaint HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {SLOW_BODY_BYTES}\r\n\r\n"
    ).encode()
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        except OSError as err:
            answers.append(f"connect failed: {err.strerror or err}")
            await asyncio.sleep(0.5)
            continue
        reply = asyncio.ensure_future(reader.read(4096))
        try:
            writer.write(head)
            while not reply.done() and not stop.is_set():
                writer.write(b"x")
                await writer.drain()
                await asyncio.wait([reply], timeout=1.0 / rate)
        except OSError:
            pass  # the server answered and closed the connection while a byte was on its way
        if reply.done() and not reply.cancelled() and reply.exception() is None:
            data = reply.result()
            answers.append(data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.1 ") else "closed")
        else:
            reply.cancel()
            answers.append("still uploading at the end")
        writer.close()


async def run_load(
    base: str, port: int, plan: list[RequestKind], args: argparse.Namespace
) -> tuple[list[Outcome], list[str]]:
    """The valid and invalid requests of ``plan`` while ``args.slow_clients`` slow uploads go on."""
    stop = asyncio.Event()
    slow_answers: list[str] = []
    slow = [
        asyncio.ensure_future(slow_client(port, source_address(2, i), args.slow_rate, stop, slow_answers))
        for i in range(args.slow_clients)
    ]
    await asyncio.sleep(0.5 if slow else 0)  # the slow uploads are under way before the first real request
    outcomes = await run_clients(base, plan, args.clients, args.time_limit, stop)
    await asyncio.wait_for(asyncio.gather(*slow), timeout=30)
    return outcomes, slow_answers


# ---------------------------------------------------------------------------------------------
# Summary and checks
# ---------------------------------------------------------------------------------------------
def percentile_ms(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


def summarise_kinds(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    by_kind: dict[str, dict[str, Any]] = {}
    for name in sorted({o.kind for o in outcomes}):
        mine = [o for o in outcomes if o.kind == name]
        statuses: dict[str, int] = {}
        for o in mine:
            key = str(o.status) if o.status is not None else "no answer"
            statuses[key] = statuses.get(key, 0) + 1
        times = [o.seconds for o in mine]
        by_kind[name] = {
            "expected": mine[0].expected,
            "count": len(mine),
            "final_statuses": statuses,
            "busy_503_retried": sum(o.busy for o in mine),
            "p50_ms": percentile_ms(times, 50),
            "p95_ms": percentile_ms(times, 95),
            "max_ms": percentile_ms(times, 100),
        }
    return by_kind


def find_failures(
    summary: dict[str, Any], outcomes: list[Outcome], planned: int, args: argparse.Namespace
) -> list[str]:
    """Every violated check, one line each."""
    failures = []
    if len(outcomes) < planned:
        failures.append(f"only {len(outcomes)} of {planned} requests were sent within {args.time_limit} s")
    for o in outcomes:
        if o.error:
            failures.append(f"{o.kind}: {o.error}")
        elif o.status != o.expected:
            failures.append(f"{o.kind}: status {o.status} (after {o.statuses}), expected {o.expected}")
    other_5xx = [s for o in outcomes for s in o.statuses if s >= 500 and s != 503]
    if other_5xx:
        failures.append(f"{len(other_5xx)} server errors other than 503: {sorted(set(other_5xx))}")
    rss = summary["server_rss_mb"]
    if rss["growth"] > args.max_rss_growth_mb:
        failures.append(
            f"server memory grew by {rss['growth']} MB (peak {rss['peak']} MB), over {args.max_rss_growth_mb} MB"
        )
    health = summary["health_after"]
    if health.get("status") != "ok" or health.get("in_flight") != 0:
        failures.append(f"/api/health afterwards: {health}")
    unexpected_slow = {
        k: n
        for k, n in summary["slow_uploads"].items()
        if k not in ("408", "429", "still uploading at the end")
    }
    if unexpected_slow:
        failures.append(f"slow uploads ended otherwise than in 408 or 429: {unexpected_slow}")
    if summary["server_log_tracebacks"]:
        failures.append(f"the server log holds {summary['server_log_tracebacks']} tracebacks")
    return failures[:50]


def machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients sending whole requests")
    parser.add_argument("--slow-clients", type=int, default=0, help="concurrent slow uploads besides them")
    parser.add_argument("--slow-rate", type=float, default=1.0, help="bytes per second of a slow upload")
    parser.add_argument("--body-timeout", type=float, default=10.0, help="dfnet serve --body-timeout")
    parser.add_argument("--requests", type=int, default=1000, help="requests in all")
    parser.add_argument("--time-limit", type=float, default=240.0, help="seconds for all requests")
    parser.add_argument("--queue-size", type=int, default=4, help="dfnet serve --queue-size")
    parser.add_argument("--workers", type=int, default=1, help="dfnet serve --workers (inference threads)")
    parser.add_argument("--max-upload-mb", type=float, default=1.0, help="dfnet serve --max-upload-mb")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the server")
    parser.add_argument(
        "--layers", type=int, default=3, help="encoder layers of the random model (8 = full depth)"
    )
    parser.add_argument("--width", type=float, default=0.125, help="channel width of the random model")
    parser.add_argument(
        "--model", help="weights to serve instead of the random model ('default': the bundled one)"
    )
    parser.add_argument(
        "--max-rss-growth-mb", type=float, default=300.0, help="allowed peak growth over the warm baseline"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--summary", type=Path, default=DEFAULT_SUMMARY, help="where to write the JSON summary"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kinds = build_kinds(int(args.max_upload_mb * 1024 * 1024))
    plan = request_plan(kinds, args.requests, args.seed)
    with tempfile.TemporaryDirectory(prefix="dfnet-load-") as folder:
        model = args.model or write_model(Path(folder), args.layers, args.width)
        log_path = Path(folder) / "server.log"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(model, port, args, log_path)
        try:
            wait_until_healthy(base, server, timeout=120)
            warm = httpx.post(f"{base}/api/inpaint", timeout=60, **kinds[0].request)  # loads everything lazy
            assert warm.status_code == 200, warm.text
            baseline = psutil.Process(server.pid).memory_info().rss
            started = time.monotonic()
            with RssMonitor(server.pid) as monitor:
                outcomes, slow_answers = asyncio.run(run_load(base, port, plan, args))
                wall = time.monotonic() - started
                health = httpx.get(f"{base}/api/health", timeout=10).json()
                final = monitor.rss()
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(30)
        server_log = log_path.read_text(errors="replace")
    mb = 1024 * 1024
    summary = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv])
        if argv is None
        else f"load_test.main({argv})",
        "machine": machine(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "requests": len(outcomes),
        "valid_requests": sum(o.expected == 200 for o in outcomes),
        "wall_seconds": round(wall, 2),
        "requests_per_second": round(len(outcomes) / wall, 1),
        "responses_503": sum(s == 503 for o in outcomes for s in o.statuses),
        "responses_429": sum(s == 429 for o in outcomes for s in o.statuses),
        "slow_uploads": dict(sorted(Counter(slow_answers).items())),
        "wrong_final_status": sum(o.status != o.expected for o in outcomes),
        "client_errors": sum(o.error is not None for o in outcomes),
        "valid_p50_ms": percentile_ms([o.seconds for o in outcomes if o.expected == 200], 50),
        "valid_p95_ms": percentile_ms([o.seconds for o in outcomes if o.expected == 200], 95),
        "server_rss_mb": {
            "baseline": round(baseline / mb, 1),
            "peak": round(monitor.peak / mb, 1),
            "final": round(final / mb, 1),
            "growth": round((monitor.peak - baseline) / mb, 1),
            "samples": monitor.samples,
        },
        "health_after": health,
        "server_log_tracebacks": server_log.count("Traceback"),
        "by_kind": summarise_kinds(outcomes),
    }
    failures = find_failures(summary, outcomes, len(plan), args)
    summary["failures"] = failures
    summary["passed"] = not failures
    text = json.dumps(summary, indent=2)
    print(text)
    atomic_write_text(args.summary, text + "\n")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
