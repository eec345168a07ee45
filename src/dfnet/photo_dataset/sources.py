"""What the data set is made of: the Debian packages read, the kind of picture each gives, manual decisions."""

from __future__ import annotations

from dataclasses import dataclass

SCENE = "scene"  # wallpapers: whole scenes, which teach structure
TEXTURE = "texture"  # tiles of photographed materials, which teach detail
KINDS = (SCENE, TEXTURE)


@dataclass(frozen=True)
class Source:
    """One Debian package and the kind of pictures it ships."""

    package: str
    kind: str = SCENE


SOURCES: tuple[Source, ...] = (
    Source("gnome-backgrounds"),
    Source("plasma-workspace-wallpapers"),
    Source("mate-backgrounds"),
    Source("ukui-wallpapers"),
    Source("lomiri-wallpapers-16.04"),
    Source("lomiri-wallpapers-20.04"),
    Source("nexuiz-textures", TEXTURE),
    Source("ufoai-textures", TEXTURE),
    Source("openarena-081-textures", TEXTURE),
)

# Manual decisions, made by looking at the contact sheets that the build writes with --review.
# Key: image id "<package>:<name>"; value: (is_photo, why).  These win over the statistics, which
# misjudge the cases listed here.
PHOTO_OVERRIDES: dict[str, tuple[bool, str]] = {
    "mate-backgrounds:Elephants": (False, "mirrored, painted-over collage despite its camera EXIF"),
    "plasma-workspace-wallpapers:Autumn": (False, "painting"),
    "plasma-workspace-wallpapers:Flow": (False, "rendered hexagon art with added grain"),
    "plasma-workspace-wallpapers:Honeywave": (False, "vector-style illustration with added grain"),
    "plasma-workspace-wallpapers:SafeLanding": (False, "painted illustration"),
    "plasma-workspace-wallpapers:Shell": (False, "rendered faceted shapes"),
    "plasma-workspace-wallpapers:Volna": (False, "rendered sand-and-wave illustration"),
    "ukui-wallpapers:rhythm": (False, "rendered ribbon"),
}

# The validation photo that examples/photo.png is cut from, and the crop's top-left corner in the
# 512-short-side image.
EXAMPLE_ID = "mate-backgrounds:Dune"
EXAMPLE_CROP_LEFT = 152
EXAMPLE_CROP_TOP = 0


def sources_from_names(scene_packages: list[str], texture_packages: list[str]) -> tuple[Source, ...]:
    """Sources for package names given on the command line, scenes first, in the order given."""
    return tuple(Source(p, SCENE) for p in scene_packages) + tuple(
        Source(p, TEXTURE) for p in texture_packages
    )
