"""The one protocol every generator follows, so backends are interchangeable."""

from __future__ import annotations

from typing import Protocol

import trimesh
from PIL import Image

from sweedle_core.params import GenerationParams

# What made a mesh and how it got its colours: ``mesh.metadata[GENERATOR_KEY]`` (the backend
# that ran, set by the runner) and ``mesh.metadata[TEXTURE_KEY]``, both kept with the raw mesh
# and recorded on the asset.
GENERATOR_KEY = "generator"
TEXTURE_KEY = "texture"
TEXTURE_PAINT = "hunyuan3d_paint"  # Hunyuan3D's texture model, baked to vertex colours
TEXTURE_FROM_IMAGE = "image_projection"  # the photo projected onto the front, mirrored behind
TEXTURE_NONE = "none"


class ProgressCallback(Protocol):
    def __call__(self, fraction: float, message: str) -> None:
        """Report progress in [0, 1]. Raises `JobCancelled` when the job was cancelled."""


class Generator(Protocol):
    """Turns one prepared image into a mesh.

    ``image`` is RGBA, square, the object centred with its background transparent.
    The returned mesh is in metres-like units centred on the origin, +Y up, and carries
    per-vertex colours ``(n, 4) uint8`` where the backend can colour it, and says how in
    ``mesh.metadata[TEXTURE_KEY]``.
    """

    name: str

    def generate(
        self, image: Image.Image, params: GenerationParams, on_progress: ProgressCallback
    ) -> trimesh.Trimesh: ...
