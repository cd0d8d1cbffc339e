"""The CPU stage of a generation: a stored `Shape` becomes the final mesh, in the CPU pool.

Each shape names its method; `FINISHERS` maps the name to the function that finishes it. A
plugin generator (``GENERATOR_BACKEND=package.module:Class``) may bring its own CPU stage as a
``finish`` static method on its class, used for shapes whose method is the plugin's own name;
the name comes from the server's settings, never from the stored shape alone.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping

import numpy as np
import trimesh
from PIL import Image

from sweedle_core.errors import FileMissing, InvalidInput, ShapeLost, StorageUnavailable
from sweedle_core.export.mesh_io import raw_mesh_bytes, read_raw_mesh
from sweedle_core.generation.depth import METHOD as DEPTH
from sweedle_core.generation.depth import finish_depth
from sweedle_core.generation.hunyuan_surface import METHOD as HUNYUAN
from sweedle_core.generation.hunyuan_surface import finish_hunyuan
from sweedle_core.generation.protocol import (
    GENERATOR_KEY,
    Finisher,
    Generator,
    ProgressCallback,
)
from sweedle_core.generation.runner import shape_of, stored_image
from sweedle_core.generation.shape import Shape, read_shape
from sweedle_core.generation.silhouette import METHOD as SILHOUETTE
from sweedle_core.generation.silhouette import finish_silhouette
from sweedle_core.generation.visual_hull import METHOD as HULL
from sweedle_core.generation.visual_hull import finish_visual_hull
from sweedle_core.jobs.tickets import ExportTicket
from sweedle_core.params import DEFAULT_TEXTURE_SIZE, GenerationParams
from sweedle_core.storage import Storage

log = logging.getLogger(__name__)
MESH = "mesh"  # a shape that is already the final mesh (painted on the GPU)


def mesh_shape(generator: str, mesh: trimesh.Trimesh) -> Shape:
    """A finished mesh as a shape, for a GPU stage that had to make the mesh itself."""
    return Shape(MESH, generator, {"raw_mesh": np.frombuffer(raw_mesh_bytes(mesh), np.uint8)})


def finish_mesh(
    shape: Shape,
    image: Image.Image,
    params: GenerationParams,
    on_progress: ProgressCallback,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> trimesh.Trimesh:
    on_progress(1.0, "done")
    return read_raw_mesh(shape.arrays["raw_mesh"].tobytes())


FINISHERS: dict[str, Finisher] = {
    SILHOUETTE: finish_silhouette,
    DEPTH: finish_depth,
    HUNYUAN: finish_hunyuan,
    MESH: finish_mesh,
    HULL: finish_visual_hull,
}


def finisher_for(method: str, plugin: str | None = None) -> Finisher:
    """The CPU stage of ``method``; ``plugin`` is the configured ``module:Class`` backend."""
    if method in FINISHERS:
        return FINISHERS[method]
    if plugin is not None and ":" in plugin:
        module_name, _, attr = plugin.partition(":")
        backend = getattr(importlib.import_module(module_name), attr)
        if getattr(backend, "name", None) == method and hasattr(backend, "finish"):
            return _plugin_finisher(backend.finish)
    raise InvalidInput(f"no CPU stage for shapes of method {method!r}")


def _plugin_finisher(finish: Callable[..., trimesh.Trimesh]) -> Finisher:
    """A plugin's ``finish(shape, image, params, on_progress)`` as a `Finisher`: the texture
    size is the built-in finishers' own, a plugin colours as it likes."""

    def finisher(
        shape: Shape,
        image: Image.Image,
        params: GenerationParams,
        on_progress: ProgressCallback,
        *,
        texture_size: int = DEFAULT_TEXTURE_SIZE,
    ) -> trimesh.Trimesh:
        return finish(shape, image, params, on_progress)

    return finisher


def make_mesh(
    generator: Generator,
    image: Image.Image,
    params: GenerationParams,
    on_progress: ProgressCallback,
    plugin: str | None = None,
    views: Mapping[str, Image.Image] | None = None,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> trimesh.Trimesh:
    """Both stages in this process, one after the other (tests, benchmarks, tools)."""
    shape = shape_of(generator, image, params, on_progress, views)
    return finished(shape, image, params, on_progress, plugin, texture_size=texture_size)


def finished(
    shape: Shape,
    image: Image.Image,
    params: GenerationParams,
    on_progress: ProgressCallback,
    plugin: str | None = None,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> trimesh.Trimesh:
    """The final mesh of ``shape``, marked with the generator that made the shape; the photo
    is baked into a ``texture_size`` px texture where the method colours from it."""
    finish = finisher_for(shape.method, plugin)
    mesh = finish(shape, image, params, on_progress, texture_size=texture_size)
    mesh.metadata[GENERATOR_KEY] = shape.generator
    return mesh


def finish_stored(
    storage: Storage,
    ticket: ExportTicket,
    on_progress: ProgressCallback,
    plugin: str | None = None,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> float:
    """The CPU stage from the store to the store: the shape and the prepared image in, the raw
    mesh (the export chain's input, with its texture) out, then the shape removed. Returns its
    seconds, 0 when an earlier run already stored the mesh; `ShapeLost` when neither is
    stored."""
    start = time.perf_counter()
    try:
        data = storage.get(ticket.shape_path)
    except FileMissing:
        if storage.exists(ticket.raw_mesh_path):
            return 0.0
        raise ShapeLost(f"the generated shape {ticket.shape_path} is gone from the store") from None
    shape = read_shape(data)
    image = stored_image(storage, ticket.prepared_path)
    params = GenerationParams(**ticket.params)
    mesh = finished(shape, image, params, on_progress, plugin, texture_size=texture_size)
    storage.put(ticket.raw_mesh_path, raw_mesh_bytes(mesh))
    try:  # a shape can be hundreds of MB; one left behind goes with the asset's folder
        storage.delete(ticket.shape_path)
    except StorageUnavailable as exc:
        log.warning("could not remove %s: %s", ticket.shape_path, exc)
    return time.perf_counter() - start
