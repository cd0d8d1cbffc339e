"""Visual hull: the CPU multi-view shape, carved out of the silhouettes of up to four photos.

A point belongs to the object if it projects inside the object's outline in every photo
(orthographic projection). No learning and no guessing: the result is the largest solid that
matches every outline, so it is exact where the outlines say so and too full where no photo
sees (a concavity facing no camera, the top of an object photographed only from the sides).

Views follow Hunyuan3D-2mv (hy3dgen 2.0.2, ``MVImageProcessorV2``: "front, front clockwise 90,
back, front clockwise 270"), checked on upstream's ``assets/example_mv_images``: a character
whose long hair falls on the front photo's right shows that hair on the left photo and on the
left of the back photo, and its face on the left of the left photo. Every view is a plain
photo of the object from a camera level with it, looking at the centre, +Y up in all four:

========  ===============  =================  =====================================
name      camera at        the image's right  relative to the front photo
========  ===============  =================  =====================================
front     +Z               +X                 the service's frame itself
left      +X               -Z (the back)      the object's own left side
back      -Z               -X                 mirrored left-right
right     -X               +Z (the front)     the object's own right side
========  ===============  =================  =====================================

``right`` is not in upstream's examples; it is the camera ``left`` would be, turned 180°.

Each photo was prepared on its own (object centred, scaled to fill the square), so the views
are at different scales. All of them see the object's full height (Y), so each outline is
normalised by the height of its opaque bounding box and centred on that box; front and back
then give the width (X), left and right the depth (Z). With no side view nothing limits the
depth: the solid is then also cut by the rounded, front/back-symmetric body the `silhouette`
backend inflates from the front outline, so one photo never gives an infinitely deep prism.

Each view is sampled on the grid by its coverage (alpha / 255 averaged over a cell, bilinear
where the photo has fewer pixels than the grid has cells) and the field is the least
``coverage - 0.5`` over the views: near an outline it is roughly the signed distance to it in
cells, so marching cubes places the surface within a cell instead of on a staircase. The
surface is then reduced to the face budget (``max_faces``) and the front photo baked onto it.

Frame as every backend: centred, the larger of width and height 1, +Y up, +X the front
photo's right, +Z toward the viewer of the front photo.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image
from skimage.measure import marching_cubes

from sweedle_core.errors import GenerationFailed
from sweedle_core.export.lod_generator import within_budget
from sweedle_core.export.mesh_io import outward_winding
from sweedle_core.generation.grid import PAD, signed_distance
from sweedle_core.generation.inflation import inflate
from sweedle_core.generation.protocol import ProgressCallback
from sweedle_core.generation.shape import Shape
from sweedle_core.params import VIEWS, GenerationParams

METHOD = "visual_hull"


def hull_shape(views: Mapping[str, Image.Image], on_progress: ProgressCallback) -> Shape:
    """The first stage: the photos' pixels as they are (the carving is the CPU stage's)."""
    unknown = sorted(set(views) - set(VIEWS))
    if unknown or "front" not in views:
        raise GenerationFailed(
            f"views must include front and be among {VIEWS}, not {sorted(views)}"
        )
    arrays = {name: np.asarray(image.convert("RGBA")) for name, image in views.items()}
    on_progress(1.0, f"{len(arrays)} outlines: {', '.join(arrays)}")
    return Shape(METHOD, "silhouette", arrays, {"views": list(arrays)})


def hull_surface(
    shape: Shape, params: GenerationParams, on_progress: ProgressCallback
) -> trimesh.Trimesh:
    """The CPU stage's surface: the hull carved from every outline, within the face budget
    (coloured from the front photo after, see `finish.finished`)."""
    on_progress(0.1, "carving the visual hull")
    views = {name: Image.fromarray(pixels, "RGBA") for name, pixels in shape.arrays.items()}
    volume = hull_volume(views, params.octree_resolution)
    on_progress(0.6, "surface")
    on_progress(0.7, "reducing to the face budget")
    return within_budget(hull_mesh(volume), params.max_faces)


# For each view, the axis its image's horizontal runs along and whether the image's right is
# that axis's negative side (see the table in the module docstring).
_VIEW_AXES: dict[str, tuple[str, bool]] = {
    "front": ("x", False),
    "left": ("z", True),
    "back": ("x", True),
    "right": ("z", False),
}
# Two views of one axis (front and back, left and right) may disagree on the object's extent
# along it by this share before they are taken for different objects (or a bad cut-out).
_ALIGN_TOLERANCE = 0.2
# Slabs of the volume filled at a time, in grid samples along X: bounds the temporaries.
_SLAB = 32


@dataclass(frozen=True)
class HullVolume:
    """The carved solid as a field on a regular grid.

    field : (nx, ny, nz) float32, positive inside, zero on the surface; about the signed
        distance to the surface in cells near it. Index ``(i, j, k)`` is the point
        ``origin + spacing * (i, j, k)`` of the service's frame (+Y up, +Z toward the front
        camera); `hull_mesh` re-centres and rescales to the exact frame, which differs from
        this one by a fraction of a cell.
    origin : (3,) float64, the frame position of sample ``(0, 0, 0)``.
    spacing : the distance between neighbouring samples, in the frame's units.
    """

    field: np.ndarray
    origin: np.ndarray
    spacing: float


def hull_volume(views: Mapping[str, Image.Image], n: int) -> HullVolume:
    """The visual hull of ``views`` (name in `VIEWS` -> prepared RGBA photo; ``front`` is
    required) on a grid of ``n`` cells along the object's longest axis.

    Raises ``ValueError`` for a name not in `VIEWS`; `GenerationFailed` when ``front`` is
    missing, a view has no foreground or cuts the object at its top or bottom edge, or two
    views of one axis disagree on its extent.
    """
    unknown = sorted(set(views) - set(VIEWS))
    if unknown:
        raise ValueError(f"unknown view {', '.join(map(repr, unknown))}; views are {VIEWS}")
    if "front" not in views:
        raise GenerationFailed("the front view is required")
    outlines = {name: _Outline.from_image(name, views[name]) for name in VIEWS if name in views}
    by_axis = {
        axis: [outline for outline in outlines.values() if outline.axis == axis]
        for axis in ("x", "z")
    }
    width = _extent(by_axis["x"])
    depth = _extent(by_axis["z"]) if by_axis["z"] else 0.0
    # Units so far: the object's height is 1. Cells are cubes.
    cell = max(width, 1.0, depth) / n
    xs, ys = _axis(width, cell), _axis(1.0, cell)
    front_plane = _plane(by_axis["x"], xs, ys, cell)  # (nx, ny)
    if by_axis["z"]:
        zs = _axis(depth, cell)
        field = _carve(front_plane, _plane(by_axis["z"], zs, ys, cell))
    else:
        if not (front_plane > 0.5).any():
            raise GenerationFailed("the object is too thin for this octree resolution")
        height_sq = inflate(signed_distance(front_plane))  # (nx, ny), in cells²
        top = math.ceil(math.sqrt(max(float(height_sq.max()), 0.0))) + PAD
        zs = np.arange(-top, top + 1) * cell
        field = _carve_inflated(front_plane, height_sq, top)
    scale = 1.0 / max(width, 1.0)
    origin = np.array([xs[0], ys[0], zs[0]]) * scale
    return HullVolume(field=field, origin=origin, spacing=cell * scale)


def hull_mesh(volume: HullVolume) -> trimesh.Trimesh:
    """The surface of ``volume``: closed, wound outward, centred, the larger of its width and
    height 1. Vertices ``(n, 3) float32`` in the service's frame; no colours."""
    try:
        verts, faces, _, _ = marching_cubes(volume.field, level=0.0)
    except (ValueError, RuntimeError) as exc:
        raise GenerationFailed(f"the views share no volume: {exc}") from exc
    if len(faces) == 0:
        raise GenerationFailed("the views share no volume")
    xyz = volume.origin + verts.astype(np.float64) * volume.spacing
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    xyz = ((xyz - (lo + hi) / 2.0) / max(hi[0] - lo[0], hi[1] - lo[1])).astype(np.float32)
    mesh = trimesh.Trimesh(vertices=xyz, faces=faces.astype(np.int64), process=False)
    return outward_winding(mesh)  # marching cubes' winding depends on the field's sign


@dataclass(frozen=True)
class _Outline:
    """One view's alpha, turned so the image's right is its axis's positive side.

    alpha : (h, w) float32 in [0, 1].
    top, bottom, left, right : the opaque (alpha > 0.5) bounding box, in pixel edges.
    """

    name: str
    axis: str
    alpha: np.ndarray
    top: int
    bottom: int
    left: int
    right: int

    @classmethod
    def from_image(cls, name: str, image: Image.Image) -> _Outline:
        axis, mirrored = _VIEW_AXES[name]
        alpha = np.asarray(image.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
        if mirrored:
            alpha = np.ascontiguousarray(alpha[:, ::-1])
        opaque = alpha > 0.5
        if not opaque.any():
            raise GenerationFailed(f"the {name} view has no foreground (it is all transparent)")
        rows = np.flatnonzero(opaque.any(axis=1))
        cols = np.flatnonzero(opaque.any(axis=0))
        top, bottom = int(rows[0]), int(rows[-1]) + 1
        if top == 0 or bottom == alpha.shape[0]:
            raise GenerationFailed(
                f"the object touches the top or bottom edge of the {name} view, so its full "
                "height is not seen and the views cannot be aligned"
            )
        return cls(name, axis, alpha, top, bottom, int(cols[0]), int(cols[-1]) + 1)

    @property
    def pixels_per_unit(self) -> float:
        """Pixels per unit of the object's height."""
        return float(self.bottom - self.top)

    @property
    def width(self) -> float:
        """The object's extent along the view's axis, in units of its height."""
        return (self.right - self.left) / self.pixels_per_unit

    def coverage(self, across: np.ndarray, up: np.ndarray, cell: float) -> np.ndarray:
        """The share of a cell ``cell`` wide the object covers, centred at each ``(across[a],
        up[u])`` (positions along the view's axis and Y, in units of the object's height):
        ``(len(across), len(up)) float32``."""
        scale = self.pixels_per_unit
        cols = (self.left + self.right) / 2.0 + across * scale
        rows = (self.top + self.bottom) / 2.0 - up * scale
        col_weights = _weights(cols, cell * scale, self.alpha.shape[1])
        row_weights = _weights(rows, cell * scale, self.alpha.shape[0])
        return np.clip(col_weights @ self.alpha.T @ row_weights.T, 0.0, 1.0)


def _weights(centres: np.ndarray, cell: float, size: int) -> np.ndarray:
    """How much each of ``size`` pixels counts in the sample at each of ``centres`` (in pixel
    edges): ``(len(centres), size) float32``. A cell wider than a pixel averages the pixels it
    overlaps by area; a narrower one interpolates bilinearly between pixel centres. Pixels
    outside the image count as transparent."""
    edges = np.arange(size + 1, dtype=np.float64)
    if cell >= 1.0:
        low = centres[:, None] - cell / 2.0
        high = centres[:, None] + cell / 2.0
        overlap = np.minimum(high, edges[None, 1:]) - np.maximum(low, edges[None, :-1])
        weights = np.clip(overlap, 0.0, None) / cell
    else:
        weights = np.clip(1.0 - np.abs(centres[:, None] - (edges[None, :-1] + 0.5)), 0.0, None)
    return weights.astype(np.float32)


def _extent(outlines: list[_Outline]) -> float:
    """The object's extent along the axis of ``outlines`` (one or two views), in units of its
    height; `GenerationFailed` if the two disagree by more than the tolerance."""
    widths = [outline.width for outline in outlines]
    if len(widths) == 2 and abs(widths[0] - widths[1]) > _ALIGN_TOLERANCE * max(widths):
        a, b = outlines
        raise GenerationFailed(
            f"the {a.name} and {b.name} views disagree on the object's {a.axis.upper()} extent "
            f"({widths[0]:.2f} vs {widths[1]:.2f} of its height), so they cannot be aligned; "
            "are they photos of the same object?"
        )
    return max(widths)


def _axis(extent: float, cell: float) -> np.ndarray:
    """Sample positions, centred on 0, covering ``extent`` plus ``PAD`` empty cells a side."""
    count = math.ceil(extent / cell) + 2 * PAD + 1
    return (np.arange(count) - (count - 1) / 2.0) * cell


def _plane(outlines: list[_Outline], across: np.ndarray, up: np.ndarray, cell: float) -> np.ndarray:
    """The least coverage of ``outlines`` (the views of one axis): ``(len(across), len(up))
    float32``. A value of exactly 0.5 becomes a hair less: a zero of the field on a sample puts
    a vertex on a grid corner, where marching cubes makes degenerate faces."""
    plane = np.minimum.reduce([outline.coverage(across, up, cell) for outline in outlines])
    plane[plane == 0.5] = np.nextafter(np.float32(0.5), np.float32(0.0))
    return plane.astype(np.float32)


def _carve(front_plane: np.ndarray, side_plane: np.ndarray) -> np.ndarray:
    """``field[i, j, k] = min(front_plane[i, j], side_plane[k, j]) - 0.5``, filled a slab at a
    time: ``(nx, ny, nz) float32``."""
    nx, ny = front_plane.shape
    side = side_plane.T[None, :, :] - np.float32(0.5)  # (1, ny, nz)
    field = np.empty((nx, ny, len(side_plane)), dtype=np.float32)
    for start in range(0, nx, _SLAB):
        stop = min(start + _SLAB, nx)
        np.minimum(front_plane[start:stop, :, None] - np.float32(0.5), side, out=field[start:stop])
    return field


def _carve_inflated(front_plane: np.ndarray, height_sq: np.ndarray, top: int) -> np.ndarray:
    """The front outline cut by the inflated body ``|z| <= h(x, y)``: ``(nx, ny, 2 top + 1)
    float32``, sample ``k`` at ``z = k - top`` cells.

    The body's field is ``(h² - z²) / max(h + |z|, 1)``: ``h - |z|`` (a distance in cells, like
    the coverage's) away from the outline, and ``h² - z²``, which is smooth where ``h`` is not,
    near it. Both have the zero set of ``h - |z|``.
    """
    nx, ny = front_plane.shape
    z = np.abs(np.arange(-top, top + 1, dtype=np.float32))[None, None, :]
    height = np.sqrt(np.maximum(height_sq, 0.0))[:, :, None]
    field = np.empty((nx, ny, len(z[0, 0])), dtype=np.float32)
    for start in range(0, nx, _SLAB):
        stop = min(start + _SLAB, nx)
        body = (height_sq[start:stop, :, None] - z * z) / np.maximum(height[start:stop] + z, 1.0)
        body[body == 0.0] = -1e-6  # as in `_plane`
        np.minimum(front_plane[start:stop, :, None] - np.float32(0.5), body, out=field[start:stop])
    return field
