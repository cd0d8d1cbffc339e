"""The ``depth`` CPU generator: a monocular depth model's front surface, closed into a solid.

A depth model (Depth Anything V2 Small by default, through transformers' depth-estimation
pipeline) estimates how near each pixel of the photo is. That gives the object's front; the
back is not seen, so it is built from the outline: a rounded shell behind the front, thinner
than the object is wide, never a mirror of the face. On a photo the result follows the real
relief of the front (a nose, a handle, the rim of a cup) where the `silhouette` backend can
only inflate the outline.

Steps, on a grid of ``octree_resolution`` cells across the image (`sweedle_core.generation.grid`):

1. depth: the model's relative inverse depth for the cut-out (composited on grey), averaged
   over the object's pixels in each cell, then scaled so the object's nearest-to-farthest range
   is ``relief`` times its smaller planar extent (the model's depth is relative: it has no
   scale of its own);
2. rim: the depth along the outline, carried inward and smoothed; the front rounds over into it
   within a few cells of the outline, so front and back meet there without a ridge;
3. back: behind the nearer of the front and the rim, a dome shaped by the outline (the profile
   the silhouette backend inflates), ``thickness`` times the smaller planar extent at its
   deepest;
   (the first stage ends here, on the generator replica where the depth model runs; the
   height maps are the shape handed to the CPU stage)
4. surface: marching cubes on the solid between front and back, only in the cells the surface
   crosses: a closed, watertight mesh, reduced to the face budget (``max_faces``) by the LODs'
   simplifier, which keeps it closed;
5. colour: the photo baked into a UV texture (`photo_texture`): each point takes the photo's
   colour at its (x, y), front and back alike.

Frame as every backend: centred, the larger planar extent 1, +Y up, +Z toward the viewer.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import trimesh
from PIL import Image
from scipy import ndimage

from sweedle_core.devices import TORCH_INSTALL, resolve_device
from sweedle_core.errors import GenerationFailed, ModelUnavailable
from sweedle_core.export.lod_generator import within_budget
from sweedle_core.generation.grid import (
    PAD,
    image_grid,
    signed_distance,
    smaller_extent,
    surface,
    surface_cells,
    to_mesh,
)
from sweedle_core.generation.protocol import ProgressCallback
from sweedle_core.generation.shape import Shape
from sweedle_core.params import GenerationParams

# The grey the cut-out is shown on: depth models are trained on whole photos, and a neutral
# flat background reads as a wall behind the object.
_BACKDROP = (128, 128, 128)
# The share of the object's depth values ignored at each end (specks of wrong depth).
_DEPTH_PERCENTILES = (0.5, 99.5)
# Rounding of the front into the rim: its width in cells, at least, and as a share of the
# smaller extent.
_RIM_CELLS, _RIM_SHARE = 2.0, 0.03
# Smoothing of the rim depth carried inward, as a share of the smaller extent.
_RIM_SMOOTH_SHARE = 0.05


class DepthEstimator(Protocol):
    """A monocular depth model: an RGB image in, its relative inverse depth out."""

    def estimate(self, image: Image.Image) -> np.ndarray:
        """``(H, W) float32`` for an ``image`` of W x H pixels; larger values are nearer."""
        ...


class TransformersDepth:
    """A depth-estimation model through transformers' pipeline, from a local folder only:
    ``sweedle models pull`` puts it there, a replica never downloads."""

    def __init__(self, folder: Path, device: str = "auto") -> None:
        try:
            import torch
            from transformers import pipeline
            from transformers.utils import logging as transformers_logging
        except ImportError as exc:
            raise ModelUnavailable(
                f"the depth generator needs torch and transformers ({exc}); install them with "
                f"{TORCH_INSTALL}"
            ) from exc
        self.device = resolve_device(torch, device)
        transformers_logging.disable_progress_bar()  # a replica's log is no terminal
        try:
            self._pipeline = pipeline(
                "depth-estimation", model=str(folder), device=self.device, local_files_only=True
            )
        except Exception as exc:  # a corrupt or incomplete download: say so, do not crash
            detail = " ".join(str(exc).split())
            raise ModelUnavailable(
                f"the depth model in {folder} could not be loaded ({type(exc).__name__}: "
                f"{detail}); `sweedle models pull depth` fetches it again"
            ) from exc
        self._torch = torch
        self._lock = threading.Lock()  # one pipeline call at a time per replica

    def estimate(self, image: Image.Image) -> np.ndarray:
        with self._lock, self._torch.inference_mode():
            result: Any = self._pipeline(image)
        depth = result["predicted_depth"]
        values = depth.detach().float().cpu().numpy() if hasattr(depth, "detach") else depth
        values = np.squeeze(np.asarray(values, dtype=np.float32))
        if values.shape != (image.height, image.width):
            resized = Image.fromarray(values).resize(image.size, Image.Resampling.BILINEAR)
            values = np.asarray(resized, dtype=np.float32)
        return values


class DepthGenerator:
    """Front from a depth model, back from the outline; see the module docstring."""

    name = "depth"

    def __init__(self, estimator: DepthEstimator, relief: float = 0.5, thickness: float = 0.35):
        """
        relief : the front's nearest-to-farthest depth, as a share of the smaller planar extent.
        thickness : the back's deepest point behind the rim, as a share of the same.
        """
        self.estimator = estimator
        self.relief = relief
        self.thickness = thickness

    def generate_shape(
        self,
        image: Image.Image,
        params: GenerationParams,
        on_progress: ProgressCallback,
        views: Mapping[str, Image.Image] | None = None,
    ) -> Shape:
        """The front photo's depth; a multi-view job's other photos are not used (the
        silhouette backend carves them into a visual hull)."""
        on_progress(0.05, "estimating depth")
        rgba = image.convert("RGBA")
        backdrop = Image.new("RGB", rgba.size, _BACKDROP)
        backdrop.paste(rgba, mask=rgba.getchannel("A"))
        depth = self.estimator.estimate(backdrop)
        if depth.shape != (rgba.height, rgba.width) or not np.isfinite(depth).all():
            raise GenerationFailed(f"the depth model returned {depth.shape}, not a depth map")

        on_progress(0.7, "front and back surfaces")
        grid = image_grid(rgba, params.octree_resolution, extra=depth)
        assert grid.extra is not None
        sd = signed_distance(grid.coverage)
        front, back, rim = self._surfaces(sd, grid.extra[..., 0])
        on_progress(1.0, "height maps")
        arrays = {"sd": sd, "front": front, "back": back, "rim": rim}
        return Shape(METHOD, self.name, arrays)

    def _surfaces(
        self, sd: np.ndarray, disparity: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Heights in cells toward the viewer, ``(h, w) float32`` each: the front, the back,
        and the rim depth carried over the whole grid."""
        inside = sd > 0
        extent = smaller_extent(sd)
        lo, hi = np.percentile(disparity[inside], _DEPTH_PERCENTILES)
        scale = self.relief * extent / (hi - lo) if hi - lo > 1e-6 else 0.0
        raw = np.clip(disparity - lo, 0.0, hi - lo) * scale  # 0 at the farthest, relief nearest
        raw = ndimage.gaussian_filter(raw, 1.0)

        # The outline's depth: the outermost cells' (a round object's front is steepest
        # there, so deeper cells would put the rim too near), the lowest of each few cells.
        outline = inside & (sd <= 0.75)
        lowest = ndimage.minimum_filter(np.where(outline, raw, np.inf), size=3)
        rim = _carried_inward(lowest, outline, max(1.0, _RIM_SMOOTH_SHARE * extent))
        width = max(_RIM_CELLS, _RIM_SHARE * extent)
        t = np.clip(sd / width, 0.0, 1.0)
        rounding = np.sqrt(1.0 - (1.0 - t) ** 2)  # a quarter circle: the edge rounds over
        front = rim + rounding * (raw - rim)

        depth_max = float(sd.max())
        s = np.clip(sd, 0.0, depth_max) / depth_max
        dome = np.sqrt(s * (2.0 - s))  # the outline's round profile, 1 at the deepest point
        back = np.minimum(front, rim) - self.thickness * extent * dome

        return front.astype(np.float32), back.astype(np.float32), rim.astype(np.float32)


METHOD = "depth"


def depth_surface(
    shape: Shape, params: GenerationParams, on_progress: ProgressCallback
) -> trimesh.Trimesh:
    """The CPU stage's surface: the solid between the front and back height maps, within the
    face budget (coloured after, see `finish.finished`)."""
    on_progress(0.2, "surface")
    a = shape.arrays
    verts, faces = _solid_surface(a["sd"], a["front"], a["back"], a["rim"])

    on_progress(0.7, "reducing to the face budget")
    return within_budget(to_mesh(verts, faces), params.max_faces)


def _carried_inward(values: np.ndarray, source: np.ndarray, sigma: float) -> np.ndarray:
    """Every cell takes the value of the nearest ``source`` cell, then the field is smoothed."""
    if not source.any():
        return np.zeros_like(values)
    _, (rows, cols) = ndimage.distance_transform_edt(~source, return_indices=True)
    return ndimage.gaussian_filter(values[rows, cols], sigma)


def _solid_surface(
    sd: np.ndarray, front: np.ndarray, back: np.ndarray, rim: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The surface of the solid between ``back`` and ``front`` inside the outline: vertices
    ``(n, 3) float32`` in (row, col, z) cells and faces ``(m, 3) int32``.

    The field is ``(front - z)(z - back)`` inside, positive in the solid. Near the outline the
    thickness grows like the square root of the distance (the edge is round, vertical in side
    view), so the product grows about linearly there and marching cubes places the outline
    smoothly, which ``min(front - z, z - back)`` would not. Outside the outline the field is
    ``-((z - rim)² + distance²)``: it meets the inside's where front and back close on the rim,
    and is negative everywhere else.
    """
    z_low = int(np.floor(back[sd > 0].min())) - PAD
    z_high = int(np.ceil(front[sd > 0].max())) + PAD
    z = np.arange(z_low, z_high + 1, dtype=np.float32)
    field = np.empty((*sd.shape, len(z)), dtype=np.float32)
    inside = sd > 0
    for k, height in enumerate(z):  # a slice at a time: one volume in memory, not four
        solid = (front - height) * (height - back)
        outside = -(np.square(height - rim) + np.square(sd))
        field[..., k] = np.where(inside, solid, outside)
    verts, faces = surface(field, surface_cells(field))
    verts[:, 2] += z_low
    return verts, faces
