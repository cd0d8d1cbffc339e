"""The CPU backend: "silhouette inflation", a classical, preview-quality method.

No learning and no guessing of hidden shape: the object's outline (the alpha mask) is inflated
into a rounded, front/back-symmetric solid, like a balloon blown up inside a cookie cutter. The
result has the right outline and plausible depth but no concavities, no side detail and a back
that mirrors the front. It is fast, deterministic and needs no GPU or weights, so it serves as a
preview, a fallback and the backend of the test suite; it is not a substitute for a learned model.

Steps:

1. mask: alpha > 127, resampled by area averaging to ``octree_resolution`` cells per side, which
   keeps a sub-cell (coverage) edge instead of a staircase;
2. distance field: a signed distance ``s`` to the outline (positive inside), sub-cell accurate at
   the edge, lightly smoothed (more so deep inside, which rounds medial-axis ridges);
3. volume: a circular height profile ``h = k * sqrt(s * (2D - s))`` (``D`` the largest distance,
   ``k`` chosen so the depth is ~0.6 of the smaller planar extent, at most a round section), and
   the field ``f = h(x, y)² - z²``, positive inside; it has the zero set of ``h - |z|`` but no
   infinite slope at the outline, so marching cubes places the outline smoothly;
   (the first stage ends here: the height map is the shape handed to the CPU stage)
4. surface: marching cubes at ``f = 0`` on the front half only (``z >= 0``), only in the cells
   the surface crosses, then mirrored to the back and joined on the middle plane: a closed,
   outward-wound mesh, reduced to the face budget (``max_faces``) by the LODs' simplifier,
   which keeps it closed;
5. colour: the photo baked into a UV texture (`photo_texture`): each point takes the photo's
   colour at its (x, y); the back reuses it, which is the mirrored view seen from behind.

Frame: centred on the origin, the larger of width and height is 1, +Y up (the image's top), +X
the image's right, +Z toward the viewer (the photo's side is the front).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import trimesh
from PIL import Image

from sweedle_core.export.lod_generator import within_budget
from sweedle_core.generation.grid import (
    PAD,
    image_grid,
    signed_distance,
    surface,
    to_mesh,
)
from sweedle_core.generation.inflation import inflate
from sweedle_core.generation.protocol import ProgressCallback
from sweedle_core.generation.shape import Shape
from sweedle_core.generation.visual_hull import hull_shape
from sweedle_core.params import GenerationParams


class SilhouetteGenerator:
    """Silhouette inflation on the CPU; see the module docstring for what it can and cannot do.

    Its first stage ends with the front's height map, the second (`silhouette_surface`)
    builds the volume from it and takes the surface, like a model's volume after the GPU.
    """

    name = "silhouette"

    def generate_shape(
        self,
        image: Image.Image,
        params: GenerationParams,
        on_progress: ProgressCallback,
        views: Mapping[str, Image.Image] | None = None,
    ) -> Shape:
        """One photo: its inflated outline. Several (a multi-view job): the visual hull of all
        their outlines (`visual_hull`), which a side view makes far closer to the object."""
        if views is not None and len(views) > 1:
            return hull_shape(views, on_progress)
        on_progress(0.1, "mask")
        grid = image_grid(image, params.octree_resolution)

        on_progress(0.5, "distance field")
        height_sq = inflate(signed_distance(grid.coverage))
        on_progress(1.0, "height map")
        return Shape(METHOD, self.name, {"height_sq": height_sq})


METHOD = "silhouette"


def silhouette_surface(
    shape: Shape, params: GenerationParams, on_progress: ProgressCallback
) -> trimesh.Trimesh:
    """The CPU stage's surface: the volume from the height map, its surface, mirrored, within
    the face budget (coloured after, see `finish.finished`)."""
    on_progress(0.2, "volume")
    field, cell_mask = _volume(shape.arrays["height_sq"])

    on_progress(0.5, "surface")
    front, front_faces = surface(field, cell_mask)  # open along the middle plane z = 0
    verts, faces, _ = _mirror(front, front_faces)
    on_progress(0.7, "reducing to the face budget")
    return within_budget(to_mesh(verts, faces), params.max_faces)


def _volume(height_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The field ``f = h² - z²`` ``(h, w, d) float32`` on the front half (sample ``k`` at
    ``z = k``), positive inside, and the marching-cubes cell mask.

    ``f`` has the same zero set as ``h - |z|``. The solid is symmetric front to back, so only
    the front half is surfaced and then mirrored: half the memory and time. The mask holds the
    cells whose corners straddle 0 (marching cubes skips the rest); skimage indexes a cell by
    its upper corner, hence the one-sample offset.
    """
    top = int(np.ceil(np.sqrt(max(float(height_sq.max()), 0.0)))) + PAD
    z_sq = np.arange(top, dtype=np.float32) ** 2
    # A zero on the middle plane would put a vertex on a grid corner, where faces degenerate.
    height_sq = np.where(height_sq == 0.0, np.float32(-1e-6), height_sq)
    field = height_sq[:, :, None] - z_sq[None, None, :]

    corners = (height_sq[:-1, :-1], height_sq[1:, :-1], height_sq[:-1, 1:], height_sq[1:, 1:])
    h_min = np.minimum.reduce(corners)
    h_max = np.maximum.reduce(corners)
    cell_mask = np.zeros(field.shape, dtype=bool)
    cell_mask[1:, 1:, 1:] = (h_min[:, :, None] <= z_sq[1:]) & (h_max[:, :, None] >= z_sq[:-1])
    return field, cell_mask


def _mirror(verts: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Close the front half with its mirror image behind the middle plane.

    The cut edge lies exactly on ``z = 0`` (marching cubes puts those vertices on the grid
    edges of the first slice), so the back half reuses those vertices and the two halves join
    without a seam. Returns the whole mesh's vertices and faces, and for each vertex the index
    of the front vertex it copies.
    """
    on_plane = verts[:, 2] == 0.0
    copied = np.flatnonzero(~on_plane)
    back_index = np.arange(len(verts), dtype=np.int32)
    back_index[copied] = len(verts) + np.arange(len(copied), dtype=np.int32)

    back = verts[copied] * np.array([1.0, 1.0, -1.0], dtype=np.float32)
    # Mirroring flips orientation: reverse the back faces to keep one winding throughout.
    back_faces = back_index[faces][:, ::-1]
    source = np.concatenate([np.arange(len(verts)), copied])
    return np.concatenate([verts, back]), np.concatenate([faces, back_faces]), source
