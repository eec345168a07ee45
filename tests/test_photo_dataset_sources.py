"""dfnet.photo_dataset.sources: manual decisions for single pictures and for sets of textures."""

from __future__ import annotations

from dfnet.photo_dataset import sources


def test_manual_decision_picture_beats_folder_and_longest_folder_wins(monkeypatch):
    monkeypatch.setattr(sources, "PHOTO_OVERRIDES", {"pkg:a/b/keep": (True, "a photo after all")})
    folders = {"pkg:a/": (False, "painted set"), "pkg:a/b/": (True, "photo set"), "pkg:a/r/": None}
    monkeypatch.setattr(sources, "PREFIX_OVERRIDES", folders)
    assert sources.manual_decision("pkg:a/b/keep") == (True, "a photo after all")
    assert sources.manual_decision("pkg:a/b/other") == (True, "photo set")
    assert sources.manual_decision("pkg:a/c") == (False, "painted set")
    assert sources.manual_decision("pkg:a/r/x") is None  # the rules decide within pkg:a/r/
    assert sources.manual_decision("pkg:ab") is None  # a key is a prefix of the id, "/" included
    assert sources.manual_decision("other:a/c") is None


def test_committed_overrides_name_known_sources():
    packages = {s.package for s in sources.SOURCES}
    for key in [*sources.PHOTO_OVERRIDES, *sources.PREFIX_OVERRIDES]:
        assert key.split(":", 1)[0] in packages, key
    assert sources.manual_decision("ufoai-textures:tex_pics/art_japan005")[0] is False
    assert sources.manual_decision("openarena-081-textures:acc_dm5/sand") is None  # the rules decide
    assert sources.manual_decision("openarena-081-textures:gothic_block/blocks15")[0] is False
