"""dfnet.photo_dataset.licences: DEP-5 and free-form debian/copyright files, plasma metadata."""

from __future__ import annotations

import json

from helpers import DEP5

from dfnet.photo_dataset import licences as wp

FREEFORM = """This package was debianized by someone.

Image Authors:

 - adwaita*
 - Chmiri.jpg:
   Copyright © 2011 Jakub Steiner
   Licensed under Creative Commons Attribution-ShareAlike 3.0 License.

 - Stones.jpg:
   Copyright © 2011 Felix Leupold
   Licensed under Creative Commons Attribution 2.0 License.

Licenses:

   This package is free software; you can redistribute it and/or modify
   it under the terms of the GNU General Public License as published by
   the Free Software Foundation; either version 2 of the License, or
   (at your option) any later version.
"""


def test_dep5_stanzas_match_installed_paths_last_match_wins(tmp_path):
    copyright_file = tmp_path / "copyright"
    copyright_file.write_text(DEP5, encoding="utf-8")
    info = wp.parse_copyright(copyright_file.read_text(encoding="utf-8"))
    assert len(info.stanzas) == 4
    assert info.stanzas[1].patterns == ("16.04/bridge_by_someone.jpg", "16.04/lake.jpg")
    cases = {
        "usr/share/backgrounds/bridge_by_someone.jpg": ("CC-BY-SA-4.0", "Some One, 2018"),
        "usr/share/backgrounds/lake.jpg": ("CC-BY-SA-4.0", "Some One, 2018"),
        "usr/share/backgrounds/mate/desktop/Stripes-Dark.png": ("CC0-1.0", "2014 Stripe Maker"),
        "usr/share/backgrounds/other/Stripes-Dark.png": ("GPL-2+", "2020 Everyone"),
        "usr/share/wallpapers/Path/contents/images/2560x1600.jpg": ("GPL-2+", "2020 Everyone"),
    }
    for path, expected in cases.items():
        assert wp.licence_for(info, path) == expected, path


def test_freeform_copyright_lists_and_package_default(tmp_path):
    copyright_file = tmp_path / "copyright"
    copyright_file.write_text(FREEFORM, encoding="utf-8")
    info = wp.parse_copyright(copyright_file.read_text(encoding="utf-8"))
    assert info.default_licence == "GPL-2+"
    assert wp.licence_for(info, "usr/share/backgrounds/gnome/adwaita-l.webp") == (
        "CC-BY-SA-3.0",
        "2011 Jakub Steiner",
    )
    assert wp.licence_for(info, "usr/share/backgrounds/gnome/Chmiri.jpg")[0] == "CC-BY-SA-3.0"
    assert wp.licence_for(info, "usr/share/backgrounds/gnome/Stones.jpg") == (
        "CC-BY-2.0",
        "2011 Felix Leupold",
    )
    assert wp.licence_for(info, "usr/share/backgrounds/gnome/blobs-d.svg") == ("GPL-2+", "")


def test_plasma_metadata_json_and_desktop():
    meta = {"KPlugin": {"Authors": [{"Name": "Risto Saukonpää", "Name[de]": "x"}], "License": "LGPLv3"}}
    assert wp.plasma_metadata(json.dumps(meta)) == ("Risto Saukonpää", "LGPLv3")
    desktop = "[Desktop Entry]\nName=Safe Landing\nX-KDE-PluginInfo-Author=Louis Durrant\nX-KDE-PluginInfo-License=CC-BY-SA-4.0\n"
    assert wp.plasma_metadata(desktop) == ("Louis Durrant", "CC-BY-SA-4.0")


def test_files_inside_game_archives_match_source_tree_patterns():
    text = DEP5 + "\nFiles: base/textures/tex_a/wall.png\nCopyright: A. Artist\nLicense: CC-BY-3.0\n"
    info = wp.parse_copyright(text)
    installed = "usr/share/games/g/base/0textures.pk3!/textures/tex_a/wall.png"
    assert wp.source_tree_path(installed) == "usr/share/games/g/base/textures/tex_a/wall.png"
    assert wp.licence_for(info, installed) == ("CC-BY-3.0", "A. Artist")
    assert wp.licence_for(info, installed.replace("tex_a/wall", "tex_b/wall")) == ("GPL-2+", "2020 Everyone")
