"""Small file-system helpers shared across the package: atomic writes and the output-path guard."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path


class WriteError(OSError):
    """A file that could not be written (disk full, read-only, no permission), named by its target path."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


class OutputConflictError(ValueError):
    """An output path that is one of the inputs, or lies inside an input folder."""


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_failure(err: BaseException) -> str | None:
    """The reason a writer failed when it is the file system's fault (else None: a genuine bug)."""
    if isinstance(err, OSError):
        return err.strerror or str(err).splitlines()[0]
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    # torch.save: "... file write failed"; safetensors: "Error while serializing: I/O error: ..."
    if any(sign in text.lower() for sign in ("write failed", "i/o error", "os error")):
        return text.split("I/O error: ")[-1][:160]
    return None


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` so readers never see half a file.

    A failure of the file system (disk full, read-only, no permission) is a ``WriteError`` naming
    ``path`` rather than the temporary file; the temporary file is removed and ``path`` is untouched.
    """
    atomic_write_group([(path, write)])


def atomic_write_group(writes: Sequence[tuple[str | os.PathLike, Callable[[str], None]]]) -> None:
    """Write several files all or none: each ``write(tmp_path)`` fills a temporary file beside its target,
    and only when every one is complete are they renamed into place (a result and its extras).

    A failure of the file system is a ``WriteError`` naming the target it hit; the temporary files and
    any target already renamed by this call are removed.
    """
    staged: list[tuple[Path, str]] = []
    placed: list[Path] = []
    target = None
    try:
        for path, write in writes:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            staged.append((target, tmp))
            write(tmp)
            os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600 files; give the usual mode
        for target, tmp in staged:
            os.replace(tmp, target)
            placed.append(target)
    except Exception as err:
        for done in placed:
            done.unlink(missing_ok=True)
        reason = _write_failure(err)
        if reason is None:
            raise
        raise WriteError(getattr(err, "errno", None) or 0, f"cannot write ({reason})", str(target)) from None
    finally:
        for _, tmp in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _bytes_writer(data: bytes) -> Callable[[str], None]:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    return write


def atomic_write_files(files: Mapping[str | os.PathLike, bytes]) -> None:
    """Write every ``{path: data}`` all or none (see :func:`atomic_write_group`)."""
    atomic_write_group([(path, _bytes_writer(data)) for path, data in files.items()])


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    atomic_write(path, _bytes_writer(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def describe_os_error(err: OSError) -> str:
    """One line for a file-system error: ``<file>: <reason>`` (never a temporary file's name)."""
    if isinstance(err, WriteError):
        return str(err)
    reason = err.strerror or (str(err).splitlines()[0] if str(err) else type(err).__name__)
    return f"{err.filename}: {reason}" if err.filename else reason


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_outputs(
    outputs: Iterable[str | os.PathLike],
    inputs: Iterable[str | os.PathLike | None],
    overwrite: bool = False,
    option: str = "--overwrite",
) -> None:
    """Refuse an output that is an input file, or is or lies inside an input folder (unless ``overwrite``).

    Every command that writes calls this once with all its outputs and inputs, so no command can
    replace the photo, mask, weights or data set it reads. Paths are compared after resolving links.
    """
    if overwrite:
        return
    sources = [Path(p).resolve() for p in inputs if p is not None and Path(p).exists()]
    for output in outputs:
        target = Path(output).resolve()
        for source in sources:
            if target == source:
                what = "folder" if source.is_dir() else "file"
                raise OutputConflictError(
                    f"{output}: the output is the input {what} {source}; it would be overwritten "
                    f"(choose another output, or pass {option} to replace it)"
                )
            if source.is_dir() and _is_within(target, source):
                raise OutputConflictError(
                    f"{output}: the output lies inside the input folder {source}; results would mix with "
                    f"the inputs (choose another output, or pass {option})"
                )


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file (``sha256``, ``md5``...), read in 1 MiB chunks so that large weights stay out of memory."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file (weights checksums)."""
    return file_digest(path, "sha256")
