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

xatlas runs in a child process (`unwrap_worker`): it holds the GIL while it works (~1 s for 40k
faces), can crash on some closed meshes and can run for many minutes on large ones; the
process's own threads and event loop are untouched by any of that.

`texture_from_photo` is the entry point: when xatlas is missing or cannot unwrap the mesh
(too many faces, a failure, a crash, a timeout) it falls back to per-vertex colours and says
why in ``mesh.metadata[TEXTURE_FALLBACK_KEY]``.
"""

from __future__ import annotations

import io
import logging
import signal
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image
from scipy import ndimage

from sweedle_core.generation.image_colors import (
    photo_projection,
    project_image_colors,
    sample_bilinear,
)
from sweedle_core.generation.protocol import (
    TEXTURE_FALLBACK_KEY,
    TEXTURE_FROM_IMAGE,
    TEXTURE_KEY,
)
from sweedle_core.params import DEFAULT_TEXTURE_SIZE, MAX_TEXTURE_SIZE, MIN_TEXTURE_SIZE

log = logging.getLogger(__name__)

# Unwrapping time grows faster than the face count (marching-cubes meshes, 2 cores): 21k faces
# 0.5 s, 86k 2.2 s, 174k 9 s, 215k 65 s, 351k over 10 minutes; above this the mesh keeps
# per-vertex colours, which are dense there anyway.
MAX_UNWRAP_FACES = 150_000
# A child still unwrapping after this is stuck (the largest meshes allowed take ~7 s).
UNWRAP_TIMEOUT_S = 60.0
UNWRAP_COMMAND = [sys.executable, "-m", "sweedle_core.generation.unwrap_worker"]
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
        return photo_vertex_colours(mesh, image, str(exc))


def photo_vertex_colours(mesh: trimesh.Trimesh, image: Image.Image, reason: str) -> trimesh.Trimesh:
    """The fallback where ``mesh`` cannot be unwrapped (``reason``): per-vertex colours from
    `project_image_colors`, and ``metadata[TEXTURE_FALLBACK_KEY]`` saying why."""
    log.warning("baking the photo texture failed, using vertex colours: %s", reason)
    coloured = trimesh.Trimesh(
        vertices=mesh.vertices,
        faces=mesh.faces,
        vertex_colors=project_image_colors(mesh, image),
        process=False,
    )
    coloured.metadata.update(mesh.metadata)
    coloured.metadata[TEXTURE_KEY] = TEXTURE_FROM_IMAGE
    coloured.metadata[TEXTURE_FALLBACK_KEY] = reason
    return coloured


def bake_photo_texture(
    mesh: trimesh.Trimesh,
    image: Image.Image,
    size: int = DEFAULT_TEXTURE_SIZE,
    layout: Unwrap | None = None,
) -> trimesh.Trimesh:
    """A new mesh with ``mesh``'s surface, split along UV seams, whose visual is a ``size`` px
    base-colour texture of ``image`` (RGBA, object on a transparent background) projected as
    `project_image_colors` projects it.

    ``layout``: the mesh's own UV layout, when it was unwrapped already (xatlas is not run
    again). Vertex normals are the input's, copied to both sides of each seam, so the split
    does not show in the shading. Metadata is copied, with ``metadata[TEXTURE_KEY] = TEXTURE_FROM_IMAGE``.
    Raises ``ValueError`` for a ``size`` outside 64..4096 or a mesh without faces,
    ``UnwrapFailed`` when xatlas is missing or fails.
    """
    check_texture_size(size)
    if len(mesh.faces) == 0:
        raise ValueError("cannot texture a mesh without faces")
    layout = layout or unwrap(mesh, size)
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
    `padding_for` texels around each, computed in a child process (`unwrap_worker`).

    Raises ``UnwrapFailed`` saying why when the mesh has more than `MAX_UNWRAP_FACES` faces,
    or xatlas is not installed, raises, crashes, takes longer than `UNWRAP_TIMEOUT_S`, or
    returns no usable layout. xatlas may make the atlas somewhat larger than ``size`` (it
    estimates the scale); its UVs are normalised to it, so they stretch a little on a ``size``
    square texture.
    """
    if len(mesh.faces) > MAX_UNWRAP_FACES:
        raise UnwrapFailed(
            f"the mesh has {len(mesh.faces):,} faces; xatlas unwraps at most "
            f"{MAX_UNWRAP_FACES:,} in reasonable time (lower octree_resolution or max_faces)"
        )
    request = io.BytesIO()
    np.savez(
        request,
        vertices=np.ascontiguousarray(mesh.vertices, dtype=np.float32),
        faces=np.ascontiguousarray(mesh.faces, dtype=np.uint32),
        max_boundary=np.array(_MAX_BOUNDARY * float(np.sqrt(mesh.area))),
        resolution=np.array(size),
        padding=np.array(padding_for(size)),
    )
    try:
        done = subprocess.run(
            UNWRAP_COMMAND,
            input=request.getvalue(),
            capture_output=True,
            timeout=UNWRAP_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UnwrapFailed(f"xatlas did not finish within {UNWRAP_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        raise UnwrapFailed(_failure(done.returncode, done.stderr))
    try:
        with np.load(io.BytesIO(done.stdout), allow_pickle=False) as result:
            source, faces, uv = result["source"], result["faces"], result["uv"]
            charts, atlases = int(result["charts"]), int(result["atlases"])
    except (ValueError, KeyError, OSError) as exc:
        raise UnwrapFailed(f"xatlas's answer was unreadable: {exc}") from exc
    if charts == 0:
        raise UnwrapFailed("xatlas made no charts")
    if atlases != 1:
        raise UnwrapFailed(f"xatlas packed {atlases} atlases, not one")
    if len(faces) != len(mesh.faces) or len(uv) != len(source):
        raise UnwrapFailed(f"xatlas returned {len(faces)} faces for {len(mesh.faces)}")
    return Unwrap(
        source=np.asarray(source, dtype=np.int64),
        faces=np.asarray(faces, dtype=np.int64),
        uv=np.clip(np.asarray(uv, dtype=np.float64), 0.0, 1.0),
    )


def _failure(returncode: int, stderr: bytes) -> str:
    """Why the unwrapping child failed: the signal that killed it, or its last word."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"xatlas crashed ({name})"
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else f"xatlas failed (exit status {returncode})"


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
