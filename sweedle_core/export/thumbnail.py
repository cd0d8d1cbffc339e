"""A preview of a mesh as pixels, rendered on the CPU with a vectorised numpy z-buffer: the
fallback of `thumbnail_generator.make_thumbnail` where OpenGL is unavailable.

No OpenGL and no display: triangles are rasterised in batches (per-triangle bounding boxes
expanded into candidate pixels, barycentric inside tests, a depth test with ``np.minimum.at``),
then the visible pixels are shaded with Lambert + ambient light from interpolated vertex normals
(smooth over positions, so UV seams do not show) and the base-colour texture read at each
pixel's interpolated UV, or interpolated vertex colours. The image is rendered at twice the size
and averaged down for anti-aliasing.
"""

from __future__ import annotations

import numpy as np
import trimesh

from sweedle_core.export.mesh_io import seamless_normals, signed_volume, vertex_colors_of
from sweedle_core.export.texture_maps import texture_maps_of

# Three-quarter view: the camera is in front (+Z), turned toward +X and raised above the middle.
_AZIMUTH_DEG = 35.0
_ELEVATION_DEG = 22.0
_MARGIN = 0.06  # of the image side, on every edge
_SUPERSAMPLE = 2
_AMBIENT = 0.35
_DIFFUSE = 0.65
# Light from the viewer's upper left, in camera coordinates (right, up, toward the viewer).
_LIGHT_CAMERA = np.array([-0.4, 0.6, 0.7])
_GREY = np.array([0.72, 0.72, 0.72], dtype=np.float32)
# Candidate pixels per rasterisation batch: bounds memory (~130 bytes each, ~70 MB) whatever
# the mesh.
_BATCH_PIXELS = 1 << 19
# Barycentric tolerance, so pixel centres on a shared edge are never missed by both triangles.
_EDGE_EPS = 1e-4


def render_rgba(mesh: trimesh.Trimesh, size: int) -> np.ndarray:
    """A ``size`` x ``size`` image of ``mesh`` in a three-quarter view from the front: ``(size,
    size, 4) uint8``, straight (not premultiplied) alpha.

    The object is framed with a small margin on a transparent background; the base-colour
    texture or vertex colours are used when present, grey otherwise. An empty mesh gives a
    fully transparent image.
    """
    res = size * _SUPERSAMPLE
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    finite = np.asarray(np.isfinite(vertices).all(axis=1))
    if not finite.all():
        faces = faces[finite[faces].all(axis=1)]
    color = np.zeros((res * res, 3), dtype=np.float32)
    alpha = np.zeros(res * res, dtype=np.float32)
    if len(faces):
        right, up, toward = _camera_axes()
        cam = vertices @ np.stack([right, up, toward], axis=1)
        screen = _frame(cam, faces, res)
        pixels, face, bary = _rasterise(
            screen, -cam[:, 2], faces, res, cull=_facing_culled(vertices, faces)
        )
        if len(pixels):
            light = _LIGHT_CAMERA @ np.stack([right, up, toward])
            light /= np.linalg.norm(light)
            color[pixels] = _shade(mesh, faces, faces[face], bary, toward, light)
            alpha[pixels] = 1.0

    # Average each block of supersamples; colour is premultiplied by coverage while averaging.
    color = _downsample(color.reshape(res, res, 3))
    alpha = _downsample(alpha.reshape(res, res))
    straight = color / np.maximum(alpha, 1e-6)[..., None]
    out = np.empty((size, size, 4), dtype=np.uint8)
    out[..., :3] = np.clip(np.rint(straight * 255.0), 0, 255)
    out[..., 3] = np.clip(np.rint(alpha * 255.0), 0, 255)
    return out


def _downsample(image: np.ndarray) -> np.ndarray:
    """Mean of each ``_SUPERSAMPLE`` x ``_SUPERSAMPLE`` block (strided sums beat a reshape-mean)."""
    k = _SUPERSAMPLE
    total = sum(image[i::k, j::k] for i in range(k) for j in range(k))
    return np.asarray(total / np.float32(k * k))


def _camera_axes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors of the camera frame in world coordinates: right, up, toward the camera."""
    az, el = np.radians(_AZIMUTH_DEG), np.radians(_ELEVATION_DEG)
    toward = np.array([np.sin(az) * np.cos(el), np.sin(el), np.cos(az) * np.cos(el)])
    right = np.cross(np.array([0.0, 1.0, 0.0]), toward)
    right /= np.linalg.norm(right)
    up = np.cross(toward, right)
    return right, up, toward


def _frame(cam: np.ndarray, faces: np.ndarray, res: int) -> np.ndarray:
    """Orthographic projection of camera coordinates to pixels ``(n, 2)`` (x right, y down),
    scaled and centred so the used vertices fill the image inside the margin."""
    used = np.bincount(faces.ravel(), minlength=len(cam)) > 0
    lo = cam[used, :2].min(axis=0)
    hi = cam[used, :2].max(axis=0)
    span = float((hi - lo).max())
    scale = res * (1.0 - 2.0 * _MARGIN) / span if span > 0 else 1.0
    centre = (lo + hi) / 2.0
    screen = np.empty((len(cam), 2))
    screen[:, 0] = res / 2.0 + (cam[:, 0] - centre[0]) * scale
    screen[:, 1] = res / 2.0 - (cam[:, 1] - centre[1]) * scale
    return screen


def _facing_culled(vertices: np.ndarray, faces: np.ndarray) -> int:
    """Which faces may be skipped unseen: those whose screen-space orientation has this sign
    (+1 or -1), or none (0).

    Only a closed mesh with consistent winding hides its back faces behind front faces: each
    directed edge then appears once, and its reverse once. Anything else is drawn two-sided.
    """
    n = len(vertices)
    a = faces.ravel()
    b = faces[:, [1, 2, 0]].ravel()
    forward = np.sort(a * n + b)
    backward = np.sort(b * n + a)
    if not np.array_equal(forward, backward) or (forward[1:] == forward[:-1]).any():
        return 0
    # Outward winding looks clockwise on screen (y down) when the face points at the camera.
    return 1 if signed_volume(vertices, faces) > 0 else -1


def _plane_coefficients(screen: np.ndarray, depth: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Per face ``(m, 8) float32``: x0, y0, then (d/dx, d/dy) of barycentrics 1 and 2 and of
    depth, all relative to vertex 0 (small numbers, so float32 is exact enough); degenerate
    faces get NaN, which fails every inside test."""
    x = screen[faces, 0]
    y = screen[faces, 1]
    z = depth[faces]
    ex1, ey1 = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]
    ex2, ey2 = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0]
    det = ex1 * ey2 - ex2 * ey1
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(np.abs(det) > 1e-12, 1.0 / det, np.nan)
    coef = np.empty((len(faces), 8))
    coef[:, 0], coef[:, 1] = x[:, 0], y[:, 0]
    # Solve [ex1 ex2; ey1 ey2] @ (l1, l2) = (dx, dy).
    coef[:, 2], coef[:, 3] = ey2 * inv, -ex2 * inv
    coef[:, 4], coef[:, 5] = -ey1 * inv, ex1 * inv
    dz1, dz2 = z[:, 1] - z[:, 0], z[:, 2] - z[:, 0]
    coef[:, 6] = dz1 * coef[:, 2] + dz2 * coef[:, 4]
    coef[:, 7] = dz1 * coef[:, 3] + dz2 * coef[:, 5]
    return coef.astype(np.float32)


def _rasterise(
    screen: np.ndarray, depth: np.ndarray, faces: np.ndarray, res: int, cull: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The nearest face at each covered pixel centre.

    Returns the covered pixels ``(k,) int64`` (flat indices, row-major), the face seen at each
    ``(k,) int64`` and its barycentric coordinates there ``(k, 3) float32``.
    """
    coef = _plane_coefficients(screen, depth, faces)
    z0 = depth[faces[:, 0]].astype(np.float32)
    tri_x = screen[faces, 0]
    tri_y = screen[faces, 1]
    # Pixel centres are at integer + 0.5; keep the ones inside each face's bounding box.
    x_lo = np.clip(np.ceil(_min3(tri_x) - 0.5), 0, res).astype(np.int32)
    x_hi = np.clip(np.floor(_max3(tri_x) - 0.5), -1, res - 1).astype(np.int32)
    y_lo = np.clip(np.ceil(_min3(tri_y) - 0.5), 0, res).astype(np.int32)
    y_hi = np.clip(np.floor(_max3(tri_y) - 0.5), -1, res - 1).astype(np.int32)
    width = np.maximum(x_hi - x_lo + 1, 0)
    counts = width.astype(np.int64) * np.maximum(y_hi - y_lo + 1, 0)
    counts[np.isnan(coef[:, 2])] = 0
    if cull:
        # The barycentric gradients' determinant is 1 / (the face's doubled screen area).
        orientation = np.sign(coef[:, 2] * coef[:, 5] - coef[:, 3] * coef[:, 4])
        counts[orientation == cull] = 0

    live = np.flatnonzero(counts).astype(np.int32)
    ends = np.cumsum(counts[live])
    fragments: list[tuple[np.ndarray, ...]] = []
    start = 0
    while start < len(live):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + _BATCH_PIXELS, side="right")), start + 1)
        batch = live[start:stop]
        n = counts[batch]
        tri = np.repeat(batch, n)
        local = np.arange(len(tri), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
        w = width[tri]
        row = local // w
        px = x_lo[tri] + (local - row * w)
        py = y_lo[tri] + row

        c = coef[tri]
        dx = px.astype(np.float32) + np.float32(0.5) - c[:, 0]
        dy = py.astype(np.float32) + np.float32(0.5) - c[:, 1]
        l1 = c[:, 2] * dx + c[:, 3] * dy
        l2 = c[:, 4] * dx + c[:, 5] * dy
        inside = (l1 >= -_EDGE_EPS) & (l2 >= -_EDGE_EPS) & (l1 + l2 <= 1.0 + _EDGE_EPS)
        z = z0[tri] + c[:, 6] * dx + c[:, 7] * dy
        fragments.append(
            (py[inside] * res + px[inside], z[inside], tri[inside], l1[inside], l2[inside])
        )
        start = stop

    if not fragments:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, 3), dtype=np.float32)
    pixel, frag_z, frag_face, frag_l1, frag_l2 = (
        np.concatenate(a) for a in zip(*fragments, strict=True)
    )
    zbuf = np.full(res * res, np.inf, dtype=np.float32)
    np.minimum.at(zbuf, pixel, frag_z)
    # One winning fragment per pixel (ties: whichever is written last).
    winner = np.full(res * res, -1, dtype=np.int64)
    nearest = np.flatnonzero(frag_z == zbuf[pixel])
    winner[pixel[nearest]] = nearest
    pixels = np.flatnonzero(winner >= 0)
    won = winner[pixels]

    l1 = np.clip(frag_l1[won], 0.0, 1.0)
    l2 = np.clip(frag_l2[won], 0.0, 1.0)
    total = np.maximum(l1 + l2, 1.0)
    bary = np.column_stack([1.0 - (l1 + l2) / total, l1 / total, l2 / total])
    return pixels, frag_face[won].astype(np.int64), bary.astype(np.float32)


def _min3(a: np.ndarray) -> np.ndarray:
    """Row minimum of an ``(m, 3)`` array (a reduction over a length-3 axis is slow in numpy)."""
    return np.minimum(np.minimum(a[:, 0], a[:, 1]), a[:, 2])


def _max3(a: np.ndarray) -> np.ndarray:
    return np.maximum(np.maximum(a[:, 0], a[:, 1]), a[:, 2])


def _shade(
    mesh: trimesh.Trimesh,
    faces: np.ndarray,
    tri: np.ndarray,
    bary: np.ndarray,
    toward: np.ndarray,
    light: np.ndarray,
) -> np.ndarray:
    """Lit colour ``(k, 3) float32`` in [0, 1] at points given by the vertex indices of their
    faces ``tri (k, 3)`` and barycentric coordinates ``bary (k, 3)``; ``faces`` are all the
    mesh's faces (for the vertex normals)."""
    normals = seamless_normals(mesh.vertices, faces)
    n = _interpolate(normals, tri, bary)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    # Two-sided: a face seen from behind (an open or inverted mesh) is lit as if facing us.
    n[n @ toward.astype(np.float32) < 0] *= -1.0
    shade = _AMBIENT + _DIFFUSE * np.clip(n @ light.astype(np.float32), 0.0, None)

    return (_base_colors(mesh, tri, bary) * shade[:, None]).astype(np.float32)


def _base_colors(mesh: trimesh.Trimesh, tri: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Unlit colour ``(k, 3) float32`` in [0, 1] at each point: the texture (bilinear) at its
    interpolated UV, else its interpolated vertex colour, else grey."""
    textures = texture_maps_of(mesh)
    if textures is not None:
        uv = _interpolate(textures.uv, tri, bary)
        texels = trimesh.visual.color.uv_to_interpolated_color(uv, textures.base_color)
        return texels[:, :3].astype(np.float32) / np.float32(255.0)
    colors = vertex_colors_of(mesh)
    if colors is None:
        return np.broadcast_to(_GREY, (len(tri), 3))
    return _interpolate(colors[:, :3].astype(np.float32) / 255.0, tri, bary)


def _interpolate(values: np.ndarray, tri: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """Barycentric blend of per-vertex ``values (n, c)``: ``(k, c) float32``."""
    v = values.astype(np.float32, copy=False)
    return v[tri[:, 0]] * bary[:, 0:1] + v[tri[:, 1]] * bary[:, 1:2] + v[tri[:, 2]] * bary[:, 2:3]
