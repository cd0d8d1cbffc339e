"""How far a simplified mesh strays from the original: the largest distance from the original's
vertices to the simplified surface, exact, fast enough for tests on meshes of 10k-100k faces."""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial import cKDTree


def lod_deviation(original: trimesh.Trimesh, lod: trimesh.Trimesh) -> float:
    """`surface_deviation` of ``original``'s vertices from ``lod``'s surface, relative to
    ``original``'s bounding-box diagonal (as meshoptimizer's error is)."""
    vertices = np.asarray(original.vertices, dtype=np.float64)
    diagonal = float(np.linalg.norm(np.ptp(vertices, axis=0)))
    found = surface_deviation(vertices, np.asarray(lod.vertices), np.asarray(lod.faces))
    return found / diagonal


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
