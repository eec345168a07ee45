"""Fetching files over the network: HTTP(S) with resume, Google Drive through ``gdown``, and the checks
that keep a bad download out of the cache.

A download goes to a ``.part`` file beside its destination. An interrupted transfer is resumed with an
HTTP ``Range`` request (a few times within one call, and again on the next call, which finds the
``.part`` file). Only a file that passed its checks is renamed onto the destination; a file that fails
them (an HTML page instead of the file, a truncated or damaged file, a wrong checksum) is deleted and
reported in one line. ``download_lock`` makes two processes that fetch the same file at once do one
download: the second waits and then finds the file in place.
"""

from __future__ import annotations

import errno
import http.client
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse
from urllib.request import Request, urlopen

from dfnet.files import file_digest, file_sha256

CHUNK = 1 << 20
RETRIES = 3
TIMEOUT_S = 60.0
USER_AGENT = "dfnet-downloader/1"
HTML_SIGNS = (b"<!doctype html", b"<html", b"<head", b"<?xml", b"<!--")


class DownloadError(ValueError):
    """A download that failed or was refused (one-line, user-facing message)."""


class OfflineError(DownloadError):
    """The source could not be reached at all (no network, DNS failure, connection refused)."""


def file_md5(path: str | os.PathLike) -> str:
    """Hex MD5 of a file (the checksum dataset authors publish)."""
    return file_digest(path, "md5")


def looks_like_html(path: str | os.PathLike) -> bool:
    """True when a file starts like a web page (a sign-in, quota or error page served instead of the file)."""
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith(HTML_SIGNS)


def check_not_html(path: Path, url: str) -> None:
    """Refuse a web page that came instead of the file (Google Drive's quota page, a login or error page)."""
    if looks_like_html(path):
        raise DownloadError(
            f"{url} sent a web page instead of the file (a quota, sign-in or error page); "
            "try again later or download it by hand"
        )


def storage_error(err: OSError, folder: Path) -> DownloadError:
    """A one-line error for a cache folder that cannot be written (read-only, no permission, full)."""
    if err.errno == errno.ENOSPC:
        return DownloadError(
            f"no space left in {folder}: free some space or set DFNET_HOME to another folder"
        )
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DownloadError(f"{folder} is not writable: set DFNET_HOME to a writable folder")
    return DownloadError(f"cannot write in {folder} ({err.strerror or err})")


@contextmanager
def writable_folder(folder: Path) -> Iterator[None]:
    """Create ``folder`` and turn file-system failures inside the block into one-line DownloadErrors."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        yield
    except DownloadError:
        raise
    except OSError as err:
        if isinstance(err, (ConnectionError, TimeoutError)):
            raise
        raise storage_error(err, folder) from None


@contextmanager
def download_lock(destination: Path, timeout_s: float = 3600.0) -> Iterator[None]:
    """Hold an inter-process lock for ``destination`` (a ``.lock`` file beside it) for the block."""
    from filelock import FileLock, Timeout

    lock_path = destination.with_name(f".{destination.name}.lock")
    with writable_folder(destination.parent):
        lock = FileLock(str(lock_path), timeout=timeout_s)
        try:
            lock.acquire()
        except Timeout:
            raise DownloadError(
                f"{destination}: another download of this file did not finish in time"
            ) from None
    try:
        yield
    finally:
        lock.release()


def partial_path(destination: Path) -> Path:
    """Where the download of ``destination`` is written until it is verified."""
    return destination.with_name(destination.name + ".part")


def _progress(total: int | None, initial: int, name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        desc=name,
        file=sys.stderr,
        disable=not enabled,
    )


def _open(url: str, start: int):
    headers = {"User-Agent": USER_AGENT}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urlopen(Request(url, headers=headers), timeout=TIMEOUT_S)  # noqa: S310 - http(s) checked by caller


def _resume_offset(response, start: int) -> int:
    """Where the body of ``response`` starts in the file: ``start`` for 206 Partial Content, else 0."""
    if start and response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        if content_range.startswith(f"bytes {start}-"):
            return start
    return 0


def _transfer(url: str, part: Path, progress: bool) -> bool:
    """One request, appended to ``part`` from its current size; True when the body arrived whole."""
    start = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, start)
    except HTTPError as err:
        if err.code == 416 and start:  # the partial file is not a prefix the server knows: start over
            part.unlink()
            return False
        raise
    with response:
        offset = _resume_offset(response, start)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if offset else "wb") as f, _progress(total, offset, part.stem, progress) as bar:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                f.write(chunk)
                bar.update(len(chunk))
        return total is None or part.stat().st_size >= total


def fetch_http(url: str, part: Path, progress: bool = True, retries: int = RETRIES) -> Path:
    """Download ``url`` into ``part``, resuming from what is already there; returns ``part``."""
    if urlparse(url).scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http and https URLs are downloaded")
    host = urlparse(url).hostname
    for attempt in range(retries + 1):
        try:
            if _transfer(url, part, progress):
                return part
        except HTTPError as err:
            raise DownloadError(f"{url}: the server answered {err.code} {err.reason}") from None
        except URLError as err:
            raise OfflineError(
                f"cannot reach {host} ({getattr(err.reason, 'strerror', None) or err.reason})"
            ) from None
        except (http.client.HTTPException, ConnectionError, TimeoutError) as err:
            if attempt == retries:
                raise DownloadError(
                    f"{url}: the connection broke off {retries + 1} times ({type(err).__name__}); "
                    "run the same command again to resume"
                ) from None
    raise DownloadError(
        f"{url}: the download stayed incomplete after {retries + 1} tries; run it again to resume"
    )


def fetch_gdrive(url: str, part: Path, progress: bool = True) -> Path:
    """Download a Google Drive file through ``gdown`` into ``part`` (resumable through gdown's own ``.part``).

    ``url`` is gdown's URL argument: ``https://drive.google.com/uc?id=FILE_ID`` for Drive, or any other
    URL gdown can fetch (a mirror, or a local server in tests).
    """
    import gdown
    import requests

    try:
        done = gdown.download(url=url, output=str(part), quiet=not progress, resume=True, use_cookies=False)
    except requests.exceptions.ConnectionError as err:
        if part.exists() or any(part.parent.glob(part.name + "*.part")):
            raise DownloadError(
                f"{url}: the connection broke off; run the same command again to resume"
            ) from None
        raise OfflineError(f"cannot reach {urlparse(url).hostname} ({type(err).__name__})") from None
    except requests.exceptions.RequestException as err:
        raise DownloadError(f"{url}: download failed ({type(err).__name__})") from None
    except gdown.exceptions.FileURLRetrievalError:
        raise DownloadError(
            f"{url}: Google Drive did not hand out the file (quota exceeded or access denied); try again later"
        ) from None
    if done is None or not part.is_file():
        raise DownloadError(
            f"{url}: gdown did not produce the file (several partial downloads in {part.parent}?)"
        )
    return part


def drive_file_url(folder_url: str, file_name: str) -> str:
    """The gdown URL of the file named ``file_name`` in a public Google Drive folder (listed through gdown)."""
    import gdown
    import requests

    try:
        files = gdown.download_folder(url=folder_url, skip_download=True, quiet=True) or []
    except requests.exceptions.ConnectionError:
        raise OfflineError(f"cannot reach {urlparse(folder_url).hostname}") from None
    except Exception as err:  # gdown raises several kinds when Drive's page changes or refuses access
        raise DownloadError(
            f"{folder_url}: cannot list the Google Drive folder ({type(err).__name__})"
        ) from None
    for entry in files:
        if Path(entry.path).name == file_name:
            return f"https://drive.google.com/uc?id={entry.id}"
    raise DownloadError(f"{folder_url}: no file named {file_name} in the Google Drive folder")


def install_verified(part: Path, destination: Path, url: str, verify: Callable[[Path], None]) -> None:
    """Run ``verify(part)`` (raises on a bad file) and rename ``part`` onto ``destination``; delete it on failure."""
    try:
        check_not_html(part, url)
        verify(part)
    except Exception:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, destination)


def check_sha256_prefix(path: Path, prefix: str, url: str) -> str:
    """Raise DownloadError unless the file's SHA-256 starts with ``prefix``; returns the full digest."""
    digest = file_sha256(path)
    if not digest.startswith(prefix):
        raise DownloadError(
            f"{url}: checksum mismatch (SHA-256 {digest[:8]}..., expected {prefix}...); file refused"
        )
    return digest


__all__ = [
    "DownloadError",
    "OfflineError",
    "check_sha256_prefix",
    "download_lock",
    "drive_file_url",
    "fetch_gdrive",
    "fetch_http",
    "file_md5",
    "file_sha256",
    "install_verified",
    "looks_like_html",
    "partial_path",
]
