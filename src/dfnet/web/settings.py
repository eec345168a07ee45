"""The server's limits (``ServerSettings``): every one is a ``dfnet serve`` option."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MB = 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """Limits that keep the server's memory bounded; every one is a ``dfnet serve`` option."""

    max_upload_bytes: int = 32 * MB  # whole request body: image + mask + form overhead
    max_pixels: int = 25_000_000  # about 5000 x 5000; decoded size, checked before decoding
    queue_size: int = 4  # complete uploads admitted at once (running + waiting); more get 503
    worker_threads: int = 1  # threads running inference, per loaded model; the rest wait
    body_timeout_s: float = 30.0  # a request body must arrive within this time (408 after)
    requests_per_client: int = 4  # inpaint requests one client address may have open (429 above)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            smallest = 1 if isinstance(value, int) else 0.001
            if not value >= smallest:  # also refuses NaN
                raise ValueError(f"{name} must be at least {smallest}, got {value}")

    @property
    def upload_budget_bytes(self) -> int:
        """Bytes that bodies still arriving may hold between them."""
        return self.queue_size * self.max_upload_bytes


def format_bytes(size: int) -> str:
    """1536 -> '1.5 KB', 33554432 -> '32 MB' (three significant digits)."""
    return f"{size / MB:.3g} MB" if size >= MB else f"{size / 1024:.3g} KB"
