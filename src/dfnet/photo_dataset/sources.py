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
    "nexuiz-textures:dsi_textures/dsi_floorlogo": (False, "logo"),
}

# Manual decisions for sets of game textures, made on the contact sheets: key "<package>:<prefix>",
# which matches every picture id that starts with it (the longest matching key wins; an entry in
# PHOTO_OVERRIDES wins over all of them); a None value gives the decision back to the rules.
# Game textures are photographs of materials mixed with painted and rendered ones; these keys drop
# the sets that are not photographs, and the copies of one package's textures in another (which
# would otherwise put one picture in both splits).
PREFIX_OVERRIDES: dict[str, tuple[bool, str] | None] = {
    "nexuiz-textures:skies/": (False, "rendered sky boxes"),
    "nexuiz-textures:tutorial/": (False, "game screenshots"),
    "nexuiz-textures:tymo3t5/": (False, "game screenshots"),
    "nexuiz-textures:terrain_dotproduct2/": (False, "blend tiles labelled Horizontal / Vertical"),
    "nexuiz-textures:portals/": (False, "model skin"),
    "nexuiz-textures:flags/": (False, "model skin"),
    "nexuiz-textures:items/": (False, "model skin"),
    "nexuiz-textures:domination/": (False, "model skin"),
    "nexuiz-textures:morphed/": (False, "rendered slime"),
    "nexuiz-textures:water/": (False, "rendered water"),
    "nexuiz-textures:trak5/": (False, "designed sci-fi panels"),
    "nexuiz-textures:evil9/": (False, "designed sci-fi panels"),
    "nexuiz-textures:eX/eX_wall_": (False, "designed sci-fi panels"),
    "nexuiz-textures:race/track": (False, "painted track"),
    "nexuiz-textures:race/tunel": (False, "painted track"),
    "openarena-081-textures:": (
        False,
        "painted Quake III-style set, sky or effect (only photographic sets kept)",
    ),
    "openarena-081-textures:acc_dm3/": None,
    "openarena-081-textures:acc_dm5/": None,
    "openarena-081-textures:cosmo_block/": None,
    "openarena-081-textures:cosmo_floor/": None,
    "openarena-081-textures:czest3ctf/": None,
    "openarena-081-textures:gothic_floor/blocks17floor": None,
    "openarena-081-textures:nki/": None,
    "openarena-081-textures:stone/": None,
    "ufoai-textures:tex_alienb/": (False, "designed alien base"),
    "ufoai-textures:tex_ufo/": (False, "designed alien craft"),
    "ufoai-textures:tex_pics/": (False, "pictures of paintings and prints"),
    "ufoai-textures:tex_mattn/art": (False, "pictures of paintings"),
    "ufoai-textures:tex_misc/office_sep": (False, "posters on a wall"),
    "ufoai-textures:tex_misc/vendor_cart": (False, "painted machine"),
    "ufoai-textures:tex_tech/": (False, "painted computer panels"),
    "ufoai-textures:tex_trak/": (False, "copies of nexuiz-textures trak4/trak5"),
    "ufoai-textures:tex_base/helipad": (False, "painted marking"),
    "ufoai-textures:tex_base/panel1": (False, "designed sci-fi panel"),
    "ufoai-textures:tex_base/wall1": (False, "rendered pipes"),
    "ufoai-textures:tex_buildings/9techwall": (False, "designed sci-fi panels"),
    "ufoai-textures:tex_buildings/tin_floor04ach": (False, "painted stripes"),
}


def manual_decision(picture_id: str) -> tuple[bool, str] | None:
    """The committed manual decision (is_photo, why) for a picture id, or None when the rules decide."""
    if picture_id in PHOTO_OVERRIDES:
        return PHOTO_OVERRIDES[picture_id]
    prefixes = [key for key in PREFIX_OVERRIDES if picture_id.startswith(key)]
    return PREFIX_OVERRIDES[max(prefixes, key=len)] if prefixes else None


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
