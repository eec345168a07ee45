"""Image file sets (dfnet.data.image_lists): folders and text lists."""

from __future__ import annotations

from pathlib import Path

import pytest

from dfnet.data import (
    find_images,
    read_image_list,
)


def test_find_images_is_recursive_filtered_and_sorted(folder):
    found = [p.relative_to(folder).as_posix() for p in find_images(folder)]
    assert found == ["a.png", "d.bmp", "e.jpeg", "sub/b.JPG", "sub/f.png", "sub/deeper/c.webp"]
    with pytest.raises(FileNotFoundError):
        find_images(folder / "missing")


def test_read_image_list_with_labels_comments_and_roots(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    text = "# places365 style\n/a/abbey/00000001.jpg 0\n\nb/bar 2.png 17\nc.png\n"
    (lists / "train.txt").write_text(text)
    with_root = read_image_list(lists / "train.txt", tmp_path / "data")
    assert with_root == [
        tmp_path / "data/a/abbey/00000001.jpg",
        tmp_path / "data/b/bar 2.png",
        tmp_path / "data/c.png",
    ]
    without_root = read_image_list(lists / "train.txt")
    assert without_root[1] == lists / "b/bar 2.png"
    assert without_root[0] == Path("/a/abbey/00000001.jpg")  # absolute without a root stays absolute
