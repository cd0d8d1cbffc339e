"""What the texture tests share: a photo red on its left and blue on its right, a PBR-textured
box, and the checks a user makes by eye (is the texture flat, which colour is on which side)."""

from __future__ import annotations

import numpy as np
import trimesh
from PIL import Image, ImageDraw

from sweedle_core.export.texture_maps import (
    BASE_COLOR,
    METALLIC_ROUGHNESS,
    NORMAL,
    TextureMaps,
    sampled_colors,
    texture_maps_of,
    textured_visual,
)
from tests.glb_files import embedded_maps, read_glb

RED, BLUE = (220, 20, 20), (20, 20, 220)


def split_photo(size: int = 128) -> Image.Image:
    """An ellipse on a transparent background, red on its left half, blue on its right."""
    image = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    box = (size // 8, size // 16, size - size // 8 - 1, size - size // 16 - 1)
    draw.ellipse(box, fill=(*RED, 255))
    draw.pieslice(box, -90, 90, fill=(*BLUE, 255))
    return image


def gradient(size: int = 32, blue: int = 128) -> Image.Image:
    """Red rising to the right, green rising downward: every pixel differs."""
    ramp = np.linspace(0, 255, size).astype(np.uint8)
    rgb = np.zeros((size, size, 3), dtype=np.uint8)
    rgb[..., 0] = ramp[None, :]
    rgb[..., 1] = ramp[:, None]
    rgb[..., 2] = blue
    return Image.fromarray(rgb)


def pbr_box() -> trimesh.Trimesh:
    """A box with UVs from its x, y and a PBR material: base colour, metallic-roughness and
    normal maps, each a different gradient."""
    box = trimesh.creation.box()
    maps = {BASE_COLOR: gradient(32, 40), METALLIC_ROUGHNESS: gradient(16, 250)}
    maps[NORMAL] = gradient(8, 255)
    box.visual = textured_visual(TextureMaps(uv=box.vertices[:, :2] + 0.5, maps=maps, pbr=True))
    return box


def is_flat(image: Image.Image) -> bool:
    """Whether every pixel of ``image`` has about the same colour."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3)
    return bool(pixels.std(axis=0).max() < 5.0)


def glb_maps(data: bytes) -> dict[str, Image.Image]:
    """The maps a GLB's material reads, by glTF name."""
    return embedded_maps(*read_glb(data))


def same_pixels(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(
        np.asarray(a.convert("RGBA")), np.asarray(b.convert("RGBA"))
    )


def left_and_right(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean colour ``(3,)`` of the opaque pixels of ``rgba (h, w, 4)`` in the left and the
    right third of the object's width on screen."""
    opaque = rgba[..., 3] == 255
    columns = np.flatnonzero(opaque.any(axis=0))
    left_end = columns[0] + (columns[-1] - columns[0]) // 3
    right_start = columns[-1] - (columns[-1] - columns[0]) // 3
    cols = np.arange(rgba.shape[1])[None, :]
    rgb = rgba[..., :3].astype(np.float64)
    left = rgb[opaque & (cols <= left_end)].mean(axis=0)
    right = rgb[opaque & (cols >= right_start)].mean(axis=0)
    return left, right


def reads_red_then_blue(rgba: np.ndarray) -> bool:
    """The object on screen is red on its left and blue on its right."""
    left, right = left_and_right(rgba)
    return bool(left[0] > 2 * left[2] and right[2] > 2 * right[0])


def surface_colors(mesh: trimesh.Trimesh) -> np.ndarray:
    """The colour a viewer sees at each vertex ``(n, 4) uint8``: the texture read at its UV
    for a textured mesh, its vertex colour otherwise."""
    textures = texture_maps_of(mesh)
    if textures is not None:
        return sampled_colors(textures)
    return np.asarray(mesh.visual.vertex_colors, dtype=np.uint8)


def welded(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """``mesh``'s surface with the vertices UV seams split merged again, for topology checks:
    a seam is not a hole. Seam copies share position and normal (marching cubes can put two
    distinct vertices at one position, with different normals: those stay apart)."""
    surface = trimesh.Trimesh(
        mesh.vertices, mesh.faces, vertex_normals=mesh.vertex_normals, process=False
    )
    surface.merge_vertices(merge_tex=True, merge_norm=False)
    return surface
