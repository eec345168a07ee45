"""dfnet.datasets: Places365 validation download (loopback stand-in archives) and the CelebA folder check."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dfnet import datasets
from dfnet.cli import main
from dfnet.download import DownloadError, file_md5


def _jpeg(seed: int) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG")
    return buffer.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def places365_stand_ins(count: int = 3) -> dict[str, bytes]:
    """Archives shaped like Places365's: val_large/ images and the Standard file lists."""
    names = [f"Places365_val_{i + 1:08d}.jpg" for i in range(count)]
    images = _tar({f"val_large/{name}": _jpeg(i) for i, name in enumerate(names)})
    lists = _tar(
        {
            "places365_val.txt": "".join(f"{name} {i}\n" for i, name in enumerate(names)).encode(),
            "places365_train_standard.txt": b"/a/airfield/00000001.jpg 0\n",
            "categories_places365.txt": b"/a/airfield 0\n",
        }
    )
    return {"val_large.tar": images, "filelist_places365-standard.tar": lists}


@pytest.fixture
def places_mirror(loopback, monkeypatch):
    archives = places365_stand_ins()
    for name, data in archives.items():
        loopback.files[f"/{name}"] = data
    monkeypatch.setenv("DFNET_DATA_MIRROR", loopback.url)
    monkeypatch.setattr(
        datasets, "PLACES365_ARCHIVES", {name: file_md5_of(data) for name, data in archives.items()}
    )
    return loopback


def file_md5_of(data: bytes) -> str:
    import hashlib

    return hashlib.md5(data).hexdigest()


def test_published_checksums():
    assert datasets.PLACES365_URL == "http://data.csail.mit.edu/places/places365/"
    assert datasets.PLACES365_ARCHIVES["val_large.tar"] == "9b71c4993ad89d2d8bcbdc4aef38042f"
    assert (
        datasets.PLACES365_ARCHIVES["filelist_places365-standard.tar"] == "35a0585fee1fa656440f3ab298f8479c"
    )


def test_download_unpacks_into_the_places2_layout(places_mirror, tmp_path, capsys):
    root = tmp_path / "data" / "places2"
    places_mirror.drop_once.add("/val_large.tar")  # resumed within the call
    assert main(["data", "download", "places365-val", "--root", str(root), "--no-progress"]) == 0
    images = sorted(p.name for p in (root / "val_large").iterdir())
    assert images == [f"Places365_val_{i:08d}.jpg" for i in (1, 2, 3)]
    assert (root / "places365_val.txt").read_text().splitlines()[0] == "Places365_val_00000001.jpg 0"
    assert (root / "places365_train_standard.txt").is_file()
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == [
        "categories_places365.txt",
        "places365_train_standard.txt",
        "places365_val.txt",
        "val_large",
    ]  # archives deleted once unpacked, no temporary folder left
    assert not [p for p in root.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]
    assert places_mirror.ranges  # the dropped transfer was resumed with a Range request
    # the data loader of the places2 config reads it
    from dfnet.data import read_image_list

    assert len(read_image_list(root / "places365_val.txt", root / "val_large")) == 3
    # already there: nothing is fetched again
    before = sum(places_mirror.requests.values())
    assert main(["data", "download", "places365-val", "--root", str(root), "--no-progress"]) == 0
    assert sum(places_mirror.requests.values()) == before


def test_wrong_checksum_is_refused_and_nothing_unpacked(places_mirror, monkeypatch, tmp_path):
    monkeypatch.setitem(datasets.PLACES365_ARCHIVES, "val_large.tar", "0" * 32)
    root = tmp_path / "places2"
    with pytest.raises(DownloadError, match="checksum mismatch") as err:
        datasets.download_places365_val(root, progress=False)
    assert "\n" not in str(err.value)
    assert not (root / "val_large").exists() and not (root / "val_large.tar").exists()


def test_truncated_archive_is_refused(places_mirror, monkeypatch, tmp_path):
    data = places_mirror.files["/val_large.tar"][:700]
    places_mirror.files["/val_large.tar"] = data
    monkeypatch.setitem(datasets.PLACES365_ARCHIVES, "val_large.tar", file_md5_of(data))
    with pytest.raises(DownloadError, match="damaged archive|no val_large/ images"):
        datasets.download_places365_val(tmp_path / "p", progress=False)
    assert not (tmp_path / "p" / "val_large").exists()


def _faces(folder: Path, count: int, size=(32, 40)) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        Image.fromarray(np.full((size[1], size[0], 3), i * 20, np.uint8)).save(folder / f"{i:06d}.jpg")


def test_check_celeba(tmp_path, capsys):
    folder = tmp_path / "celeba"
    _faces(folder, 4)
    assert main(["data", "check", "celeba", str(folder), "--expected", "4"]) == 0
    assert capsys.readouterr().out.strip() == f"{folder}: 4 images, all readable; sizes 32x40 (4)"
    assert main(["data", "check", "celeba", str(folder), "--expected", "30000"]) == 1
    assert "4 images, expected 30000" in capsys.readouterr().err
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ValueError, match="1 of 5 images cannot be read"):
        datasets.check_celeba(folder)
    with pytest.raises(ValueError, match="no images"):
        datasets.check_celeba(tmp_path)


def test_md5_helper(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_md5(path) == "900150983cd24fb0d6963f7d28e17f72"
