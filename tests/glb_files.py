"""Reading back the GLBs the export writes, as a loader would: the JSON and binary chunks, a
buffer view's bytes, the texture maps embedded in the binary chunk, and a Draco primitive
decoded (the Khronos validator does not look inside a Draco payload: the tests do, here)."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import trimesh
from PIL import Image

from sweedle_core.export.draco_compressor import DRACO_EXTENSION
from sweedle_core.export.glb import CHUNK_BIN, CHUNK_JSON, GLB_MAGIC, Document
from sweedle_core.export.texture_maps import (
    BASE_COLOR,
    METALLIC_ROUGHNESS,
    NORMAL,
    TextureMaps,
    decode_png,
    textured_visual,
)


def read_glb(data: bytes) -> tuple[Document, bytes]:
    """``(document, binary chunk)`` of a GLB; raises ``ValueError`` when it is not one."""
    if len(data) < 20:
        raise ValueError("not a GLB: too short")
    magic, version, total = struct.unpack_from("<III", data)
    if magic != GLB_MAGIC or version != 2 or total > len(data):
        raise ValueError("not a GLB 2.0 file")
    json_length, json_type = struct.unpack_from("<II", data, 12)
    if json_type != CHUNK_JSON:
        raise ValueError("GLB: the first chunk is not JSON")
    document = json.loads(data[20 : 20 + json_length])
    offset = 20 + json_length
    binary = b""
    if offset + 8 <= total:
        bin_length, bin_type = struct.unpack_from("<II", data, offset)
        if bin_type == CHUNK_BIN:
            binary = data[offset + 8 : offset + 8 + bin_length]
    return document, binary


def view_bytes(document: Document, binary: bytes, view: int) -> bytes:
    """The bytes of buffer view ``view`` of a GLB's binary chunk."""
    spec = document["bufferViews"][view]
    start = spec.get("byteOffset", 0)
    return binary[start : start + spec["byteLength"]]


def embedded_maps(document: Document, binary: bytes) -> dict[str, Image.Image]:
    """The maps of a GLB's first material whose images are in its own buffer, by glTF name
    (as `mesh_to_glb` and the Draco writer store them)."""
    materials = document.get("materials") or [{}]
    material = materials[0]
    references = {name: material.get(name) for name in (NORMAL,)}
    references |= {
        name: material.get("pbrMetallicRoughness", {}).get(name)
        for name in (BASE_COLOR, METALLIC_ROUGHNESS)
    }
    maps = {}
    for name, reference in references.items():
        if not reference:
            continue
        source = document["textures"][reference["index"]]["source"]
        image = document["images"][source]
        if "bufferView" in image:
            maps[name] = decode_png(view_bytes(document, binary, image["bufferView"]), name)
    return maps


def decode_draco_glb(data: bytes) -> trimesh.Trimesh:
    """The mesh in a Draco GLB written by `draco_compressor.compress_glb` (its first primitive):
    vertex colours, or UVs (back in trimesh's convention) and the texture maps, and the
    normals.

    Checks that every accessor's count matches the decoded data, so it also serves to verify
    an output. Raises ``ValueError`` for a GLB without Draco geometry or with mismatched counts.
    """
    import DracoPy

    document, binary = read_glb(data)
    try:
        primitive = document["meshes"][0]["primitives"][0]
        extension = primitive["extensions"][DRACO_EXTENSION]
    except (KeyError, IndexError, TypeError):
        raise ValueError("not a Draco GLB: no KHR_draco_mesh_compression primitive") from None
    decoded = DracoPy.decode(view_bytes(document, binary, extension["bufferView"]))
    by_id = {attribute["unique_id"]: attribute["data"] for attribute in decoded.attributes}
    values: dict[str, np.ndarray] = {}
    for name, unique_id in extension["attributes"].items():
        if unique_id not in by_id:
            raise ValueError(f"Draco GLB: attribute {name} (id {unique_id}) is not in the blob")
        values[name] = np.asarray(by_id[unique_id])
    faces = np.asarray(decoded.faces, dtype=np.int64)

    accessors = document["accessors"]
    for name, index in primitive["attributes"].items():
        if name in values and len(values[name]) != accessors[index]["count"]:
            raise ValueError(
                f"Draco GLB: {name} has {len(values[name])} values, "
                f"its accessor says {accessors[index]['count']}"
            )
    if "indices" in primitive and faces.size != accessors[primitive["indices"]]["count"]:
        raise ValueError("Draco GLB: the index count does not match the decoded faces")

    visual: Any = None
    maps = embedded_maps(document, binary)
    if "TEXCOORD_0" in values and BASE_COLOR in maps:
        uv = values["TEXCOORD_0"].astype(np.float64)
        uv[:, 1] = 1.0 - uv[:, 1]
        visual = textured_visual(TextureMaps(uv=uv, maps=maps, pbr=len(maps) > 1))
    elif "COLOR_0" in values:
        visual = trimesh.visual.ColorVisuals(vertex_colors=values["COLOR_0"])
    return trimesh.Trimesh(
        vertices=values["POSITION"],
        faces=faces,
        vertex_normals=values.get("NORMAL"),
        visual=visual,
        process=False,
    )
