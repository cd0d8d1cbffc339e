"""Levels of detail: the mesh simplified to shares of its faces, colours and UVs kept.

meshoptimizer's ``simplify_with_attributes`` collapses edges onto existing vertices, so every
LOD vertex is one of the original's, with its colour or UV; colour and UV seams (vertices split
by `weld_vertices`) are respected. A target error of 1.0 (the whole model) lets it go on until
it reaches the face count; each LOD's ``metadata["lod"]`` says whether it did and how far it
strayed (`surface_deviation`).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import meshoptimizer
import numpy as np
import trimesh
from scipy.spatial import cKDTree

from sweedle_core.export.glb import mesh_to_glb, read_glb, view_bytes
from sweedle_core.export.mesh_io import (
    read_raw_mesh,
    seamless_normals,
    take_vertices,
    vertex_colors_of,
    vertex_uv_of,
)
from sweedle_core.export.mesh_optimizer import weld_vertices
from sweedle_core.export.validator import duplicate_faces
from sweedle_core.storage.atomic import write_atomic

# A level counts as reached when its face count is within this share of the requested one.
FACE_SHARE_TOLERANCE = 0.05
# meshoptimizer's error is relative to the model's size: 1.0 means "stop only at the count".
_TARGET_ERROR = 1.0
# Colours in 0..1 weigh like positions in model sizes; meshoptimizer suggests ~1 for both.
_COLOR_WEIGHT = 1.0
_UV_WEIGHT = 1.0


def simplify_mesh(
    mesh: trimesh.Trimesh, face_share: float, *, measure: bool = False
) -> trimesh.Trimesh:
    """``mesh`` (welded first, see `weld_vertices`) simplified to ``face_share`` of its faces.

    Vertex colours ``(n, 4) uint8`` or UVs with the material are kept, smooth normals
    ``(n, 3)`` stored. ``metadata["lod"]`` holds ``face_share`` (asked), ``achieved_share``,
    ``reached`` (within 5 %), ``meshopt_error`` and, when ``measure``, ``surface_deviation``:
    both relative to the bounding-box diagonal. A share of 1 or more returns the welded mesh.
    """
    source, faces = weld_vertices(mesh)
    return _simplify(take_vertices(mesh, source, faces), face_share, measure)


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


def build_lods(
    mesh: trimesh.Trimesh, levels: Sequence[float], *, measure: bool = False
) -> list[trimesh.Trimesh]:
    """One mesh per share in ``levels`` (decreasing), shares relative to the full (welded)
    mesh; see `simplify_mesh`.

    Each level is simplified from the one before (a cascade): the coarser levels then start
    from fewer faces, which halves the chain's time, and ``meshopt_error`` adds up along the
    cascade (an upper bound). ``measure`` simplifies every level from the full mesh instead and
    adds ``surface_deviation`` (~1 s per level at 500k faces).
    """
    source, faces = weld_vertices(mesh)
    base = take_vertices(mesh, source, faces)
    if measure:
        return [_simplify(base, level, measure) for level in levels]
    lods: list[trimesh.Trimesh] = []
    current, current_share, error = base, 1.0, 0.0
    for level in levels:
        lod = _simplify(current, level / current_share, False)
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


def generate_lods(
    mesh_path: Path | str,
    output_dir: Path | str,
    levels: Sequence[float] = (1.0, 0.5, 0.25, 0.1),
) -> list[dict[str, Any]]:
    """Load a GLB, OBJ, PLY or raw ``.npz`` mesh, write ``output_dir/lod{i}.glb`` per level,
    and return per level ``{level, path, faces, vertices, error, reached}``; ``error`` holds
    ``meshopt`` (meshoptimizer's estimate) and ``surface_deviation`` (the farthest original
    vertex from the LOD's surface), both relative to the bounding-box diagonal."""
    mesh = load_mesh(Path(mesh_path))
    records = []
    for index, (level, lod) in enumerate(
        zip(levels, build_lods(mesh, levels, measure=True), strict=True)
    ):
        path = Path(output_dir) / f"lod{index}.glb"
        write_atomic(path, mesh_to_glb(lod))
        info = lod.metadata["lod"]
        records.append(
            {
                "level": float(level),
                "path": str(path),
                "faces": len(lod.faces),
                "vertices": len(lod.vertices),
                "error": {
                    "meshopt": info["meshopt_error"],
                    "surface_deviation": info["surface_deviation"],
                },
                "reached": info["reached"],
            }
        )
    return records


def _simplify(mesh: trimesh.Trimesh, face_share: float, measure: bool) -> trimesh.Trimesh:
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
        "surface_deviation": None,
    }
    if measure:
        # LOD vertices are original vertices (distance 0): only the dropped ones can stray.
        deviation = surface_deviation(vertices[~used], vertices, kept[faces])
        lod.metadata["lod"]["surface_deviation"] = deviation / scale
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


def surface_deviation(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> float:
    """The largest distance from any of ``points (k, 3)`` to the surface ``vertices (n, 3)``,
    ``faces (m, 3)``: exact, not sampled.

    Each point first gets an upper bound from the triangle with the nearest centre; points
    are then settled, farthest bound first, against every triangle that could be closer
    (centre within bound + the triangle's reach), until no bound exceeds the maximum found.
    """
    if len(points) == 0 or len(faces) == 0:
        return 0.0
    triangles = np.asarray(vertices, dtype=np.float64)[faces]
    centres = triangles.mean(axis=1)
    reach = float(np.linalg.norm(triangles - centres[:, None], axis=2).max())
    table = _triangle_table(triangles)
    tree = cKDTree(centres)
    points = np.asarray(points, dtype=np.float64)
    _, nearest = tree.query(points, k=1, workers=-1)
    bound = _distances(points, table[nearest])

    def settle(chosen: np.ndarray) -> np.ndarray:
        lists = tree.query_ball_point(points[chosen], bound[chosen] + reach, workers=-1)
        lengths = np.fromiter(map(len, lists), np.int64, len(lists))
        candidates = np.fromiter((i for group in lists for i in group), np.int64, lengths.sum())
        distance = _distances(np.repeat(points[chosen], lengths, axis=0), table[candidates])
        return np.minimum.reduceat(distance, np.r_[0, np.cumsum(lengths)[:-1]])

    order = np.argsort(-bound)
    found = float(settle(order[:64]).max())
    live = np.flatnonzero(bound > found)
    if len(live):  # tighten the remaining bounds with the 8 nearest centres first
        k = min(8, len(faces))
        _, near = tree.query(points[live], k=k, workers=-1)
        pairs = _distances(np.repeat(points[live], k, axis=0), table[near.reshape(-1)])
        bound[live] = np.minimum(bound[live], pairs.reshape(-1, k).min(axis=1))
        live = live[np.argsort(-bound[live])]
    for start in range(0, len(live), 1024):
        batch = live[start : start + 1024]
        batch = batch[bound[batch] > found]
        if len(batch) == 0:
            break
        found = max(found, float(settle(batch).max()))
    return found


def _triangle_table(triangles: np.ndarray) -> np.ndarray:
    """Per-triangle constants ``(m, 34)`` for `_distances`: corners a b c, edges ab bc ca,
    in-plane edge normals, unit normal, inverse squared edge lengths, non-degenerate flag."""
    a, b, c = triangles[:, 0], triangles[:, 1], triangles[:, 2]
    ab, bc, ca = b - a, c - b, a - c
    normal = np.cross(ab, -ca)
    length = np.linalg.norm(normal, axis=1)
    flat = length > 0
    unit = normal / np.where(flat, length, 1.0)[:, None]
    inverse = [1.0 / np.maximum(np.einsum("ij,ij->i", e, e), 1e-300) for e in (ab, bc, ca)]
    columns = [a, b, c, ab, bc, ca, np.cross(unit, ab), np.cross(unit, bc), np.cross(unit, ca)]
    columns += [unit, np.stack(inverse, axis=1), flat[:, None]]
    return np.ascontiguousarray(np.column_stack(columns))


def _distances(points: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Distance ``(k,)`` from each of ``points (k, 3)`` to its triangle, ``rows (k, 34)`` of
    `_triangle_table`: to the plane when the point projects inside, else to the nearest edge."""
    t = rows.T
    px, py, pz = points.T
    inside = t[33] > 0
    nearest_edge = np.full(len(points), np.inf)
    for corner in range(3):
        o, e, m = t[3 * corner : 3 * corner + 3], t[9 + 3 * corner :], t[18 + 3 * corner :]
        qx, qy, qz = px - o[0], py - o[1], pz - o[2]
        inside &= qx * m[0] + qy * m[1] + qz * m[2] >= 0
        s = np.clip((qx * e[0] + qy * e[1] + qz * e[2]) * t[30 + corner], 0.0, 1.0)
        dx, dy, dz = qx - s * e[0], qy - s * e[1], qz - s * e[2]
        np.minimum(nearest_edge, dx * dx + dy * dy + dz * dz, out=nearest_edge)
    plane = np.abs((px - t[0]) * t[27] + (py - t[1]) * t[28] + (pz - t[2]) * t[29])
    return np.where(inside, plane, np.sqrt(nearest_edge))


def load_mesh(path: Path) -> trimesh.Trimesh:
    """A mesh from a raw ``.npz`` (`read_raw_mesh`) or any file trimesh reads (GLB, OBJ,
    PLY...), unprocessed. A GLB's COLOR_0 is restored: trimesh drops it when the primitive
    has a material, as ours do."""
    if path.suffix.lower() == ".npz":
        return read_raw_mesh(path)
    mesh = trimesh.load(path, force="mesh", process=False)
    if not isinstance(mesh, trimesh.Trimesh):
        raise ValueError(f"{path} holds no triangle mesh")
    if path.suffix.lower() == ".glb" and vertex_uv_of(mesh) is None:
        colors = _glb_colors(path.read_bytes(), len(mesh.vertices))
        if colors is not None:
            mesh = trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_colors=colors, process=False)
    return mesh


def _glb_colors(data: bytes, vertex_count: int) -> np.ndarray | None:
    """COLOR_0 ``(n, 4) uint8`` of a GLB's only primitive, or None."""
    document, binary = read_glb(data)
    primitives = [p for m in document.get("meshes", []) for p in m.get("primitives", [])]
    if len(primitives) != 1 or "COLOR_0" not in primitives[0].get("attributes", {}):
        return None
    accessor = document["accessors"][primitives[0]["attributes"]["COLOR_0"]]
    dtype = {5121: np.uint8, 5123: np.uint16, 5126: np.float32}.get(accessor["componentType"])
    width = {"VEC3": 3, "VEC4": 4}.get(accessor["type"])
    if dtype is None or width is None or accessor["count"] != vertex_count:
        return None
    view = document["bufferViews"][accessor["bufferView"]]
    item = np.dtype(dtype).itemsize
    stride = view.get("byteStride", item * width)
    raw = np.frombuffer(view_bytes(document, binary, accessor["bufferView"]), np.uint8)
    start = accessor.get("byteOffset", 0)
    if start + (vertex_count - 1) * stride + width * item > len(raw):
        return None
    rows = np.lib.stride_tricks.as_strided(
        raw[start:], shape=(vertex_count, width * item), strides=(stride, 1)
    )
    values = np.ascontiguousarray(rows).view(dtype).reshape(vertex_count, width)
    scale = {np.uint8: 1.0, np.uint16: 255.0 / 65535.0, np.float32: 255.0}[dtype]
    colors = np.full((vertex_count, 4), 255, dtype=np.uint8)
    colors[:, :width] = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    return colors
