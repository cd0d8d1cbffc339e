"""Levels of detail: the mesh simplified to shares of its faces, colours and UVs kept.

meshoptimizer's ``simplify_with_attributes`` collapses edges onto existing vertices, so every
LOD vertex is one of the original's, with its colour or UV; colour and UV seams (vertices split
by `weld_vertices`) are respected. A target error of 1.0 (the whole model) lets it go on until
it reaches the face count; each LOD's ``metadata["lod"]`` says whether it did and what
meshoptimizer estimates it strayed.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import meshoptimizer
import numpy as np
import trimesh

from sweedle_core.export.mesh_io import (
    seamless_normals,
    take_vertices,
    vertex_colors_of,
    vertex_uv_of,
)
from sweedle_core.export.mesh_optimizer import weld_vertices
from sweedle_core.export.validator import duplicate_faces

# A level counts as reached when its face count is within this share of the requested one.
FACE_SHARE_TOLERANCE = 0.05
# meshoptimizer's error is relative to the model's size: 1.0 means "stop only at the count".
_TARGET_ERROR = 1.0
# Colours in 0..1 weigh like positions in model sizes; meshoptimizer suggests ~1 for both.
_COLOR_WEIGHT = 1.0
_UV_WEIGHT = 1.0


def simplify_mesh(mesh: trimesh.Trimesh, face_share: float) -> trimesh.Trimesh:
    """``mesh`` (welded first, see `weld_vertices`) simplified to ``face_share`` of its faces.

    Vertex colours ``(n, 4) uint8`` or UVs with the material are kept, smooth normals
    ``(n, 3)`` stored. ``metadata["lod"]`` holds ``face_share`` (asked), ``achieved_share``,
    ``reached`` (within 5 %) and ``meshopt_error``, relative to the bounding-box diagonal. A
    share of 1 or more returns the welded mesh.
    """
    source, faces = weld_vertices(mesh)
    return _simplify(take_vertices(mesh, source, faces), face_share)


def within_budget(mesh: trimesh.Trimesh, max_faces: int) -> trimesh.Trimesh:
    """``mesh`` reduced to the face budget ``max_faces`` by the LODs' simplifier (which keeps a
    closed surface closed), or ``mesh`` itself when it is within it. Geometry only: for a mesh
    not yet coloured."""
    if len(mesh.faces) <= max_faces:
        return mesh
    reduced = simplify_mesh(mesh, max_faces / len(mesh.faces))
    faces, count = np.asarray(reduced.faces), len(reduced.vertices)
    # Where two sheets nearly touch (a thin rim), a collapse can fold two faces onto the same
    # three vertices: a fin of no volume whose edge then has four faces. Both faces go.
    fin = duplicate_faces(faces, count) | duplicate_faces(faces[::-1], count)[::-1]
    result = trimesh.Trimesh(vertices=reduced.vertices, faces=faces[~fin], process=False)
    result.remove_unreferenced_vertices()
    return result


def build_lods(mesh: trimesh.Trimesh, levels: Sequence[float]) -> list[trimesh.Trimesh]:
    """One mesh per share in ``levels`` (decreasing), shares relative to the full (welded)
    mesh; see `simplify_mesh`.

    Each level is simplified from the one before (a cascade): the coarser levels then start
    from fewer faces, which halves the chain's time, and ``meshopt_error`` adds up along the
    cascade (an upper bound).
    """
    source, faces = weld_vertices(mesh)
    base = take_vertices(mesh, source, faces)
    lods: list[trimesh.Trimesh] = []
    current, current_share, error = base, 1.0, 0.0
    for level in levels:
        lod = _simplify(current, level / current_share)
        info = lod.metadata["lod"]
        achieved = len(lod.faces) / max(len(base.faces), 1)
        error += info["meshopt_error"]
        info.update(
            face_share=float(level),
            achieved_share=achieved,
            reached=abs(achieved - level) <= FACE_SHARE_TOLERANCE * level,
            meshopt_error=error,
        )
        lods.append(lod)
        current, current_share = lod, achieved
    return lods


def _simplify(mesh: trimesh.Trimesh, face_share: float) -> trimesh.Trimesh:
    """`simplify_mesh` on an already welded ``mesh``."""
    if not face_share > 0:
        raise ValueError(f"a LOD's face share must be above 0, not {face_share}")
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    target = max(int(round(len(faces) * face_share)), 1)
    error = 0.0
    if face_share < 1.0 and len(faces):
        indices = np.ascontiguousarray(faces, dtype=np.uint32).ravel()
        positions = np.ascontiguousarray(vertices, dtype=np.float32)
        attributes, weights = _attributes(mesh)
        simplified, error = _meshopt_simplify(indices, positions, attributes, weights, target, 0)
        if len(simplified) > target * (1 + FACE_SHARE_TOLERANCE):
            # Pruning lets it drop small pieces whole. Kept only if that reaches the target:
            # where seams lock every edge it removes everything.
            pruned, pruned_error = _meshopt_simplify(
                indices, positions, attributes, weights, target, meshoptimizer.SIMPLIFY_PRUNE
            )
            if abs(len(pruned) - target) <= FACE_SHARE_TOLERANCE * target:
                simplified, error = pruned, pruned_error
        faces = simplified.astype(np.int64)
        extent = float(meshoptimizer.simplify_scale(positions))
        error *= extent  # meshoptimizer's error is relative to the largest extent
    used = np.zeros(len(vertices), dtype=bool)
    used[faces.ravel()] = True
    kept = np.flatnonzero(used)
    faces = (np.cumsum(used) - 1)[faces]
    normals = seamless_normals(vertices[kept], faces)  # seams shade alike
    lod = take_vertices(mesh, kept, faces, normals)

    diagonal = float(np.linalg.norm(np.ptp(vertices, axis=0))) if len(vertices) else 0.0
    scale = diagonal if diagonal > 0 else 1.0
    achieved = len(faces) / max(len(mesh.faces), 1)
    lod.metadata["lod"] = {
        "face_share": float(face_share),
        "achieved_share": achieved,
        "reached": abs(len(faces) - target) <= FACE_SHARE_TOLERANCE * target,
        "meshopt_error": error / scale,
    }
    return lod


def _attributes(mesh: trimesh.Trimesh) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(attributes (n, k) float32, weights (k,) float32)`` for the simplifier: UVs when
    textured, else colours in 0..1, else ``(None, None)``."""
    uv = vertex_uv_of(mesh)
    if uv is not None:
        return np.ascontiguousarray(uv, dtype=np.float32), np.full(2, _UV_WEIGHT, np.float32)
    colors = vertex_colors_of(mesh)
    if colors is not None:
        values = np.ascontiguousarray(colors, dtype=np.float32) / 255.0
        return values, np.full(4, _COLOR_WEIGHT, np.float32)
    return None, None


def _meshopt_simplify(
    indices: np.ndarray,
    positions: np.ndarray,
    attributes: np.ndarray | None,
    weights: np.ndarray | None,
    target_faces: int,
    options: int,
) -> tuple[np.ndarray, float]:
    """``(faces (m, 3) uint32, error)``; ``indices (3f,) uint32``, ``positions (n, 3)
    float32``, ``attributes (n, k) float32`` or None. The error is relative to the largest
    extent (meshoptimizer's convention)."""
    destination = np.zeros(len(indices), dtype=np.uint32)
    result_error = np.zeros(1, dtype=np.float32)
    if attributes is None or weights is None:
        count = meshoptimizer.simplify(
            destination,
            indices,
            positions,
            index_count=len(indices),
            vertex_count=len(positions),
            vertex_positions_stride=12,
            target_index_count=3 * target_faces,
            target_error=_TARGET_ERROR,
            options=options,
            result_error=result_error,
        )
    else:
        # The binding declares no ctypes argtypes for this function: a Python float cannot
        # be passed at all and Python ints go as 32-bit ints where the C function reads
        # size_t (it crashes), so every scalar goes in as its C type.
        size = ctypes.c_size_t
        count = meshoptimizer.simplify_with_attributes(
            destination,
            indices,
            positions,
            attributes,
            weights,
            index_count=size(len(indices)),
            vertex_count=size(len(positions)),
            vertex_positions_stride=size(positions.strides[0]),
            vertex_attributes_stride=size(attributes.strides[0]),
            attribute_count=size(len(weights)),
            target_index_count=size(3 * target_faces),
            target_error=ctypes.c_float(_TARGET_ERROR),
            options=ctypes.c_uint(options),
            result_error=result_error,
        )
    return destination[: int(count)].reshape(-1, 3), float(result_error[0])
