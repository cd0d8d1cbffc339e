"""Draco-compressed GLB (``KHR_draco_mesh_compression``) through DracoPy.

Positions, normals, UVs and colours all go into one Draco blob, encoded without preserving the
vertex order (``preserve_order=False``: Draco may reorder and re-weld vertices, which is most of
its gain; trimesh's own Draco export keeps the order and comes out ~7x larger). The glTF around
it comes from the shared builder in `glb`: accessors without ``bufferView``, their counts and
bounds taken from decoding the blob again, so they describe what a loader will actually get.

Draco drops degenerate faces (two equal corners) and unreferenced vertices, so a mesh that has
them comes back with fewer faces; a clean mesh keeps its face count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from sweedle_core.export.glb import (
    FLOAT,
    UNSIGNED_BYTE,
    BufferBuilder,
    embedded_images,
    gltf_document,
    index_component,
    mesh_arrays,
    pack_glb,
)

DRACO_EXTENSION = "KHR_draco_mesh_compression"
# DracoPy.AttributeType values (the module is imported lazily).
_POSITION, _NORMAL, _COLOR, _TEX_COORD = 0, 1, 2, 3


@dataclass(frozen=True)
class QuantizationSettings:
    """Bits per component Draco keeps. ``color`` (1-8) rounds the 8-bit vertex colours to
    fewer levels before encoding (8 keeps them exactly: Draco stores uint8 colours losslessly);
    the others go to Draco's own quantiser (1-30). A position moves at most
    ``extent * 2 ** -(position + 1)``: 14 bits is ~0.003% of the model's size."""

    position: int = 14
    normal: int = 10
    color: int = 8
    texcoord: int = 12

    def __post_init__(self) -> None:
        for name, high in (("position", 30), ("normal", 30), ("texcoord", 30), ("color", 8)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ValueError(f"{name} quantisation must be 1-{high} bits, not {value!r}")


def compress_glb(
    mesh: trimesh.Trimesh,
    quantization: QuantizationSettings = QuantizationSettings(),
    compression_level: int = 7,
) -> bytes:
    """A GLB of ``mesh`` whose geometry is Draco-compressed; the same attributes and material
    as `mesh_to_glb` (UVs quantised to ``quantization.texcoord`` bits inside the blob; the
    texture maps stay embedded PNGs outside it).

    ``compression_level`` is Draco's speed/size trade (0-10, not lossy). Raises ``ValueError``
    for a mesh without faces or a level out of range.
    """
    if isinstance(compression_level, bool) or not 0 <= compression_level <= 10:
        raise ValueError(f"compression_level must be 0-10, not {compression_level!r}")
    import DracoPy

    arrays = mesh_arrays(mesh)
    optional: dict[str, np.ndarray] = {"normals": arrays.normals.astype(np.float64)}
    # name in glTF -> Draco attribute type, for the attributes this mesh has
    kinds = {"POSITION": _POSITION, "NORMAL": _NORMAL}
    if arrays.uvs is not None:
        optional["tex_coord"] = arrays.uvs.astype(np.float64)  # DracoPy asserts on float32
        kinds["TEXCOORD_0"] = _TEX_COORD
    if arrays.colors is not None:
        optional["colors"] = _round_colors(arrays.colors, quantization.color)
        kinds["COLOR_0"] = _COLOR
    blob = DracoPy.encode(
        arrays.positions,
        arrays.faces.astype(np.uint32),
        quantization_bits=quantization.position,
        compression_level=compression_level,
        preserve_order=False,
        normal_quantization_bits=quantization.normal,
        tex_coord_quantization_bits=quantization.texcoord,
        **optional,
    )

    # Decoding again gives the attribute ids Draco assigned and the counts and bounds a loader
    # will see (vertices are re-welded and positions quantised).
    decoded = DracoPy.decode(blob)
    ids = {attribute["attribute_type"]: attribute["unique_id"] for attribute in decoded.attributes}
    missing = [name for name, kind in kinds.items() if kind not in ids]
    if missing:
        raise RuntimeError(f"Draco dropped attributes {missing}")
    points = np.asarray(decoded.points)
    vertex_count, face_count = len(points), len(decoded.faces)
    if face_count == 0:
        raise ValueError("cannot write a Draco GLB of a mesh without faces")

    builder = BufferBuilder()
    draco_view = builder.add_view(blob)
    layout = {
        "POSITION": (
            "VEC3",
            FLOAT,
            {"min": points.min(axis=0).tolist(), "max": points.max(axis=0).tolist()},
        ),
        "NORMAL": ("VEC3", FLOAT, {}),
        "TEXCOORD_0": ("VEC2", FLOAT, {}),
        "COLOR_0": ("VEC4", UNSIGNED_BYTE, {"normalized": True}),
    }
    attributes = {}
    for name in kinds:
        kind, component, extra = layout[name]
        attributes[name] = builder.add_accessor(vertex_count, kind, component, **extra)
    indices = builder.add_accessor(3 * face_count, "SCALAR", index_component(vertex_count))
    images = embedded_images(builder, arrays.maps)
    extension = {
        "bufferView": draco_view,
        "attributes": {name: ids[kind] for name, kind in kinds.items()},
    }
    document = gltf_document(
        builder,
        attributes,
        indices,
        images=images,
        primitive_extensions={DRACO_EXTENSION: extension},
    )
    return pack_glb(document, builder.data())


def _round_colors(colors: np.ndarray, bits: int) -> np.ndarray:
    """``colors (n, 4) uint8`` rounded to ``2 ** bits`` levels, still spanning 0-255."""
    if bits >= 8:
        return np.ascontiguousarray(colors, dtype=np.uint8)
    levels = (1 << bits) - 1
    steps = np.round(colors.astype(np.float64) * (levels / 255.0))
    return np.round(steps * (255.0 / levels)).astype(np.uint8)
