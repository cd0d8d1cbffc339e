"""The prepared image as a grid of cells, for the CPU generators that build a mesh from it.

A cell is one voxel column of the volume marching cubes surfaces: ``n`` cells span the square
image (``n`` is the job's ``octree_resolution``). Rows run down the image, columns to the right;
`to_mesh` turns grid units into the service's frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from PIL import Image
from scipy import ndimage
from skimage.measure import marching_cubes

from sweedle_core.errors import GenerationFailed
from sweedle_core.export.mesh_io import outward_winding

# Empty cells kept around the object so the surface never touches the volume's border.
PAD = 3
# Blur of the distance field: in cells at the outline and a few cells in, then as a fraction of
# the largest distance deep inside.
_EDGE_SIGMA = 1.0
_MID_SIGMA = 4.0
_RIDGE_SIGMA = 0.25


@dataclass(frozen=True)
class Grid:
    """The object cropped to its cells plus ``PAD`` empty ones on each side.

    coverage : (h, w) float32 in [0, 1], the share of each cell the object covers.
    rgb : (h, w, 3) float32 in [0, 255], the object's colour; cells outside the object take the
        colour of the nearest object cell, so outline vertices never pick up the background.
    extra : (h, w, k) float32, further per-pixel values averaged over the object like the colour
        (a depth map), or None.
    """

    coverage: np.ndarray
    rgb: np.ndarray
    extra: np.ndarray | None = None


def image_grid(image: Image.Image, n: int, extra: np.ndarray | None = None) -> Grid:
    """The object in ``image`` (RGBA, background transparent) on an ``n`` x ``n`` grid, cropped.

    ``extra`` : (H, W) or (H, W, k) values per pixel of ``image`` (e.g. a depth map).
    The mask is alpha > 127, resampled by area averaging, which keeps a sub-cell (coverage)
    edge instead of a staircase; colours and ``extra`` are averaged over the object only.
    """
    square = _square(image.convert("RGBA"))
    rgba = np.asarray(square)
    mask = (rgba[..., 3] > 127).astype(np.float32)
    if not mask.any():
        raise GenerationFailed("no foreground in the image")
    channels = [rgba[..., c].astype(np.float32) for c in range(3)]
    if extra is not None:
        values = extra if extra.ndim == 3 else extra[..., None]
        channels += [_square_values(values[..., k], image.size) for k in range(values.shape[2])]
    resample = Image.Resampling.BOX if mask.shape[0] >= n else Image.Resampling.BILINEAR

    def resize(channel: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(channel).resize((n, n), resample), dtype=np.float32)

    coverage = np.clip(resize(mask), 0.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        averaged = np.stack([resize(c * mask) for c in channels], axis=-1) / coverage[..., None]
    return _crop(coverage, averaged, has_extra=extra is not None)


def _square(image: Image.Image) -> Image.Image:
    """Pad a non-square image with transparency, keeping it centred."""
    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def _square_values(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``values`` (H, W) padded with zeros the way `_square` pads the image."""
    w, h = size
    side = max(w, h)
    if w == h:
        return values.astype(np.float32)
    out = np.zeros((side, side), dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = values
    return out


def _crop(coverage: np.ndarray, values: np.ndarray, has_extra: bool) -> Grid:
    """Cut the grid to the object plus ``PAD`` empty cells, and give every cell a value."""
    inside = coverage > 0.5
    if not inside.any():
        raise GenerationFailed(
            "the foreground is too small for this octree resolution; use a larger one"
        )
    rows, cols = np.nonzero(coverage > 0)
    r0, r1 = rows.min(), rows.max() + 1
    c0, c1 = cols.min(), cols.max() + 1
    pad = ((PAD, PAD), (PAD, PAD))
    coverage = np.pad(coverage[r0:r1, c0:c1], pad)
    values = np.pad(values[r0:r1, c0:c1], pad + ((0, 0),))

    has_value = coverage > 1e-3
    _, (ri, ci) = ndimage.distance_transform_edt(~has_value, return_indices=True)
    values = values[ri, ci]
    return Grid(coverage, values[..., :3], values[..., 3:] if has_extra else None)


def signed_distance(coverage: np.ndarray) -> np.ndarray:
    """Signed distance to the outline in cells, positive inside: ``(h, w) float32``.

    Cells next to the outline use their coverage (``coverage - 0.5``), which places the edge
    within the cell instead of on the cell grid. Blurs growing with depth remove the grid's
    ripples (which steep profiles magnify) and round the ridges a distance field has along its
    medial axis (a rectangle would inflate into a roof), yet barely move the outline, where the
    blur is lightest.
    """
    inside = coverage > 0.5
    d_in = ndimage.distance_transform_edt(inside)
    d_out = ndimage.distance_transform_edt(~inside)
    sd = np.where(inside, d_in - 0.5, 0.5 - d_out)
    edge = np.where(inside, d_in, d_out) == 1.0
    sd[edge] = coverage[edge] - 0.5
    sd = _blend_blur(sd, _EDGE_SIGMA, _MID_SIGMA, ramp_start=1.0, ramp_width=_MID_SIGMA)
    wide = _RIDGE_SIGMA * float(sd.max())
    if wide > _MID_SIGMA:
        sd = _blend_blur(sd, 0.0, wide, ramp_start=0.0, ramp_width=2.0 * wide)
    return sd.astype(np.float32)


def _blend_blur(
    sd: np.ndarray, near: float, far: float, ramp_start: float, ramp_width: float
) -> np.ndarray:
    """Blur ``sd`` by ``near`` cells at the outline and by ``far`` cells deeper inside, fading
    from one to the other as the distance goes from ``ramp_start`` over ``ramp_width`` cells."""
    near_blur = ndimage.gaussian_filter(sd, near) if near > 0 else sd
    far_blur = np.maximum(ndimage.gaussian_filter(sd, far), 0.0)
    weight = np.clip((near_blur - ramp_start) / ramp_width, 0.0, 1.0)
    return near_blur + weight * (far_blur - near_blur)


def smaller_extent(sd: np.ndarray) -> int:
    """The smaller of the object's width and height, in cells."""
    rows, cols = np.nonzero(sd > 0)
    return int(min(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1))


def surface(field: np.ndarray, cell_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes at ``field = 0`` in the cells of ``cell_mask``: vertices ``(n, 3)
    float32`` in (row, col, z) cell units and faces ``(m, 3) int32``, or `GenerationFailed`."""
    try:
        verts, faces, _, _ = marching_cubes(field, level=0.0, mask=cell_mask)
    except (ValueError, RuntimeError) as exc:
        raise GenerationFailed(f"no surface found: {exc}") from exc
    if len(faces) == 0:
        raise GenerationFailed("no surface found")
    return verts.astype(np.float32), faces.astype(np.int32)


def surface_cells(field: np.ndarray) -> np.ndarray:
    """Marching cubes' cell mask for ``field`` (h, w, d): the cells whose eight corners do not
    all lie on one side of 0. skimage indexes a cell by its upper corner, hence the offset."""
    corners = _corners(field)
    low, high = corners[0].copy(), corners[0].copy()  # two volumes, not a stack of eight
    for corner in corners[1:]:
        np.minimum(low, corner, out=low)
        np.maximum(high, corner, out=high)
    mask = np.zeros(field.shape, dtype=bool)
    mask[1:, 1:, 1:] = (low <= 0.0) & (high >= 0.0)
    return mask


def _corners(field: np.ndarray) -> list[np.ndarray]:
    return [
        field[i : field.shape[0] - 1 + i, j : field.shape[1] - 1 + j, k : field.shape[2] - 1 + k]
        for i in (0, 1)
        for j in (0, 1)
        for k in (0, 1)
    ]


def to_mesh(
    verts: np.ndarray, faces: np.ndarray, colors: np.ndarray | None = None
) -> trimesh.Trimesh:
    """Grid units (row, col, z) to the service's frame: centred, the larger planar extent 1,
    +Y up (the image's top), +X the image's right, +Z toward the viewer."""
    xyz = np.column_stack([verts[:, 1], -verts[:, 0], verts[:, 2]])
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    xyz = ((xyz - (lo + hi) / 2.0) / max(hi[0] - lo[0], hi[1] - lo[1])).astype(np.float32)

    # Mirroring rows into +Y flips handedness, and marching cubes' own winding varies: make the
    # winding outward (positive volume) whatever came out.
    mesh = trimesh.Trimesh(vertices=xyz, faces=faces, vertex_colors=colors, process=False)
    return outward_winding(mesh)
