"""The recipe of dfnet's photo data set: real photographs from Debian packages, with each file's licence.

Modules: ``sources`` (which packages, of which kind, and the manual decisions), ``debian`` (apt
download, unpacking, listing files), ``licences`` (debian/copyright and upstream metadata),
``photos`` (duplicate grouping and the photo / not-photo rules), ``images`` (colour, resizing,
contact sheets, the example mask) and ``build`` (survey, split, write, manifest and report).
``scripts/build_wallpaper_dataset.py`` is the command line on top.
"""
