"""The one protocol every generator follows, so backends are interchangeable."""

from __future__ import annotations

from typing import Protocol

import trimesh
from PIL import Image

from sweedle_core.params import GenerationParams


class ProgressCallback(Protocol):
    def __call__(self, fraction: float, message: str) -> None:
        """Report progress in [0, 1]. Raises `JobCancelled` when the job was cancelled."""


class Generator(Protocol):
    """Turns one prepared image into a mesh.

    ``image`` is RGBA, square, the object centred with its background transparent.
    The returned mesh is in metres-like units centred on the origin, +Y up, and carries
    per-vertex colours ``(n, 4) uint8`` where the backend can colour it.
    """

    name: str

    def generate(
        self, image: Image.Image, params: GenerationParams, on_progress: ProgressCallback
    ) -> trimesh.Trimesh: ...
