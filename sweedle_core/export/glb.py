"""glTF 2.0 written directly: one mesh, one primitive; vertex colours, or a base-colour texture
(with metallic-roughness and normal maps when the mesh's material has them).

Written by hand rather than through trimesh because trimesh writes no NORMAL unless asked and its
own loader drops COLOR_0 once a material is set; here every accessor is explicit and the output
passes the Khronos glTF validator with no errors. The pieces (`mesh_arrays`, `BufferBuilder`,
`gltf_document`, `pack_glb`) are public so the Draco writer shares them.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh
from PIL import Image

from sweedle_core.export.mesh_io import seamless_normals, vertex_colors_of
from sweedle_core.export.texture_maps import (
    BASE_COLOR,
    METALLIC_ROUGHNESS,
    NORMAL,
    encode_png,
    texture_maps_of,
)

GLB_MAGIC = 0x46546C67  # "glTF"
CHUNK_JSON = 0x4E4F534A  # "JSON"
CHUNK_BIN = 0x004E4942  # "BIN\0"
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963
FLOAT = 5126
UNSIGNED_BYTE = 5121
UNSIGNED_SHORT = 5123
UNSIGNED_INT = 5125
_TRIANGLES = 4
_LINEAR = 9729
_LINEAR_MIPMAP_LINEAR = 9987
_REPEAT = 10497
PNG_MEDIA_TYPE = "image/png"
# A matte material: base colour white so viewers show the vertex colours or the texture
# (both multiply baseColorFactor), not metallic, fairly rough. A metallic-roughness map is
# multiplied by the factors too: with one, they are 1 and the map decides.
_PBR = {"baseColorFactor": [1.0, 1.0, 1.0, 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.8}
_PBR_MAPPED = {"metallicFactor": 1.0, "roughnessFactor": 1.0}
# Each map's file name after the stem, in a glTF or OBJ folder.
MAP_SUFFIXES = {BASE_COLOR: "", METALLIC_ROUGHNESS: "_metallic_roughness", NORMAL: "_normal"}

Document = dict[str, Any]


@dataclass(frozen=True)
class MeshArrays:
    """A mesh as a glTF primitive holds it: faces as the mesh winds them, UV origin top-left.

    positions : (n, 3) float32
    faces : (m, 3) int64
    normals : (n, 3) float32, unit length
    colors : (n, 4) uint8 or None (None when textured: COLOR_0 would tint the texture)
    uvs : (n, 2) float32 or None, glTF convention (v down from the top of the image)
    maps : glTF map name -> PNG bytes, the base colour first; empty when untextured
    """

    positions: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    colors: np.ndarray | None
    uvs: np.ndarray | None
    maps: dict[str, bytes]


def mesh_arrays(mesh: trimesh.Trimesh) -> MeshArrays:
    """``mesh`` as glTF arrays. Raises ``ValueError`` for a mesh without faces (glTF cannot
    hold an empty primitive).

    A mesh with `TextureVisuals` carrying UVs and an image keeps them and every map of its
    material (V flipped: trimesh puts the UV origin bottom-left, glTF top-left); any other mesh
    gets its vertex colours, if any. Normals are smooth over positions, so the two sides of a
    UV seam (split vertices) shade alike.
    """
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise ValueError("cannot write glTF of a mesh without faces")
    positions = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
    faces = np.ascontiguousarray(mesh.faces, dtype=np.int64)

    uvs, maps, colors = None, {}, None
    textures = texture_maps_of(mesh)
    if textures is not None:
        uv = textures.uv
        uvs = np.column_stack([uv[:, 0], 1.0 - uv[:, 1]]).astype(np.float32)
        maps = {name: encode_png(image) for name, image in textures.maps.items()}
    else:
        colors = vertex_colors_of(mesh)
    return MeshArrays(
        positions=positions,
        faces=faces,
        normals=seamless_normals(positions, faces),
        colors=colors,
        uvs=uvs,
        maps=maps,
    )


def texture_of(mesh: trimesh.Trimesh) -> tuple[np.ndarray, Image.Image] | None:
    """``(uv (n, 2), base-colour image)`` when the mesh is textured, trimesh's UV convention."""
    textures = texture_maps_of(mesh)
    return None if textures is None else (textures.uv, textures.base_color)


def embedded_images(builder: BufferBuilder, maps: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    """The glTF image of each map, its PNG stored in ``builder`` (a GLB's own buffer)."""
    return {
        name: {"bufferView": builder.add_view(png), "mimeType": PNG_MEDIA_TYPE}
        for name, png in maps.items()
    }


def mesh_to_glb(mesh: trimesh.Trimesh) -> bytes:
    """A GLB of ``mesh``: POSITION, smooth NORMAL, COLOR_0 (when coloured) or TEXCOORD_0 and its
    maps embedded as PNG (when textured), and indices.

    Vertices, faces and their order are kept: the winding is `optimize_mesh`'s, which every
    mesh passes before it is exported. Raises ``ValueError`` for a mesh without faces.
    """
    arrays = mesh_arrays(mesh)
    builder = BufferBuilder()
    attributes, indices = _plain_accessors(builder, arrays)
    images = embedded_images(builder, arrays.maps)
    document = gltf_document(builder, attributes, indices, images=images)
    return pack_glb(document, builder.data())


def mesh_to_gltf(mesh: trimesh.Trimesh, stem: str = "model") -> dict[str, bytes]:
    """The same content as `mesh_to_glb` as separate files, by name: ``{stem}.gltf`` (the JSON,
    first), ``{stem}.bin`` (the buffer) and, when textured, ``{stem}.png`` (the base colour) and
    ``{stem}_metallic_roughness.png`` and ``{stem}_normal.png`` when the material has them; they
    reference each other by these relative names, so they belong in one folder."""
    arrays = mesh_arrays(mesh)
    builder = BufferBuilder()
    attributes, indices = _plain_accessors(builder, arrays)
    files = {f"{stem}.gltf": b"", f"{stem}.bin": builder.data()}
    images = {}
    for name, png in arrays.maps.items():
        file = f"{stem}{MAP_SUFFIXES[name]}.png"
        images[name] = {"uri": file, "mimeType": PNG_MEDIA_TYPE}
        files[file] = png
    document = gltf_document(builder, attributes, indices, images=images, buffer_uri=f"{stem}.bin")
    files[f"{stem}.gltf"] = json.dumps(document, indent=1).encode("utf-8")
    return files


def _plain_accessors(builder: BufferBuilder, arrays: MeshArrays) -> tuple[dict[str, int], int]:
    """Accessors for every attribute and the indices, data stored in ``builder``."""
    positions = arrays.positions
    attributes = {
        "POSITION": builder.add(
            positions,
            "VEC3",
            FLOAT,
            ARRAY_BUFFER,
            min=positions.min(axis=0).tolist(),
            max=positions.max(axis=0).tolist(),
        ),
        "NORMAL": builder.add(arrays.normals, "VEC3", FLOAT, ARRAY_BUFFER),
    }
    if arrays.uvs is not None:
        attributes["TEXCOORD_0"] = builder.add(arrays.uvs, "VEC2", FLOAT, ARRAY_BUFFER)
    if arrays.colors is not None:
        attributes["COLOR_0"] = builder.add(
            arrays.colors, "VEC4", UNSIGNED_BYTE, ARRAY_BUFFER, normalized=True
        )
    component = index_component(len(positions))
    index_dtype = np.uint16 if component == UNSIGNED_SHORT else np.uint32
    flat = np.ascontiguousarray(arrays.faces, dtype=index_dtype).ravel()
    return attributes, builder.add(flat, "SCALAR", component, ELEMENT_ARRAY_BUFFER)


def index_component(vertex_count: int) -> int:
    """The glTF component type of indices into ``vertex_count`` vertices (65535 is reserved
    as the primitive-restart value, so 16 bits stop short of it)."""
    return UNSIGNED_SHORT if vertex_count < 0xFFFF else UNSIGNED_INT


class BufferBuilder:
    """Accessors and buffer views over one binary buffer, each view 4-byte aligned."""

    def __init__(self) -> None:
        self.accessors: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self._parts: list[bytes] = []
        self.length = 0

    def add_view(self, blob: bytes, target: int | None = None) -> int:
        """Append ``blob`` as a buffer view (no target: images, Draco data); its index."""
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.length, "byteLength": len(blob)}
        if target is not None:
            view["target"] = target
        self.views.append(view)
        self._parts.append(blob)
        self.length += len(blob)
        pad = -self.length % 4
        if pad:
            self._parts.append(b"\0" * pad)
            self.length += pad
        return len(self.views) - 1

    def add(
        self, array: np.ndarray, kind: str, component_type: int, target: int, **extra: object
    ) -> int:
        """Store ``array`` in its own view and describe it with an accessor; its index."""
        view = self.add_view(np.ascontiguousarray(array).tobytes(), target)
        count = len(array) if kind != "SCALAR" else array.size
        return self.add_accessor(int(count), kind, component_type, bufferView=view, **extra)

    def add_accessor(self, count: int, kind: str, component_type: int, **extra: object) -> int:
        """An accessor; without ``bufferView`` its data comes from an extension (Draco)."""
        accessor = {"componentType": component_type, "count": count, "type": kind, **extra}
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    def data(self) -> bytes:
        return b"".join(self._parts)


def gltf_document(
    builder: BufferBuilder,
    attributes: dict[str, int],
    indices: int,
    *,
    images: dict[str, dict[str, Any]] | None = None,
    primitive_extensions: dict[str, Any] | None = None,
    buffer_uri: str | None = None,
) -> Document:
    """The glTF JSON of one node with one triangle primitive over ``builder``'s accessors.

    ``images`` maps a material map's glTF name (``baseColorTexture``, ``metallicRoughnessTexture``,
    ``normalTexture``) to its glTF image (``bufferView`` or ``uri``, and ``mimeType``), each read
    through TEXCOORD_0. Every primitive extension is listed as both used and required: a loader
    without it could not read the geometry.
    """
    primitive: dict[str, Any] = {
        "attributes": attributes,
        "indices": indices,
        "material": 0,
        "mode": _TRIANGLES,
    }
    document: Document = {"asset": {"version": "2.0", "generator": "sweedle"}}
    if primitive_extensions:
        primitive["extensions"] = primitive_extensions
        document["extensionsUsed"] = sorted(primitive_extensions)
        document["extensionsRequired"] = sorted(primitive_extensions)
    buffer: dict[str, Any] = {"byteLength": builder.length}
    if buffer_uri is not None:
        buffer["uri"] = buffer_uri
    images = images or {}
    document |= {
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "model"}],
        "meshes": [{"name": "model", "primitives": [primitive]}],
        "materials": [_material(list(images))],
        "accessors": builder.accessors,
        "bufferViews": builder.views,
        "buffers": [buffer],
    }
    if images:
        document["images"] = list(images.values())
        document["samplers"] = [
            {
                "magFilter": _LINEAR,
                "minFilter": _LINEAR_MIPMAP_LINEAR,
                "wrapS": _REPEAT,
                "wrapT": _REPEAT,
            }
        ]
        document["textures"] = [{"sampler": 0, "source": i} for i in range(len(images))]
    return document


def _material(maps: list[str]) -> dict[str, Any]:
    """The one material, reading texture ``i`` for the ``i``-th of ``maps`` (glTF names)."""
    pbr: dict[str, Any] = dict(_PBR)
    material: dict[str, Any] = {"name": "textured" if maps else "vertex_color"}
    for index, name in enumerate(maps):
        reference = {"index": index, "texCoord": 0}
        if name == NORMAL:
            material[name] = reference  # on the material itself, not under pbrMetallicRoughness
        else:
            pbr[name] = reference
    if METALLIC_ROUGHNESS in maps:
        pbr |= _PBR_MAPPED
    material["pbrMetallicRoughness"] = pbr
    return material


def pack_glb(document: Document, binary: bytes) -> bytes:
    """The GLB container: header, JSON chunk (space-padded), BIN chunk (zero-padded)."""
    json_bytes = json.dumps(document, separators=(",", ":")).encode("utf-8")
    json_bytes += b" " * (-len(json_bytes) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(json_bytes) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<III", GLB_MAGIC, 2, total),
            struct.pack("<II", len(json_bytes), CHUNK_JSON),
            json_bytes,
            struct.pack("<II", len(binary), CHUNK_BIN),
            binary,
        ]
    )
