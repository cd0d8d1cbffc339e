"""The protocols every generator follows, so backends are interchangeable.

A generation runs in two stages. The GPU stage (`GeneratorBackend.generate_shape`, on a generator
replica) does the model's work and ends with a `Shape`; the CPU stage (a `Finisher`, in the
CPU pool) turns the shape into the final mesh. A method that holds the GPU does only GPU work.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import trimesh
from PIL import Image

from sweedle_core.generation.shape import Shape
from sweedle_core.params import DEFAULT_TEXTURE_SIZE, GenerationParams

# What made a mesh and how it got its colours: ``mesh.metadata[GENERATOR_KEY]`` (the backend
# that ran) and ``mesh.metadata[TEXTURE_KEY]``, both kept with the raw mesh and recorded on the
# asset.
GENERATOR_KEY = "generator"
TEXTURE_KEY = "texture"
TEXTURE_PAINT = "hunyuan3d_paint"  # Hunyuan3D's texture model: its UV texture (and PBR maps)
TEXTURE_FROM_IMAGE = "image_projection"  # the photo projected onto the front, mirrored behind
TEXTURE_NONE = "none"
# Set (to the reason) when the photo could not be baked into a UV texture and the mesh carries
# per-vertex colours from it instead; kept with the raw mesh and reported with the asset.
TEXTURE_FALLBACK_KEY = "texture_fallback"


class ProgressCallback(Protocol):
    def __call__(self, fraction: float, message: str) -> None:
        """Report progress in [0, 1]. Raises `JobCancelled` when the job was cancelled."""


class GeneratorBackend(Protocol):
    """Turns one prepared image into a `Shape` (the GPU stage).

    ``image`` is RGBA, square, the object centred with its background transparent. ``views``
    (a multi-view job only) holds every prepared photo by view name (`params.VIEWS`), the front
    included; a backend that uses one photo makes its shape from ``image``.
    """

    name: str

    def generate_shape(
        self,
        image: Image.Image,
        params: GenerationParams,
        on_progress: ProgressCallback,
        views: Mapping[str, Image.Image] | None = None,
    ) -> Shape: ...


class Surface(Protocol):
    """Turns a model's `Shape` into its final surface (the CPU stage before colour): centred,
    +Y up, within ``params.max_faces``, uncoloured."""

    def __call__(
        self, shape: Shape, params: GenerationParams, on_progress: ProgressCallback
    ) -> trimesh.Trimesh: ...


class Finisher(Protocol):
    """Turns a `Shape` into the final mesh (the CPU stage), needing no model.

    The mesh is in metres-like units centred on the origin, +Y up, and carries a UV texture
    ``texture_size`` pixels square where the method can colour it (per-vertex colours
    ``(n, 4) uint8`` where unwrapping fails, saying why in ``metadata[TEXTURE_FALLBACK_KEY]``),
    saying how in ``mesh.metadata[TEXTURE_KEY]``. ``image`` is the prepared image the shape was
    made from.
    """

    def __call__(
        self,
        shape: Shape,
        image: Image.Image,
        params: GenerationParams,
        on_progress: ProgressCallback,
        *,
        texture_size: int = DEFAULT_TEXTURE_SIZE,
    ) -> trimesh.Trimesh: ...
