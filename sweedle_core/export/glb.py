"""Binary glTF 2.0 (GLB) written directly: one mesh, one primitive, vertex colours, no textures.

Written by hand rather than through trimesh because trimesh writes no NORMAL unless asked and its
own loader drops COLOR_0 once a material is set; here every accessor is explicit and the output
passes the Khronos glTF validator with no errors.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import trimesh

from sweedle_core.export.mesh_io import outward_winding, smooth_normals, vertex_colors_of

_GLB_MAGIC = 0x46546C67  # "glTF"
_CHUNK_JSON = 0x4E4F534A  # "JSON"
_CHUNK_BIN = 0x004E4942  # "BIN\0"
_ARRAY_BUFFER = 34962
_ELEMENT_ARRAY_BUFFER = 34963
_FLOAT = 5126
_UNSIGNED_BYTE = 5121
_UNSIGNED_SHORT = 5123
_UNSIGNED_INT = 5125
_TRIANGLES = 4
# A matte material: base colour white so viewers show the vertex colours (COLOR_0 multiplies
# baseColorFactor), not metallic, fairly rough.
_MATERIAL = {
    "name": "vertex_color",
    "pbrMetallicRoughness": {
        "baseColorFactor": [1.0, 1.0, 1.0, 1.0],
        "metallicFactor": 0.0,
        "roughnessFactor": 0.8,
    },
}


def mesh_to_glb(mesh: trimesh.Trimesh) -> bytes:
    """A GLB of ``mesh``: POSITION, smooth NORMAL, COLOR_0 (when coloured) and indices.

    The faces are wound outward first (positive volume), since engines cull back faces.
    Vertices, their order and colours are kept as they are. Raises ``ValueError`` for a mesh
    without faces (glTF cannot hold an empty primitive).
    """
    mesh = outward_winding(mesh)
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise ValueError("cannot write a GLB of a mesh without faces")

    positions = np.ascontiguousarray(mesh.vertices, dtype=np.float32)
    faces = np.asarray(mesh.faces)
    normals = smooth_normals(positions, faces)
    colors = vertex_colors_of(mesh)
    index_type = np.uint16 if len(positions) < 0xFFFF else np.uint32
    indices = np.ascontiguousarray(faces, dtype=index_type).ravel()

    builder = _BufferBuilder()
    attributes = {
        "POSITION": builder.add(
            positions,
            "VEC3",
            _FLOAT,
            _ARRAY_BUFFER,
            min=positions.min(axis=0).tolist(),
            max=positions.max(axis=0).tolist(),
        ),
        "NORMAL": builder.add(normals, "VEC3", _FLOAT, _ARRAY_BUFFER),
    }
    if colors is not None:
        attributes["COLOR_0"] = builder.add(
            colors, "VEC4", _UNSIGNED_BYTE, _ARRAY_BUFFER, normalized=True
        )
    index_component = _UNSIGNED_SHORT if index_type is np.uint16 else _UNSIGNED_INT
    index_accessor = builder.add(indices, "SCALAR", index_component, _ELEMENT_ARRAY_BUFFER)

    document = {
        "asset": {"version": "2.0", "generator": "sweedle"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "model"}],
        "meshes": [
            {
                "name": "model",
                "primitives": [
                    {
                        "attributes": attributes,
                        "indices": index_accessor,
                        "material": 0,
                        "mode": _TRIANGLES,
                    }
                ],
            }
        ],
        "materials": [_MATERIAL],
        "accessors": builder.accessors,
        "bufferViews": builder.views,
        "buffers": [{"byteLength": builder.length}],
    }
    return _pack_glb(document, builder.data())


class _BufferBuilder:
    """Packs arrays into one binary buffer, one 4-byte-aligned buffer view per array."""

    def __init__(self) -> None:
        self.accessors: list[dict] = []
        self.views: list[dict] = []
        self._parts: list[bytes] = []
        self.length = 0

    def add(
        self,
        array: np.ndarray,
        kind: str,
        component_type: int,
        target: int,
        **extra: object,
    ) -> int:
        blob = np.ascontiguousarray(array).tobytes()
        self.views.append(
            {"buffer": 0, "byteOffset": self.length, "byteLength": len(blob), "target": target}
        )
        self._parts.append(blob)
        self.length += len(blob)
        pad = -self.length % 4
        if pad:
            self._parts.append(b"\0" * pad)
            self.length += pad
        count = len(array) if kind != "SCALAR" else array.size
        self.accessors.append(
            {
                "bufferView": len(self.views) - 1,
                "componentType": component_type,
                "count": int(count),
                "type": kind,
                **extra,
            }
        )
        return len(self.accessors) - 1

    def data(self) -> bytes:
        return b"".join(self._parts)


def _pack_glb(document: dict, binary: bytes) -> bytes:
    """The GLB container: header, JSON chunk (space-padded), BIN chunk (zero-padded)."""
    json_bytes = json.dumps(document, separators=(",", ":")).encode("utf-8")
    json_bytes += b" " * (-len(json_bytes) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(json_bytes) + 8 + len(binary)
    return b"".join(
        [
            struct.pack("<III", _GLB_MAGIC, 2, total),
            struct.pack("<II", len(json_bytes), _CHUNK_JSON),
            json_bytes,
            struct.pack("<II", len(binary), _CHUNK_BIN),
            binary,
        ]
    )
