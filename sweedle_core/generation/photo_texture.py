"""A UV texture baked from the input photo, in place of one photo colour per vertex.

The projection is `image_colors.project_image_colors`'s: the mesh's x/y bounds fitted to the
photo's opaque bounds, orthographic along -Z, so front and back both take the photo's colour at
their (x, y) (the back shows the mirrored view). What changes is where it is sampled: the mesh is
unwrapped with xatlas and every texel a UV triangle covers takes the photo at its own 3D point,
so a 1024 px texture keeps ~20x as many samples as a 40k-face mesh has vertices.

Steps: xatlas charts and packs (vertices are split along the seams it cuts), the UV triangles
are rasterised in numpy (bounding boxes, in batches of candidate texels), each covered texel's
photo position is the barycentric blend of its corners' and the photo is read there, then the
islands are grown outward into their gutters so bilinear and mipmapped lookups at a seam do not
pick up the empty space between charts.

xatlas holds the GIL while it works (~1 s for 40k faces), so a thread beside it (an event loop
behind `asyncio.to_thread`) stalls that long.

`texture_from_photo` is the entry point: when xatlas is missing or cannot unwrap the mesh it
falls back to per-vertex colours and says why in ``mesh.metadata[TEXTURE_FALLBACK_KEY]``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image
from scipy import ndimage

# `photo_projection` below is `project_image_colors` split in two; it belongs in image_colors.py
# beside the threshold it reads.
from sweedle_core.generation.image_colors import (
    _OBJECT_ALPHA,
    project_image_colors,
    sample_bilinear,
)
from sweedle_core.generation.protocol import TEXTURE_FROM_IMAGE, TEXTURE_KEY

log = logging.getLogger(__name__)

MIN_TEXTURE_SIZE = 64
MAX_TEXTURE_SIZE = 4096
DEFAULT_TEXTURE_SIZE = 1024
# Set (to the reason) when the photo could not be baked into a texture and the mesh carries
# per-vertex colours from it instead.
TEXTURE_FALLBACK_KEY = "texture_fallback"

# xatlas's default chart growth took ~10 s on 40k-face marching-cubes meshes here (2 cores):
# its large charts do not flatten and are cut again piece by piece. Bounding a chart's boundary
# to half the square root of the surface area gave ~250 charts in ~0.8 s, at ~0.6 atlas
# utilisation instead of ~0.85.
_MAX_BOUNDARY = 0.5
# A texel whose square touches a triangle has its centre at most half a diagonal outside it.
_REACH = 0.5 * np.sqrt(2.0)
# Candidate texels per rasterising step: a few MB, cache-sized; larger steps ran slower here.
_BATCH = 1 << 17
# Arithmetic of the candidate texels: float32 halves the memory traffic; rows and columns
# up to 4096 keep ~0.001 texel.
_REAL = np.float32
# A texel centre this close outside an edge (in texels) still counts as inside it.
_ON_EDGE = 1e-3


class UnwrapFailed(RuntimeError):
    """xatlas is missing or could not unwrap the mesh; the message says which."""


@dataclass(frozen=True)
class Unwrap:
    """A mesh's UV layout, its vertices split along the UV seams.

    source : (k,) int64, the original vertex each new vertex copies
    faces : (m, 3) int64, the original faces in their order, indexing the new vertices
    uv : (k, 2) float64 in [0, 1], trimesh's convention (origin bottom-left, v up)
    """

    source: np.ndarray
    faces: np.ndarray
    uv: np.ndarray


def texture_from_photo(
    mesh: trimesh.Trimesh, image: Image.Image, size: int = DEFAULT_TEXTURE_SIZE
) -> trimesh.Trimesh:
    """``mesh`` coloured from ``image``: a ``size`` px UV texture (`bake_photo_texture`), or,
    when the mesh cannot be unwrapped, per-vertex colours from `project_image_colors` with
    ``metadata[TEXTURE_FALLBACK_KEY]`` saying why. Either way a new mesh with
    ``metadata[TEXTURE_KEY] = TEXTURE_FROM_IMAGE``.

    Raises ``ValueError`` for a ``size`` outside 64..4096 or a mesh without faces.
    """
    try:
        return bake_photo_texture(mesh, image, size)
    except UnwrapFailed as exc:
        log.warning("baking the photo texture failed, using vertex colours: %s", exc)
        coloured = trimesh.Trimesh(
            vertices=mesh.vertices,
            faces=mesh.faces,
            vertex_colors=project_image_colors(mesh, image),
            process=False,
        )
        coloured.metadata.update(mesh.metadata)
        coloured.metadata[TEXTURE_KEY] = TEXTURE_FROM_IMAGE
        coloured.metadata[TEXTURE_FALLBACK_KEY] = str(exc)
        return coloured


def bake_photo_texture(
    mesh: trimesh.Trimesh, image: Image.Image, size: int = DEFAULT_TEXTURE_SIZE
) -> trimesh.Trimesh:
    """A new mesh with ``mesh``'s surface, split along UV seams, whose visual is a ``size`` px
    base-colour texture of ``image`` (RGBA, object on a transparent background) projected as
    `project_image_colors` projects it.

    Vertex normals are the input's, copied to both sides of each seam, so the split does not
    show in the shading. Metadata is copied, with ``metadata[TEXTURE_KEY] = TEXTURE_FROM_IMAGE``.
    Raises ``ValueError`` for a ``size`` outside 64..4096 or a mesh without faces,
    ``UnwrapFailed`` when xatlas is missing or fails.
    """
    check_texture_size(size)
    if len(mesh.faces) == 0:
        raise ValueError("cannot texture a mesh without faces")
    layout = unwrap(mesh, size)
    photo, rows_cols = photo_projection(mesh.vertices, image)
    covered, texel_rows_cols = rasterize(layout.uv, layout.faces, rows_cols[layout.source], size)

    texels = np.empty((size, size, 3), dtype=np.uint8)
    texels[covered] = sample_bilinear(photo, texel_rows_cols[covered])[:, :3]
    texture = Image.fromarray(fill_gutters(texels, covered, 2 * padding_for(size)))

    baked = trimesh.Trimesh(
        vertices=np.asarray(mesh.vertices)[layout.source],
        faces=layout.faces,
        vertex_normals=np.asarray(mesh.vertex_normals)[layout.source],
        process=False,
    )
    baked.visual = trimesh.visual.TextureVisuals(uv=layout.uv, image=texture)
    baked.metadata.update(mesh.metadata)
    baked.metadata[TEXTURE_KEY] = TEXTURE_FROM_IMAGE
    return baked


def check_texture_size(size: int) -> None:
    """Raise ``ValueError`` unless ``size`` is a texture size the baker accepts."""
    if not MIN_TEXTURE_SIZE <= size <= MAX_TEXTURE_SIZE:
        raise ValueError(
            f"texture size must be between {MIN_TEXTURE_SIZE} and {MAX_TEXTURE_SIZE} px, got {size}"
        )


def padding_for(size: int) -> int:
    """Texels xatlas keeps around each chart in a ``size`` px atlas: enough for bilinear
    lookups and the first few mip levels."""
    return max(2, size // 256)


def unwrap(mesh: trimesh.Trimesh, size: int) -> Unwrap:
    """``mesh``'s UV layout by xatlas, charts packed for a ``size`` px texture with
    `padding_for` texels around each. Raises ``UnwrapFailed`` when xatlas is not installed,
    raises, or returns no usable layout.

    xatlas may make the atlas somewhat larger than ``size`` (it estimates the scale); its UVs
    are normalised to it, so they stretch a little on a ``size`` square texture.
    """
    try:
        import xatlas
    except ImportError as exc:
        raise UnwrapFailed("xatlas is not installed (pip install xatlas)") from exc
    chart_options = xatlas.ChartOptions()
    chart_options.max_boundary_length = _MAX_BOUNDARY * float(np.sqrt(mesh.area))
    pack_options = xatlas.PackOptions()
    pack_options.resolution = size
    pack_options.padding = padding_for(size)
    pack_options.bilinear = True
    atlas = xatlas.Atlas()
    try:
        atlas.add_mesh(
            np.ascontiguousarray(mesh.vertices, dtype=np.float32),
            np.ascontiguousarray(mesh.faces, dtype=np.uint32),
        )
        atlas.generate(chart_options, pack_options)
        source, faces, uv = atlas.get_mesh(0)
    except Exception as exc:  # whatever xatlas raises, vertex colours remain
        raise UnwrapFailed(f"xatlas failed: {exc}") from exc
    if atlas.chart_count == 0:
        raise UnwrapFailed("xatlas made no charts")
    if atlas.atlas_count != 1:
        raise UnwrapFailed(f"xatlas packed {atlas.atlas_count} atlases, not one")
    if len(faces) != len(mesh.faces):
        raise UnwrapFailed(f"xatlas returned {len(faces)} faces for {len(mesh.faces)}")
    return Unwrap(
        source=np.asarray(source, dtype=np.int64),
        faces=np.asarray(faces, dtype=np.int64),
        uv=np.clip(np.asarray(uv, dtype=np.float64), 0.0, 1.0),
    )


def photo_projection(vertices: np.ndarray, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Where ``vertices (n, 3)`` land on ``image``, by `project_image_colors`'s fit: the photo
    ``(h, w, 3) float32`` with its background filled with the nearest object colour, and each
    vertex's ``(row, col)`` on it ``(n, 2) float64``.

    ``sample_bilinear(*photo_projection(mesh.vertices, image))`` is
    ``project_image_colors(mesh, image)``; the positions are linear in x and y, so a point
    inside a triangle lands at the barycentric blend of its corners' positions.
    """
    rgba = np.asarray(image.convert("RGBA"))
    rgb = rgba[..., :3].astype(np.float32)
    inside = rgba[..., 3] >= _OBJECT_ALPHA
    if not inside.any():
        inside = np.ones(inside.shape, dtype=bool)
    _, (rows, cols) = ndimage.distance_transform_edt(~inside, return_indices=True)
    rgb = rgb[rows, cols]

    found_rows, found_cols = np.nonzero(inside)
    top, bottom = found_rows.min(), found_rows.max()
    left, right = found_cols.min(), found_cols.max()
    vertices = np.asarray(vertices, dtype=np.float64)
    lo, hi = vertices[:, :2].min(axis=0), vertices[:, :2].max(axis=0)
    span = np.maximum(hi - lo, 1e-9)
    u = (vertices[:, 0] - lo[0]) / span[0]  # 0 at the left of the object, 1 at the right
    v = (hi[1] - vertices[:, 1]) / span[1]  # 0 at the top (+Y), 1 at the bottom
    return rgb, np.column_stack([top + v * (bottom - top), left + u * (right - left)])


def rasterize(
    uv: np.ndarray, faces: np.ndarray, values: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex ``values (k, c)`` blended over the UV triangles of ``faces (m, 3)`` into a
    ``size`` px square (row 0 at the top, i.e. v = 1): ``covered (size, size) bool`` and
    ``(size, size, c) float32`` (zero where not covered). ``uv (k, 2)`` in trimesh's convention.

    A texel whose centre lies in a triangle takes that triangle's barycentric blend. A texel a
    triangle only touches (its centre within half a texel diagonal outside) takes the blend at
    the nearest point of the triangle, unless another triangle contains its centre; so a chart's
    edge texels, which bilinear lookups inside the chart read, hold the chart's own values.
    """
    uv = np.asarray(uv, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64).reshape(len(uv), -1)
    pixels = np.column_stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size])  # (col, row) units
    corners = pixels[faces]  # (m, 3, 2)
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    area2 = _cross(b - a, c - a)
    # A triangle thinner than this in texels covers no texel centre of its own.
    keep = np.abs(area2) > 1e-9
    faces, corners, area2 = faces[keep], corners[keep], area2[keep]
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]

    # Texel ranges of each triangle's box, widened by the reach.
    low = np.clip(np.ceil(corners.min(axis=1) - 0.5 - _REACH), 0, size - 1).astype(np.int64)
    high = np.clip(np.floor(corners.max(axis=1) - 0.5 + _REACH), 0, size - 1).astype(np.int64)
    width = np.maximum(high[:, 0] - low[:, 0] + 1, 0)
    counts = width * np.maximum(high[:, 1] - low[:, 1] + 1, 0)

    # lambda_a(p) = cross(c - b, p - b) / area2, lambda_b(p) = cross(a - c, p - c) / area2, as
    # A * x + B * y + C with x, y counted from the centre of the box's first texel.
    origin = low + 0.5
    coefficients = np.empty((len(faces), 6), dtype=_REAL)
    for slot, (start, end) in enumerate(((b, c), (c, a))):
        edge = end - start
        coefficients[:, 3 * slot] = -edge[:, 1] / area2
        coefficients[:, 3 * slot + 1] = edge[:, 0] / area2
        coefficients[:, 3 * slot + 2] = _cross(edge, origin - start) / area2
    # Distance from each corner to the opposite edge: lambda * height is the signed distance
    # of a point inside (> 0) or outside (< 0) that edge, in texels.
    lengths = np.stack([_norm(c - b), _norm(a - c), _norm(b - a)], axis=1)
    heights = (np.abs(area2)[:, None] / lengths.clip(1e-12)).astype(_REAL)

    corner_values = values[faces].astype(_REAL)  # (m, 3, c)
    ends = np.cumsum(counts)
    starts = ends - counts
    total = int(ends[-1]) if len(ends) else 0
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for first in range(0, total, _BATCH):
        last = min(first + _BATCH, total)
        # The triangles whose candidates fall in [first, last), and how many each has there.
        t0 = int(np.searchsorted(ends, first, side="right"))
        t1 = int(np.searchsorted(ends, last - 1, side="right")) + 1
        span = np.minimum(ends[t0:t1], last) - np.maximum(starts[t0:t1], first)
        tri = np.repeat(np.arange(t0, t1), span)
        k = np.arange(first, last) - np.repeat(starts[t0:t1], span)
        y, x = np.divmod(k, width[tri])

        coef = coefficients[tri]
        fx, fy = x.astype(_REAL), y.astype(_REAL)
        # Columns, not (n, 3) rows: numpy reduces along a short last axis slowly.
        lam_a = coef[:, 0] * fx + coef[:, 1] * fy + coef[:, 2]
        lam_b = coef[:, 3] * fx + coef[:, 4] * fy + coef[:, 5]
        lam_c = 1.0 - lam_a - lam_b
        height = heights[tri]
        distance = np.minimum(
            np.minimum(lam_a * height[:, 0], lam_b * height[:, 1]), lam_c * height[:, 2]
        )
        near = distance >= -_REACH
        tri, x, y, distance = tri[near], x[near], y[near], distance[near]
        # Outside an edge: the nearest point of the triangle (near enough, for half a texel).
        lam_a, lam_b, lam_c = (np.maximum(lam[near], 0.0) for lam in (lam_a, lam_b, lam_c))
        scale = 1.0 / (lam_a + lam_b + lam_c)
        corner = corner_values[tri]
        blended = (
            (lam_a * scale)[:, None] * corner[:, 0]
            + (lam_b * scale)[:, None] * corner[:, 1]
            + (lam_c * scale)[:, None] * corner[:, 2]
        )
        texel = (low[tri, 1] + y) * size + low[tri, 0] + x
        found.append((texel, blended, distance >= -_ON_EDGE))

    covered = np.zeros(size * size, dtype=bool)
    result = np.zeros((size * size, values.shape[1]), dtype=_REAL)
    # Touching triangles first, so the triangle that holds a texel's centre writes it last.
    for centre_in in (False, True):
        for texel, blended, inside in found:
            chosen = inside == centre_in
            covered[texel[chosen]] = True
            result[texel[chosen]] = blended[chosen]
    return covered.reshape(size, size), result.reshape(size, size, -1)


def fill_gutters(texels: np.ndarray, covered: np.ndarray, gutter: int) -> np.ndarray:
    """``texels (h, w, 3) uint8`` with every uncovered texel within ``gutter`` texels of a
    covered one set to the nearest covered colour, and the rest to the mean covered colour
    (grey when nothing is covered)."""
    if not covered.any():
        return np.full_like(texels, 128)
    if covered.all():
        return texels
    h, w = covered.shape
    distance, (rows, cols) = ndimage.distance_transform_edt(~covered, return_indices=True)
    filled = texels.reshape(-1, 3)[(rows * w + cols).ravel()]
    mean = [np.rint(texels[..., i][covered].mean()) for i in range(3)]
    filled[distance.ravel() > gutter] = mean
    return filled.reshape(h, w, 3)


def _cross(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """z of the cross product of 2D vectors ``p, q (n, 2)``: ``(n,)``."""
    return p[:, 0] * q[:, 1] - p[:, 1] * q[:, 0]


def _norm(p: np.ndarray) -> np.ndarray:
    return np.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2)
