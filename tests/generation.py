"""A whole generation in this process, stage after stage, for tests and benchmarks: the
service runs the same stages on a GPU replica and in the CPU pool, with the store between them
(`runner.run_generation`, `finish.finish_stored`)."""

from __future__ import annotations

from collections.abc import Mapping

import trimesh
from PIL import Image

from sweedle_core.generation.finish import SURFACES, finished, to_paint
from sweedle_core.generation.paint import painted_or_kept, painter_of
from sweedle_core.generation.protocol import GeneratorBackend, ProgressCallback
from sweedle_core.generation.runner import shape_of
from sweedle_core.params import DEFAULT_TEXTURE_SIZE, GenerationParams


def make_mesh(
    generator: GeneratorBackend,
    image: Image.Image,
    params: GenerationParams,
    on_progress: ProgressCallback,
    plugin: str | None = None,
    views: Mapping[str, Image.Image] | None = None,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> trimesh.Trimesh:
    """Every stage in this process, one after the other, painting included where the
    generator can paint and the job asks for texture."""
    shape = shape_of(generator, image, params, on_progress, views)
    painter = painter_of(generator) if params.texture else None
    if painter is not None and shape.method in SURFACES:
        prepared = to_paint(shape, image, params, on_progress, texture_size=texture_size)
        if isinstance(prepared, trimesh.Trimesh):
            return prepared
        shape = painted_or_kept(painter, prepared, image, on_progress)
    return finished(shape, image, params, on_progress, plugin, texture_size=texture_size)
