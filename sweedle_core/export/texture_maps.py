"""A mesh's texture maps: its UVs and the images a glTF metallic-roughness material reads
through them, as one value every exporter reads.

trimesh keeps a texture as `TextureVisuals` (one UV per vertex, origin bottom-left) with a
material: a `SimpleMaterial` (one image: the photo bake, most loaders) or a `PBRMaterial`
(base colour, metallic-roughness and normal maps: glTF files, Hunyuan3D-2.1's paint).
`texture_maps_of` reads either; `textured_visual` builds the same material back. The images are
carried as PNG (`encode_png`, `decode_png`) in the raw mesh and every file format.

`sampled_colors` turns a texture into per-vertex colours, for the formats that cannot hold a
texture (PLY): the one place Sweedle samples a texture into vertex colours.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image

from sweedle_core.params import MAX_TEXTURE_SIZE

# glTF's names of the maps, in the order they are written (the base colour first).
BASE_COLOR = "baseColorTexture"
METALLIC_ROUGHNESS = "metallicRoughnessTexture"
NORMAL = "normalTexture"
MAP_NAMES = (BASE_COLOR, METALLIC_ROUGHNESS, NORMAL)
# A stored map larger than this per side is refused before decoding (a painted texture may
# be larger than the bake's largest).
MAX_MAP_SIDE = 2 * MAX_TEXTURE_SIZE


@dataclass(frozen=True)
class TextureMaps:
    """A textured mesh's UVs and maps.

    uv : (n, 2) float64, one per vertex, trimesh's convention (origin bottom-left, v up)
    maps : glTF map name (`MAP_NAMES`) -> image; always holds `BASE_COLOR`
    pbr : whether the material is a `PBRMaterial` (else a `SimpleMaterial`)
    """

    uv: np.ndarray
    maps: dict[str, Image.Image]
    pbr: bool = False

    @property
    def base_color(self) -> Image.Image:
        return self.maps[BASE_COLOR]


def vertex_uv_of(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """The mesh's texture coordinates ``(n, 2) float64`` (trimesh's convention, origin
    bottom-left), or ``None`` when it has no `TextureVisuals` with one UV per vertex."""
    visual = mesh.visual
    if visual is None or visual.kind != "texture":
        return None
    uv = getattr(visual, "uv", None)
    if uv is None or len(uv) != len(mesh.vertices):
        return None
    return np.asarray(uv, dtype=np.float64)[:, :2]


def texture_maps_of(mesh: trimesh.Trimesh) -> TextureMaps | None:
    """``mesh``'s UVs and maps, or ``None`` when it has no `TextureVisuals` with one UV per
    vertex and a base-colour image."""
    uv = vertex_uv_of(mesh)
    if uv is None:
        return None
    material = getattr(mesh.visual, "material", None)
    pbr = isinstance(material, trimesh.visual.material.PBRMaterial)
    found = {name: getattr(material, name, None) for name in MAP_NAMES} if pbr else {}
    if not pbr:
        found[BASE_COLOR] = getattr(material, "image", None)
    maps = {name: image for name, image in found.items() if isinstance(image, Image.Image)}
    if BASE_COLOR not in maps:
        return None
    return TextureMaps(uv=uv, maps=maps, pbr=pbr)


def textured_visual(maps: TextureMaps) -> trimesh.visual.TextureVisuals:
    """The trimesh visual of ``maps``: a `PBRMaterial` holding every map, or a
    `SimpleMaterial` holding the base colour, as `texture_maps_of` found them."""
    material: trimesh.visual.material.Material
    if maps.pbr:
        material = trimesh.visual.material.PBRMaterial(**maps.maps)
    else:
        material = trimesh.visual.material.SimpleMaterial(image=maps.base_color)
    return trimesh.visual.TextureVisuals(uv=maps.uv, material=material)


def encode_png(image: Image.Image) -> bytes:
    """``image`` as PNG bytes: RGB or RGBA as it came, any other mode converted to one."""
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() or image.mode == "P" else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def decode_png(data: bytes, what: str = "texture") -> Image.Image:
    """The PNG image in ``data``, loaded; its size is checked before its pixels are decoded.
    Raises ``ValueError`` (naming ``what``) for anything else or a side above `MAX_MAP_SIDE`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG"])
            if max(image.size) > MAX_MAP_SIDE:
                raise ValueError(f"{what} is {image.size}, larger than {MAX_MAP_SIDE} px a side")
            image.load()
    except ValueError:
        raise
    except Exception as exc:  # Pillow raises several kinds for a broken file
        raise ValueError(f"{what} is not a readable PNG: {exc}") from exc
    return image


def sampled_colors(maps: TextureMaps) -> np.ndarray:
    """The base colour at each vertex's UV, bilinear: ``(n, 4) uint8``. Only for formats that
    cannot carry a texture: a vertex holds one colour where a texture holds many."""
    return np.asarray(
        trimesh.visual.color.uv_to_interpolated_color(maps.uv, maps.base_color), dtype=np.uint8
    )
