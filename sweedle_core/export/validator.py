"""A mesh's health report: what a user needs to know before shipping it to an engine or printer.

`validate_mesh` is read-only and JSON-ready. The checks it uses (`position_ids`,
`degenerate_faces`, `duplicate_faces`, `face_components`, `edge_counts`) are public because
`mesh_optimizer` repairs exactly what they find. Everything is sorting and ``bincount`` on
integer keys: ~0.35 s for 500k faces on 2 cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from sweedle_core.export.mesh_io import (
    position_ids,
    signed_volume,
    smooth_normals,
    vertex_colors_of,
)
from sweedle_core.export.texture_maps import texture_maps_of
from sweedle_core.generation.protocol import TEXTURE_FALLBACK_KEY

# A face whose area is below this share of the bounding-box diagonal squared is degenerate:
# float32 positions carry ~1e-7 relative precision, so smaller areas are rounding noise.
DEGENERATE_AREA_SHARE = 1e-12
# A piece whose area is below this share of the largest piece's counts as a floater.
FLOATER_AREA_SHARE = 0.01
# An open mesh's signed volume (about its centre) is read as a winding hint only when it is
# larger than this share of the diagonal cubed; smaller volumes are noise.
_OPEN_VOLUME_SHARE = 1e-3
# Stored normals "agree" with the faces when this share of vertices point the same way.
_NORMALS_AGREE_SHARE = 0.99


@dataclass(frozen=True)
class EdgeCounts:
    """Undirected edges by how many faces share them."""

    edges: int  # distinct undirected edges
    boundary: int  # used by one face: the rim of a hole
    non_manifold: int  # used by three or more faces
    inconsistent: int  # used by two faces that run it the same way (flipped neighbours)


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area of each face ``(m,) float64``; ``vertices (n, 3)``, ``faces (m, 3) int``."""
    v = np.asarray(vertices, dtype=np.float64)
    # Per axis on contiguous columns: ~2x faster than np.cross on (m, 3) rows.
    x, y, z = (np.ascontiguousarray(v[:, i])[faces] for i in range(3))
    ux, uy, uz = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0], z[:, 1] - z[:, 0]
    wx, wy, wz = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0], z[:, 2] - z[:, 0]
    cx, cy, cz = uy * wz - uz * wy, uz * wx - ux * wz, ux * wy - uy * wx
    return 0.5 * np.sqrt(cx * cx + cy * cy + cz * cz)


def repeated_index(faces: np.ndarray) -> np.ndarray:
    """Mask ``(m,) bool`` of the faces ``(m, 3)`` that name a vertex twice."""
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2])
    return repeated | (faces[:, 0] == faces[:, 2])


def degenerate_faces(
    faces: np.ndarray, areas: np.ndarray, diagonal: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(repeated, zero_area)`` masks ``(m,) bool``: faces naming a vertex twice, and the
    other faces whose area (``areas (m,)``) is nil at the scale of ``diagonal``."""
    repeated = repeated_index(faces)
    zero_area = ~repeated & (areas <= DEGENERATE_AREA_SHARE * diagonal * diagonal)
    return repeated, zero_area


def duplicate_faces(faces: np.ndarray, vertex_count: int) -> np.ndarray:
    """Mask ``(m,) bool`` of faces over the same three vertices as an earlier face, in any
    order or winding (the first of each group is kept, so ``~mask`` selects unique faces)."""
    ordered = np.sort(np.asarray(faces, dtype=np.int64), axis=1)
    n = max(int(vertex_count), 1)
    if n**3 < 2**62:
        keys = (ordered[:, 0] * n + ordered[:, 1]) * n + ordered[:, 2]
    else:  # too many vertices to pack three indices in one int64
        keys = np.unique(ordered, axis=0, return_inverse=True)[1].ravel()
    mask = np.zeros(len(faces), dtype=bool)
    ordered_keys = np.sort(keys)
    if not (ordered_keys[1:] == ordered_keys[:-1]).any():
        return mask  # the usual case, without the slower stable argsort
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    mask[order[1:][sorted_keys[1:] == sorted_keys[:-1]]] = True
    return mask


def face_components(faces: np.ndarray, vertex_count: int) -> tuple[int, np.ndarray]:
    """``(count, labels (m,) int)``: faces grouped into pieces that share vertices, labelled
    ``0..count-1``."""
    if len(faces) == 0:
        return 0, np.zeros(0, dtype=np.int64)
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = coo_matrix(
        (np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(vertex_count, vertex_count)
    )
    count, vertex_labels = connected_components(graph, directed=False)
    # Unused vertices are pieces of their own: renumber over the faces' pieces only.
    labels = vertex_labels[faces[:, 0]]
    used = np.zeros(count, dtype=bool)
    used[labels] = True
    return int(np.count_nonzero(used)), (np.cumsum(used) - 1)[labels]


def edge_counts(faces: np.ndarray, vertex_count: int) -> EdgeCounts:
    """How the faces ``(m, 3)`` share their edges (see `EdgeCounts`)."""
    start = np.asarray(faces, dtype=np.int64).ravel()
    end = np.asarray(faces, dtype=np.int64)[:, [1, 2, 0]].ravel()
    low, high = np.minimum(start, end), np.maximum(start, end)
    # The lowest bit records the direction, so one sort groups edges and shows which way
    # each face runs them: two faces agreeing on orientation run a shared edge oppositely.
    keys = np.sort((low * max(int(vertex_count), 1) + high) * 2 + (start < end))
    edge = keys >> 1
    starts = np.flatnonzero(np.r_[True, edge[1:] != edge[:-1]])
    counts = np.diff(np.r_[starts, len(edge)])
    pairs = starts[counts == 2]
    return EdgeCounts(
        edges=len(starts),
        boundary=int(np.count_nonzero(counts == 1)),
        non_manifold=int(np.count_nonzero(counts > 2)),
        inconsistent=int(np.count_nonzero(keys[pairs] == keys[pairs + 1])),
    )


def validate_mesh(mesh: trimesh.Trimesh) -> dict[str, Any]:
    """A JSON-ready report on ``mesh``: counts, bounds, topology, winding, normals and
    attributes, plus ``problems`` (sentences saying what is wrong and what to do) and ``ok``
    (no problems). Topology (edges, watertightness, pieces, duplicates) is judged by position,
    so colour and UV seams are not holes. The mesh is not changed, and nothing is cached on it.
    """
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    n, m = len(vertices), len(faces)
    problems: list[str] = []
    report: dict[str, Any] = {"vertices": n, "faces": m}
    if m == 0:
        report.update(ok=False, problems=["the mesh has no faces: regenerate it"])
        return report

    used = np.zeros(n, dtype=bool)
    used[faces.ravel()] = True
    finite = bool(np.isfinite(vertices[used]).all())
    if not finite:
        problems.append("some vertices are not finite numbers (NaN or inf): regenerate the mesh")
        vertices = np.nan_to_num(vertices, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = vertices[used].min(axis=0), vertices[used].max(axis=0)
    diagonal = float(np.linalg.norm(high - low))
    report["bounds"] = {
        "min": low.tolist(),
        "max": high.tolist(),
        "extents": (high - low).tolist(),
        "diagonal": diagonal,
    }
    report["unreferenced_vertices"] = n - int(np.count_nonzero(used))
    ids, first = position_ids(vertices)
    report["seam_vertices"] = n - len(first)  # share a position with another vertex

    areas = face_areas(vertices, faces)
    repeated, zero_area = degenerate_faces(faces, areas, diagonal)
    degenerate = int(np.count_nonzero(repeated) + np.count_nonzero(zero_area))
    report["degenerate_faces"] = {
        "repeated_index": int(np.count_nonzero(repeated)),
        "zero_area": int(np.count_nonzero(zero_area)),
    }
    if degenerate:
        problems.append(
            f"{degenerate} degenerate faces (zero area or a vertex used twice): "
            "run the optimiser to drop or collapse them"
        )
    # Topology over positions (seams joined), without faces that collapse to an edge.
    surface = ids[faces]
    proper = ~repeated_index(surface)
    surface, areas = surface[proper], areas[proper]
    duplicates = int(np.count_nonzero(duplicate_faces(surface, len(first))))
    report["duplicate_faces"] = duplicates
    if duplicates:
        problems.append(
            f"{duplicates} duplicate faces (z-fighting, doubled triangle count): "
            "run the optimiser to drop them"
        )

    edges = edge_counts(surface, len(first))
    watertight = edges.boundary == 0 and edges.non_manifold == 0
    report["edges"] = {
        "count": edges.edges,
        "boundary": edges.boundary,
        "non_manifold": edges.non_manifold,
        "inconsistent_winding": edges.inconsistent,
    }
    report["watertight"] = watertight
    if edges.boundary:
        problems.append(
            f"{edges.boundary} boundary edges: the surface has holes, so it is not watertight "
            "(fill them before 3D printing or computing a volume)"
        )
    if edges.non_manifold:
        problems.append(
            f"{edges.non_manifold} non-manifold edges (shared by three or more faces): "
            "remesh or repair the model before printing or further editing"
        )
    if edges.inconsistent:
        problems.append(
            f"{edges.inconsistent} edges between faces wound in opposite directions: some "
            "faces are flipped, so they render black or vanish with back-face culling"
        )

    count, labels = face_components(surface, len(first))
    piece_areas = np.bincount(labels, weights=areas, minlength=max(count, 1))
    piece_faces = np.bincount(labels, minlength=max(count, 1))
    largest = int(np.argmax(piece_areas))
    floaters = int(np.count_nonzero(piece_areas < FLOATER_AREA_SHARE * piece_areas[largest]))
    report["components"] = {
        "count": count,
        "largest_face_share": float(piece_faces[largest] / m),
        "floaters": floaters if count else 0,
    }
    if floaters:
        problems.append(
            f"{floaters} small disconnected pieces (floaters, under "
            f"{FLOATER_AREA_SHARE:.0%} of the main piece's area): run the optimiser to drop them"
        )

    volume = signed_volume(vertices - (low + high) / 2, faces)
    report["signed_volume"] = volume
    if watertight:
        report["winding"] = "outward" if volume >= 0 else "inward"
    else:
        report["winding"] = "open"
    if volume < 0 and (watertight or -volume > _OPEN_VOLUME_SHARE * diagonal**3):
        problems.append(
            "faces are wound inward (negative volume): engines cull them and the model renders "
            "inside out; run the optimiser to flip them"
        )

    report["normals"] = _normals_report(mesh, vertices, faces, used)
    if report["normals"]["present"] and not report["normals"]["unit_length"]:
        problems.append("stored vertex normals are not unit length: recompute them")
    if report["normals"]["present"] and not report["normals"]["agree_with_winding"]:
        problems.append(
            "stored vertex normals point against the faces' winding (lighting will be "
            "inverted): recompute them"
        )

    report["attributes"] = _attributes_report(mesh)
    report["problems"] = problems
    report["ok"] = not problems
    return report


def _normals_report(
    mesh: trimesh.Trimesh, vertices: np.ndarray, faces: np.ndarray, used: np.ndarray
) -> dict[str, Any]:
    """Whether ``mesh`` carries vertex normals (loaded or set, not computed on demand), are
    of unit length, and point to the side the faces are wound to."""
    # trimesh computes vertex_normals on access; only a cached array was given to it.
    if "vertex_normals" not in mesh._cache:
        return {"present": False, "unit_length": None, "agree_with_winding": None}
    stored = np.asarray(mesh.vertex_normals, dtype=np.float64)
    if stored.shape != vertices.shape:
        return {"present": False, "unit_length": None, "agree_with_winding": None}
    stored = stored[used]
    length = np.linalg.norm(stored, axis=1)
    geometric = smooth_normals(vertices, faces)[used]
    agree = np.count_nonzero(np.einsum("ij,ij->i", stored, geometric) > 0) / max(len(stored), 1)
    return {
        "present": True,
        "unit_length": bool(np.all(np.abs(length - 1.0) < 1e-3)),
        "agree_with_winding": bool(agree >= _NORMALS_AGREE_SHARE),
        "agreeing_share": float(agree),
    }


def _attributes_report(mesh: trimesh.Trimesh) -> dict[str, Any]:
    """Which per-vertex attributes and texture maps ``mesh`` carries: ``texture_maps`` (glTF
    names) with ``texture_size`` ``[width, height]`` of the base colour, and, when the photo
    could not be baked into a texture, ``texture_fallback`` (why it has vertex colours)."""
    visual = mesh.visual
    textured = visual is not None and visual.kind == "texture"
    uv = getattr(visual, "uv", None) if textured else None
    textures = texture_maps_of(mesh)
    report: dict[str, Any] = {
        "vertex_colors": vertex_colors_of(mesh) is not None,
        "uv": uv is not None and len(uv) == len(mesh.vertices),
        "texture": textures is not None,
        "texture_maps": [] if textures is None else list(textures.maps),
        "texture_size": None if textures is None else list(textures.base_color.size),
    }
    if TEXTURE_FALLBACK_KEY in mesh.metadata:
        report["texture_fallback"] = str(mesh.metadata[TEXTURE_FALLBACK_KEY])
    return report
