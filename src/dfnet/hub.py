"""Models on the Hugging Face Hub: ``hf://OWNER/REPO[/FILE][@REVISION]`` through ``huggingface_hub``
(its cache, ``HF_HOME``, ``HF_HUB_OFFLINE``), and the model card a user pushes with ``huggingface-cli upload``.

Only safetensors files that carry this project's metadata (``format: dfnet`` and the config) are
loaded; a pickle (``.bin``, ``.pth``, ``.ckpt``) or another project's file is refused in one line.
As for registry names, nothing is fetched unless ``download=True`` (``--download``); otherwise the
file must already be in the Hub cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dfnet.checkpoint import FORMAT_NAME, CheckpointError

DEFAULT_FILE = "model.safetensors"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


@dataclass(frozen=True)
class HubReference:
    """A parsed ``hf://`` reference."""

    repo_id: str
    filename: str = DEFAULT_FILE
    revision: str | None = None

    def __str__(self) -> str:
        revision = f"@{self.revision}" if self.revision else ""
        return f"hf://{self.repo_id}/{self.filename}{revision}"


def parse_reference(text: str) -> HubReference:
    """Parse ``hf://OWNER/REPO[/FILE][@REVISION]`` (FILE defaults to model.safetensors)."""
    body = text.removeprefix("hf://")
    body, _, revision = body.partition("@")
    parts = [part for part in body.split("/") if part]
    if len(parts) < 2:
        raise ValueError(f"{text}: expected hf://OWNER/REPO[/FILE][@REVISION]")
    return HubReference("/".join(parts[:2]), "/".join(parts[2:]) or DEFAULT_FILE, revision or None)


def _fetch(ref: HubReference, download: bool) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(
            hf_hub_download(ref.repo_id, ref.filename, revision=ref.revision, local_files_only=not download)
        )
    except RevisionNotFoundError:
        raise CheckpointError(f"{ref}: revision {ref.revision!r} not found in {ref.repo_id}") from None
    except LocalEntryNotFoundError:
        revision = f" at revision {ref.revision!r}" if ref.revision else ""
        if download:
            from huggingface_hub import constants

            reason = (
                "HF_HUB_OFFLINE is set"
                if constants.HF_HUB_OFFLINE
                else "the Hub cannot be reached (offline?)"
            )
            raise CheckpointError(f"{ref}: not in the Hugging Face cache{revision} and {reason}") from None
        raise CheckpointError(
            f"{ref}: not in the Hugging Face cache{revision}: add --download (download=True) to fetch it"
        ) from None
    except EntryNotFoundError:
        raise CheckpointError(f"{ref}: no file {ref.filename} in {ref.repo_id}") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{ref}: no repository {ref.repo_id} on the Hub (or it is private)") from None
    except HFValidationError as err:
        raise CheckpointError(f"{ref}: {str(err).splitlines()[0]}") from None


def check_dfnet_file(path: Path, source: str) -> None:
    """Refuse anything but a safetensors file with this project's metadata, before it is used."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        raise CheckpointError(
            f"{source}: not a safetensors file (pickles are never loaded from the Hub)"
        ) from None
    if meta.get("format") != FORMAT_NAME or "config" not in meta:
        raise CheckpointError(
            f"{source}: not a DFNet weights file (no 'format: {FORMAT_NAME}' config metadata)"
        )


def resolve_hub(text: str, download: bool = False) -> tuple[str, Path]:
    """(display name, local file) for an ``hf://`` reference; the file is checked before it is returned."""
    ref = parse_reference(text)
    if ref.filename.lower().endswith(PICKLE_SUFFIXES):
        raise CheckpointError(
            f"{ref}: pickle files are refused; publish a .safetensors (dfnet models hub-card)"
        )
    path = _fetch(ref, download)
    check_dfnet_file(path, str(ref))
    return ref.repo_id, path


__all__ = ["HubReference", "check_dfnet_file", "parse_reference", "resolve_hub"]
