"""Where the photo a mesh was made from lands on it, projected onto its front.

The service's frame is +Y up with the object facing +Z (the input photo is the view from +Z),
which is also how Hunyuan3D's texture pipeline places its front camera. Each point takes the
photo's colour at its (x, y); the back of the object reuses the front's colours, the honest best
a single photo allows without a texture model. `photo_texture` bakes this projection into a UV
texture; per-vertex colours (`project_image_colors`) are its fallback.
"""

from __future__ import annotations

import numpy as np
import trimesh
from PIL import Image
from scipy import ndimage

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


def photo_projection(vertices: np.ndarray, image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """Where ``vertices (n, 3)`` land on ``image`` (RGBA, object on a transparent background),
    by orthographic projection along -Z: the photo ``(h, w, 3) float32`` with its background
    filled with the nearest object colour, and each vertex's ``(row, col)`` on it
    ``(n, 2) float64``.

    The vertices' x/y bounds are fitted to the bounds of the photo's opaque pixels, so the two
    line up whatever scale and margin the generator used; the positions are linear in x and y,
    so a point inside a triangle lands at the barycentric blend of its corners' positions.
    Filling the background first keeps outline points from picking it up.
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


def project_image_colors(mesh: trimesh.Trimesh, image: Image.Image) -> np.ndarray:
    """Per-vertex colours ``(n, 4) uint8`` for ``mesh`` from ``image`` by `photo_projection`:
    the vertex-colour fallback where the photo cannot be baked into a UV texture."""
    return sample_bilinear(*photo_projection(mesh.vertices, image))
