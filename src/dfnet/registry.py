"""Named models and the weight files the paper's protocol needs: what each is, where it comes from,
under which licence, and where it lives once downloaded.

``default`` ships inside the package. ``places2`` and ``celeba`` are the authors' released weights
(Google Drive, CC BY-NC 4.0): they are downloaded through ``gdown``, checked (weights-only load,
released key layout), converted to this project's safetensors with their config and working size, and
only the converted file is kept (the conversion is exact; ``dfnet.checkpoint.save_released`` writes the
released layout back when needed). ``vgg16`` (perceptual and style losses) and ``fid-inception`` (FID)
are the files torchvision and pytorch-fid publish, checked against the SHA-256 prefix in their names.

Licences are SPDX identifiers, each with the page that states it (``licence_url``): the authors' weights
are CC-BY-NC-4.0 as the official repository's README says under "License" (hughplay/DFNet, which links the
Drive folder); torchvision's LICENSE is BSD-3-Clause and pytorch-fid's LICENSE is Apache-2.0 (the FID
Inception weights are its port of the TensorFlow Inception of Heusel et al.'s TTUR code, also Apache-2.0).

The cache is ``$DFNET_HOME/models`` when ``DFNET_HOME`` is set, else the platform's user cache folder
(``~/.cache/dfnet/models`` on Linux). Beside each file, ``NAME.json`` records the SHA-256 of the first
verified download, checked on every later load, and the CC BY-NC models get ``NAME.LICENSE.txt``.
Nothing is fetched unless asked: ``download_model`` (``dfnet models download``), or ``download=True``.
``DFNET_MODELS_MIRROR`` points every download at ``MIRROR/<file name>`` instead (a local mirror; Drive
files still go through gdown, with the mirror URL as gdown's URL argument).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from dfnet.checkpoint import CheckpointError
from dfnet.download import (
    DownloadError,
    OfflineError,
    check_sha256_prefix,
    download_lock,
    drive_file_url,
    fetch_gdrive,
    fetch_http,
    file_sha256,
    install_verified,
    partial_path,
    writable_folder,
)

HOME_ENV = "DFNET_HOME"
ACCEPT_ENV = "DFNET_ACCEPT_LICENSE"
MIRROR_ENV = "DFNET_MODELS_MIRROR"
BUNDLED = Path(__file__).resolve().parent / "weights" / "default.safetensors"
AUTHORS_DRIVE = "https://drive.google.com/drive/folders/1lKJg__prvJTOdgmg9ZDF9II8B1C3YSkN"
AUTHORS_LICENCE_URL = "https://github.com/hughplay/DFNet#license"
CC_BY_NC = "CC-BY-NC-4.0"
CC_BY_NC_TEXT = (
    "The DFNet weights of Hong et al. are licensed under the Creative Commons Attribution-NonCommercial 4.0 "
    "International License (https://creativecommons.org/licenses/by-nc/4.0/): you may share and adapt them "
    "for non-commercial purposes only, giving appropriate credit."
)
DFNET_CITATION = """@inproceedings{DFNet2019,
  title={Deep Fusion Network for Image Completion},
  author={Xin Hong and Pengfei Xiong and Renhe Ji and Haoqiang Fan},
  booktitle={Proceedings of the 27th ACM International Conference on Multimedia},
  year={2019}
}"""


@dataclass(frozen=True)
class ModelEntry:
    """One named file: what it is, where it comes from, its licence and the file the cache keeps."""

    name: str
    kind: str  # "dfnet" (an inpainting model), "vgg16" or "fid-inception" (auxiliary weights)
    description: str
    licence: str  # an SPDX identifier
    licence_url: str  # where the publisher states the licence
    source: str  # "bundled", "https" or "gdrive"
    url: str  # the download URL (gdrive: the folder that holds ``file_name``)
    file_name: str  # the file as published
    cached_name: str  # the file as kept in the cache
    approx_mb: float
    working_size: int | None = None
    sha256_prefix: str | None = None

    @property
    def needs_acceptance(self) -> bool:
        """True for non-commercial weights, which are never fetched without an explicit acceptance."""
        return self.licence == CC_BY_NC


def _released(name: str, size: int, data: str) -> ModelEntry:
    return ModelEntry(
        name=name,
        kind="dfnet",
        description=f"the authors' DFNet trained on {data} ({size}x{size})",
        licence=CC_BY_NC,
        licence_url=AUTHORS_LICENCE_URL,
        source="gdrive",
        url=AUTHORS_DRIVE,
        file_name=f"model_{name}.pth",
        cached_name=f"{name}.safetensors",
        approx_mb=131.6,
        working_size=size,
    )


def _published(
    name: str, description: str, licence: str, licence_url: str, url: str, approx_mb: float
) -> ModelEntry:
    """An auxiliary file from its publisher's URL, checked against the SHA-256 prefix its name ends with."""
    file_name = url.rsplit("/", 1)[1]
    return ModelEntry(
        name=name,
        kind=name,
        description=description,
        licence=licence,
        licence_url=licence_url,
        source="https",
        url=url,
        file_name=file_name,
        cached_name=file_name,
        approx_mb=approx_mb,
        sha256_prefix=file_name.removesuffix(".pth").rsplit("-", 1)[1],
    )


REGISTRY: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in (
        ModelEntry(
            name="default",
            kind="dfnet",
            description="bundled small DFNet (width 0.25), trained on a CPU (docs/model-card.md)",
            licence="MIT",
            licence_url="the LICENSE file of the dfnet package",
            source="bundled",
            url="",
            file_name=BUNDLED.name,
            cached_name=BUNDLED.name,
            approx_mb=4.2,
            working_size=512,
        ),
        _released("places2", 512, "Places2"),
        _released("celeba", 256, "CelebA"),
        _published(
            "vgg16",
            "torchvision's ImageNet VGG16 (perceptual and style losses of dfnet train)",
            "BSD-3-Clause",
            "https://github.com/pytorch/vision/blob/main/LICENSE",
            "https://download.pytorch.org/models/vgg16-397923af.pth",
            553.4,
        ),
        _published(
            "fid-inception",
            "pytorch-fid's FID InceptionV3 (dfnet eval's FID)",
            "Apache-2.0",
            "https://github.com/mseitzer/pytorch-fid/blob/master/LICENSE",
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
            95.6,
        ),
    )
}


class ModelNotCachedError(CheckpointError):
    """A named model that is not in the cache and may not be downloaded implicitly."""


def cache_dir() -> Path:
    """The model cache: ``$DFNET_HOME/models``, else the platform's user cache folder for dfnet."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / "models"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("dfnet", appauthor=False)) / "models"


def get_entry(name: str) -> ModelEntry:
    """The registry entry called ``name``, or a ValueError listing the names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(REGISTRY)}") from None


def model_file(entry: ModelEntry) -> Path:
    """Where the entry's file is (bundled) or would be kept (cache)."""
    return BUNDLED if entry.source == "bundled" else cache_dir() / entry.cached_name


def _record_path(entry: ModelEntry) -> Path:
    return cache_dir() / f"{entry.name}.json"


def licence_path(entry: ModelEntry) -> Path:
    """Where the licence text and citation of a downloaded model are stored."""
    return cache_dir() / f"{entry.name}.LICENSE.txt"


def _read_record(entry: ModelEntry) -> dict:
    try:
        return json.loads(_record_path(entry).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def is_cached(entry: ModelEntry) -> bool:
    """True when the entry's file is present (bundled, or downloaded and recorded)."""
    path = model_file(entry)
    return path.is_file() and (entry.source == "bundled" or _record_path(entry).is_file())


def verified_file(entry: ModelEntry) -> Path:
    """The cached file after checking it against the SHA-256 recorded at download time."""
    path = model_file(entry)
    if entry.source == "bundled":
        return path
    recorded = _read_record(entry).get("sha256")
    if not path.is_file() or not recorded:
        raise ModelNotCachedError(missing_message(entry))
    actual = file_sha256(path)
    if actual != recorded:
        raise CheckpointError(
            f"{path}: changed since it was downloaded (SHA-256 {actual[:12]}..., recorded {recorded[:12]}...); "
            f"run dfnet models remove {entry.name} and download it again"
        )
    return path


def download_command(entry: ModelEntry) -> str:
    """The command that downloads ``entry``."""
    accept = " --accept-license" if entry.needs_acceptance else ""
    return f"dfnet models download {entry.name}{accept}"


def missing_message(entry: ModelEntry) -> str:
    """One line: the model is not downloaded, and the exact command that downloads it."""
    return (
        f"model {entry.name!r} is not downloaded: run `{download_command(entry)}` "
        "(or pass --download / download=True)"
    )


def manual_route(entry: ModelEntry) -> str:
    """How to get the file by hand when the network is not reachable."""
    if entry.kind == "dfnet":
        return (
            f"download {entry.file_name} by hand from {entry.url} and run "
            f"`dfnet convert-official {entry.file_name} {entry.cached_name}`, then pass --model {entry.cached_name}"
        )
    return f"download {entry.url} by hand and put it at {model_file(entry)}"


def licence_notice(entry: ModelEntry) -> str:
    """The licence text and the authors' citation, printed at download and stored beside the file."""
    return (
        f"{entry.name}: {CC_BY_NC_TEXT}\nLicence stated at: {entry.licence_url}\n"
        f"Source: {entry.url} ({entry.file_name})\nCite:\n{DFNET_CITATION}\n"
    )


def licence_accepted(accept_license: bool) -> bool:
    """An explicit acceptance: the argument, or ``DFNET_ACCEPT_LICENSE=1`` in the environment."""
    return accept_license or os.environ.get(ACCEPT_ENV, "").strip().lower() in ("1", "true", "yes")


def source_url(entry: ModelEntry) -> str:
    """The URL the file is fetched from: the mirror's when ``DFNET_MODELS_MIRROR`` is set."""
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        return f"{mirror.rstrip('/')}/{entry.file_name}"
    if entry.source == "gdrive":
        return drive_file_url(entry.url, entry.file_name)
    return entry.url


def _verify(entry: ModelEntry, url: str):
    """The check a downloaded file must pass before it enters the cache (checksum, a weights-only state dict).

    The SHA-256 prefix in the published file name identifies the file exactly; whether its tensors fit VGG16 or
    the FID Inception is checked again when they are loaded (:mod:`dfnet.vgg`, :mod:`dfnet.inception`).
    """

    def verify(path: Path) -> None:
        if entry.sha256_prefix:
            check_sha256_prefix(path, entry.sha256_prefix, url)
        _check_state_dict_file(path, url)

    return verify


def _check_state_dict_file(path: Path, url: str) -> None:
    """Refuse a file that is not a weights-only loadable mapping of tensors (a pickle, an HTML page...)."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same one-line message
        raise CheckpointError(f"{url}: not a weights file ({type(err).__name__})") from None
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise CheckpointError(f"{url}: not a state dict of tensors")


def _convert_released(entry: ModelEntry, part: Path, url: str) -> Path:
    """Check a downloaded released ``.pth`` (weights-only, released layout) and convert it beside the cache."""
    from dfnet.checkpoint import is_released_layout, load_model, save_model

    def verify(path: Path) -> None:
        import torch

        try:
            raw = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as err:  # truncated, damaged or unsafe: one line, whatever the unpickler raised
            line = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
            raise DownloadError(
                f"{url}: not a loadable PyTorch file, truncated or damaged ({line})"
            ) from None
        if not isinstance(raw, dict) or not is_released_layout(raw):
            raise DownloadError(f"{url}: not the released DFNet layout (en_/de_/fuse_ keys); file refused")

    checked = part.with_name(part.name + ".checked")
    install_verified(part, checked, url, verify)  # load_model below checks every key and shape before use
    converted = part.with_name(part.name + ".safetensors")
    try:
        model = load_model(checked)
        save_model(model, converted, metadata={"source": entry.file_name, "working_size": entry.working_size})
    finally:
        checked.unlink(missing_ok=True)
    return converted


def _write_record(entry: ModelEntry, path: Path, url: str, downloaded_sha256: str) -> None:
    from dfnet.files import atomic_write_text

    record = {
        "name": entry.name,
        "file": path.name,
        "sha256": file_sha256(path),
        "downloaded_sha256": downloaded_sha256,
        "url": url,
        "licence": entry.licence,
        "licence_url": entry.licence_url,
        "downloaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(_record_path(entry), json.dumps(record, indent=2) + "\n")


def _fetch(entry: ModelEntry, url: str, part: Path, progress: bool) -> None:
    if entry.source == "gdrive":
        fetch_gdrive(url, part, progress)
    else:
        fetch_http(url, part, progress)


def download_model(name: str, accept_license: bool = False, progress: bool = True) -> Path:
    """Download, verify and cache a named model (no-op when cached); returns the cached file.

    CC BY-NC weights need ``accept_license=True`` (or ``DFNET_ACCEPT_LICENSE=1``); their licence and
    citation are printed and stored beside the file.
    """
    entry = get_entry(name)
    if entry.source == "bundled":
        return verified_file(entry)
    if entry.needs_acceptance and not licence_accepted(accept_license):
        raise DownloadError(
            f"{entry.name} is licensed {entry.licence} (non-commercial use only, {entry.licence_url}): accept it with "
            f"`{download_command(entry)}`, accept_license=True or {ACCEPT_ENV}=1"
        )
    destination = model_file(entry)
    with download_lock(destination):
        if is_cached(entry):  # another process finished it while this one waited for the lock
            return verified_file(entry)
        with writable_folder(destination.parent):
            _download_into_cache(entry, destination, progress)
    return destination


def _download_into_cache(entry: ModelEntry, destination: Path, progress: bool) -> None:
    try:
        url = source_url(entry)
        part = partial_path(destination)
        _fetch(entry, url, part, progress)
    except OfflineError as err:
        raise OfflineError(f"{err}; to get {entry.name} by hand: {manual_route(entry)}") from None
    downloaded_sha256 = file_sha256(part)
    if entry.kind == "dfnet":
        converted = _convert_released(entry, part, url)
        os.replace(converted, destination)
    else:
        install_verified(part, destination, url, _verify(entry, url))
    if entry.needs_acceptance:
        from dfnet.files import atomic_write_text

        notice = licence_notice(entry)
        atomic_write_text(licence_path(entry), notice)
        print(notice, file=sys.stderr)
    _write_record(entry, destination, url, downloaded_sha256)


def remove_model(name: str) -> list[Path]:
    """Delete a downloaded model with its record, licence file and any partial download; returns what went."""
    entry = get_entry(name)
    if entry.source == "bundled":
        raise ValueError("the default model is part of the package and cannot be removed")
    destination = model_file(entry)
    candidates = [destination, _record_path(entry), licence_path(entry), partial_path(destination)]
    candidates += sorted(destination.parent.glob(partial_path(destination).name + "*"))
    removed = []
    for path in dict.fromkeys(candidates):
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def cached_aux_file(kind: str) -> Path | None:
    """The verified cached file of an auxiliary entry (``vgg16``, ``fid-inception``), or None if absent."""
    entry = get_entry(kind)
    return verified_file(entry) if is_cached(entry) else None


def is_model_name(name_or_path: str | os.PathLike) -> bool:
    """True for a registry name (a string without a path separator or file suffix that the registry knows)."""
    return isinstance(name_or_path, str) and name_or_path in REGISTRY


def resolve_model(
    name_or_path: str | os.PathLike, download: bool = False, accept_license: bool = False
) -> tuple[str, Path]:
    """(display name, local file) for a registry name, an ``hf://`` reference or a path.

    A name that is not cached is a one-line ModelNotCachedError naming the download command, unless
    ``download`` allows the network.
    """
    text = str(name_or_path)
    if text.startswith("hf://"):
        from dfnet.hub import resolve_hub

        return resolve_hub(text, download=download)
    if not is_model_name(name_or_path):
        path = Path(name_or_path)
        return path.stem, path
    entry = get_entry(text)
    if entry.kind != "dfnet":
        raise ValueError(f"{entry.name} is not an inpainting model ({entry.description})")
    if entry.source == "bundled" and not BUNDLED.is_file():
        raise CheckpointError("the default model is not bundled with this installation")
    if download and not is_cached(entry):
        download_model(text, accept_license=accept_license)
    return entry.name, verified_file(entry)


def describe_models() -> list[dict]:
    """One row per registry entry for ``dfnet models list``: name, kind, licence, size, cached, path."""
    rows = []
    for entry in REGISTRY.values():
        path = model_file(entry)
        cached = is_cached(entry)
        size_mb = path.stat().st_size / 1e6 if cached else entry.approx_mb
        rows.append(
            {
                "name": entry.name,
                "kind": entry.kind,
                "licence": entry.licence,
                "licence_url": entry.licence_url,
                "size_mb": round(size_mb, 1),
                "cached": cached,
                "path": str(path),
                "description": entry.description,
            }
        )
    return rows


__all__ = [
    "REGISTRY",
    "ModelEntry",
    "ModelNotCachedError",
    "cache_dir",
    "cached_aux_file",
    "describe_models",
    "download_model",
    "get_entry",
    "remove_model",
    "resolve_model",
]
