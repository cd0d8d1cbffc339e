"""Colouring a mesh from the photo it was made from, by projecting the photo onto its front.

The service's frame is +Y up with the object facing +Z (the input photo is the view from +Z),
which is also how Hunyuan3D's texture pipeline places its front camera. Each vertex takes the
photo's colour at its (x, y); the back of the object reuses the front's colours, the honest best
a single photo allows without a texture model.
"""

from __future__ import annotations

import numpy as np
import trimesh
from PIL import Image
from scipy import ndimage

from sweedle_core.generation.protocol import TEXTURE_FROM_IMAGE, TEXTURE_KEY

# Alpha above this counts as the object when finding its outline in the photo.
_OBJECT_ALPHA = 128


def sample_bilinear(rgb: np.ndarray, rows_cols: np.ndarray) -> np.ndarray:
    """Bilinear colour of ``rgb (h, w, 3)`` at each ``(row, col)`` of ``rows_cols (n, 2)``:
    ``(n, 4) uint8``, opaque. Positions outside the image take the nearest edge colour."""
    h, w = rgb.shape[:2]
    r = np.clip(rows_cols[:, 0], 0, h - 1)
    c = np.clip(rows_cols[:, 1], 0, w - 1)
    r0 = np.minimum(r.astype(np.int32), h - 2)
    c0 = np.minimum(c.astype(np.int32), w - 2)
    fr = (r - r0)[:, None]
    fc = (c - c0)[:, None]
    top = rgb[r0, c0] * (1 - fc) + rgb[r0, c0 + 1] * fc
    bottom = rgb[r0 + 1, c0] * (1 - fc) + rgb[r0 + 1, c0 + 1] * fc
    colors = np.empty((len(rows_cols), 4), dtype=np.uint8)
    colors[:, :3] = np.clip(np.rint(top * (1 - fr) + bottom * fr), 0, 255)
    colors[:, 3] = 255
    return colors


def project_image_colors(mesh: trimesh.Trimesh, image: Image.Image) -> np.ndarray:
    """Per-vertex colours ``(n, 4) uint8`` for ``mesh`` from ``image`` (RGBA, object on a
    transparent background), by orthographic projection along -Z.

    The mesh's x/y bounds are fitted to the bounds of the photo's opaque pixels, so the two line
    up whatever scale and margin the generator used. Background pixels first take the colour of
    the nearest object pixel, so outline vertices never pick up the background.
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
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    lo, hi = vertices[:, :2].min(axis=0), vertices[:, :2].max(axis=0)
    span = np.maximum(hi - lo, 1e-9)
    u = (vertices[:, 0] - lo[0]) / span[0]  # 0 at the left of the object, 1 at the right
    v = (hi[1] - vertices[:, 1]) / span[1]  # 0 at the top (+Y), 1 at the bottom
    positions = np.column_stack([top + v * (bottom - top), left + u * (right - left)])
    return sample_bilinear(rgb, positions)


def coloured_from_photo(mesh: trimesh.Trimesh, image: Image.Image) -> trimesh.Trimesh:
    """``mesh`` with `project_image_colors` as its vertex colours, saying so in its metadata."""
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=project_image_colors(mesh, image))
    mesh.metadata[TEXTURE_KEY] = TEXTURE_FROM_IMAGE
    return mesh
