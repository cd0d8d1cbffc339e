"""Stand-ins for a texture model (the real ones need CUDA), shared by the paint-path tests.

`FrontPainter` follows Sweedle's `Painter` protocol: it "paints" every point of the surface by
its position (x -> red, y -> green, z -> blue) into the mesh's own UV layout, and "sees" only
the front half (z >= 0), as views from the front would; the back is left for the CPU pool to
fill. `Hy3dgenPaint` is shaped like hy3dgen 2.0.2's ``Hunyuan3DPaintPipeline`` as far as
Sweedle drives it step by step, and bakes what `FrontPainter` paints.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import trimesh
from PIL import Image

from sweedle_core.generation.paint import Painting
from sweedle_core.generation.photo_texture import rasterize

PAINT_SIZE = 128


def position_colours(vertices: np.ndarray) -> np.ndarray:
    """``(k, 3)`` in 0..255: a point's colour is its position, the mesh's bounds mapped to the
    colour cube."""
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    return 255.0 * (vertices - low) / np.maximum(high - low, 1e-9)


def front_painting(mesh: trimesh.Trimesh, size: int = PAINT_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """``(texture (size, size, 3) uint8, seen (size, size) bool)`` over ``mesh``'s UVs."""
    vertices = np.asarray(mesh.vertices)
    values = np.column_stack([position_colours(vertices), vertices[:, 2]])
    covered, blended = rasterize(np.asarray(mesh.visual.uv), mesh.faces, values, size)
    seen = covered & (blended[..., 3] >= 0.0)
    texture = np.zeros((size, size, 3), dtype=np.uint8)
    texture[seen] = np.clip(np.rint(blended[seen][:, :3]), 0, 255).astype(np.uint8)
    return texture, seen


class FrontPainter:
    """A `Painter` that paints the front half by position; records what it was given."""

    name = "front-painter"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.painted: list[trimesh.Trimesh] = []

    def paint(self, mesh: trimesh.Trimesh, image: Image.Image, on_progress: Any) -> Painting:
        if self.fail:
            raise RuntimeError("CUDA out of memory (a stand-in)")
        self.painted.append(mesh)
        on_progress(0.5, "painting the views")
        texture, seen = front_painting(mesh)
        return Painting(texture=texture, seen=seen)


class _Tensor:
    """The little of a torch tensor the paint driver reads."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def cpu(self) -> _Tensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.values


class _Render:
    def __init__(self) -> None:
        self.mesh: trimesh.Trimesh | None = None

    def load_mesh(self, mesh: trimesh.Trimesh) -> None:
        self.mesh = mesh


class Hy3dgenPaint:
    """hy3dgen's paint pipeline, step by step: delight, render, multi-view, bake; calling it
    whole (which would unwrap the mesh again) is an error here."""

    instances: list[Hy3dgenPaint] = []

    def __init__(self) -> None:
        self.config = types.SimpleNamespace(
            candidate_camera_elevs=[0, 0, 0, 0, 90, -90],
            candidate_camera_azims=[0, 90, 180, 270, 0, 180],
            candidate_view_weights=[1, 0.1, 0.5, 0.1, 0.05, 0.05],
            render_size=64,
            texture_size=PAINT_SIZE,
            merge_method="fast",
        )
        self.render = _Render()
        self.models = {"delight_model": self._delight, "multiview_model": self._multiview}
        self.steps: list[str] = []
        self.camera_info: list[int] = []
        Hy3dgenPaint.instances.append(self)

    @classmethod
    def from_pretrained(cls, path: str) -> Hy3dgenPaint:
        return cls()

    def __call__(self, mesh: Any, image: Any) -> Any:
        raise AssertionError("the whole call unwraps the mesh again on the GPU")

    def recenter_image(self, image: Image.Image) -> Image.Image:
        self.steps.append("recenter")
        return image

    def _delight(self, image: Image.Image) -> Image.Image:
        self.steps.append("delight")
        return image.convert("RGB")

    def render_normal_multiview(self, elevs: list[int], azims: list[int], use_abs_coor: bool):
        self.steps.append("normals")
        return [Image.new("RGB", (self.config.render_size,) * 2) for _ in elevs]

    def render_position_multiview(self, elevs: list[int], azims: list[int]):
        self.steps.append("positions")
        return [Image.new("RGB", (self.config.render_size,) * 2) for _ in elevs]

    def _multiview(self, prompt: Image.Image, maps: list[Image.Image], camera_info: list[int]):
        self.steps.append("multiview")
        self.camera_info = list(camera_info)
        return [Image.new("RGB", (32, 32)) for _ in camera_info]

    def bake_from_multiview(self, views, elevs, azims, weights, method: str):
        self.steps.append("bake")
        assert all(view.size == (self.config.render_size,) * 2 for view in views)
        assert self.render.mesh is not None
        texture, seen = front_painting(self.render.mesh, self.config.texture_size)
        return _Tensor(texture.astype(np.float32) / 255.0), _Tensor(seen[..., None])
