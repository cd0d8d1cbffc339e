"""Every output format Sweedle writes: a name -> exporter dict, and each format's media type.

All exporters take a ``trimesh.Trimesh`` and return the file's bytes; each winds the faces
outward first, so a mesh looks the same whichever format it leaves in.
"""

from __future__ import annotations

from collections.abc import Callable

import trimesh
from trimesh.exchange.obj import export_obj
from trimesh.exchange.ply import export_ply
from trimesh.exchange.stl import export_stl

from sweedle_core.export.glb import mesh_to_glb
from sweedle_core.export.mesh_io import outward_winding


def mesh_to_obj(mesh: trimesh.Trimesh) -> bytes:
    """Wavefront OBJ with vertex normals and, when the mesh has them, vertex colours
    (the common ``v x y z r g b`` extension)."""
    text = export_obj(
        outward_winding(mesh), include_normals=True, include_color=True, include_texture=False
    )
    return text.encode("utf-8")


def mesh_to_ply(mesh: trimesh.Trimesh) -> bytes:
    """Binary little-endian PLY with vertex colours when the mesh has them."""
    return export_ply(outward_winding(mesh), encoding="binary")


def mesh_to_stl(mesh: trimesh.Trimesh) -> bytes:
    """Binary STL (geometry only: STL has no colours)."""
    return export_stl(outward_winding(mesh))


EXPORTERS: dict[str, Callable[[trimesh.Trimesh], bytes]] = {
    "glb": mesh_to_glb,
    "obj": mesh_to_obj,
    "ply": mesh_to_ply,
    "stl": mesh_to_stl,
}

# IANA registrations where they exist; PLY has none, so it is sent as plain bytes.
MEDIA_TYPES: dict[str, str] = {
    "glb": "model/gltf-binary",
    "obj": "model/obj",
    "ply": "application/octet-stream",
    "stl": "model/stl",
}
