"""The CPU stage of a generation: a stored `Shape` becomes the final mesh, in the CPU pool.

Each shape names its method. A model's shape (a method in `SURFACES`) first becomes its
surface: extracted, cleaned, within the face budget, uncoloured. The surface is then coloured:
the photo baked into a UV texture, or, for a textured job whose generator can paint,
unwrapped and handed back to a GPU to be painted (`paint`). The shapes of the paint path are
finished by `FINISHERS`. A plugin generator (``GENERATOR_BACKEND=package.module:Class``) may
bring its own CPU stage as a ``finish`` static method on its class, used for shapes whose
method is the plugin's own name; the name comes from the server's settings, never from the
stored shape alone.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import trimesh
from PIL import Image

from sweedle_core.errors import FileMissing, InvalidInput, ShapeLost, StorageUnavailable
from sweedle_core.export.mesh_io import raw_mesh_bytes
from sweedle_core.generation.depth import METHOD as DEPTH
from sweedle_core.generation.depth import depth_surface
from sweedle_core.generation.hunyuan_surface import METHOD as HUNYUAN
from sweedle_core.generation.hunyuan_surface import hunyuan_mesh
from sweedle_core.generation.paint import (
    MESH,
    PAINTED,
    UNPAINTED,
    finish_mesh,
    finish_painted,
    finish_unpainted,
    unpainted_shape,
)
from sweedle_core.generation.photo_texture import (
    UnwrapFailed,
    photo_vertex_colours,
    texture_from_photo,
)
from sweedle_core.generation.protocol import (
    GENERATOR_KEY,
    Finisher,
    ProgressCallback,
    Surface,
)
from sweedle_core.generation.runner import stored_image
from sweedle_core.generation.shape import Shape, read_shape, shape_bytes
from sweedle_core.generation.silhouette import METHOD as SILHOUETTE
from sweedle_core.generation.silhouette import silhouette_surface
from sweedle_core.generation.visual_hull import METHOD as HULL
from sweedle_core.generation.visual_hull import hull_surface
from sweedle_core.jobs.tickets import ExportTicket
from sweedle_core.params import DEFAULT_TEXTURE_SIZE, GenerationParams
from sweedle_core.storage import Storage

log = logging.getLogger(__name__)

SURFACES: dict[str, Surface] = {
    SILHOUETTE: silhouette_surface,
    DEPTH: depth_surface,
    HUNYUAN: hunyuan_mesh,
    HULL: hull_surface,
}
FINISHERS: dict[str, Finisher] = {
    MESH: finish_mesh,
    UNPAINTED: finish_unpainted,
    PAINTED: finish_painted,
}


@dataclass(frozen=True)
class Finished:
    """seconds : the CPU stage's (0 when an earlier run stored the mesh); paint : the mesh was
    stored unwrapped for a painter instead, and the job goes back to a GPU."""

    seconds: float
    paint: bool = False


def finisher_for(method: str, plugin: str | None = None) -> Finisher:
    """The CPU stage of ``method``; ``plugin`` is the configured ``module:Class`` backend."""
    if method in SURFACES:
        return _photo_finisher(SURFACES[method])
    if method in FINISHERS:
        return FINISHERS[method]
    if plugin is not None and ":" in plugin:
        module_name, _, attr = plugin.partition(":")
        backend = getattr(importlib.import_module(module_name), attr)
        if getattr(backend, "name", None) == method and hasattr(backend, "finish"):
            return _plugin_finisher(backend.finish)
    raise InvalidInput(f"no CPU stage for shapes of method {method!r}")


def _photo_finisher(surface: Surface) -> Finisher:
    """The surface, then the photo baked into a ``texture_size`` px UV texture."""

    def finisher(
        shape: Shape,
        image: Image.Image,
        params: GenerationParams,
        on_progress: ProgressCallback,
        *,
        texture_size: int = DEFAULT_TEXTURE_SIZE,
    ) -> trimesh.Trimesh:
        mesh = surface(shape, params, on_progress)
        on_progress(0.8, "colouring from the photo")  # baked into a UV texture
        mesh = texture_from_photo(mesh, image, texture_size)
        on_progress(1.0, "done")
        return mesh

    return finisher


def to_paint(
    shape: Shape,
    image: Image.Image,
    params: GenerationParams,
    on_progress: ProgressCallback,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> Shape | trimesh.Trimesh:
    """The CPU step before painting: the surface of ``shape`` (a `SURFACES` method) unwrapped,
    as the `UNPAINTED` shape a painter takes; where xatlas cannot unwrap it, the final mesh
    instead, coloured from the photo per vertex (saying why)."""
    mesh = SURFACES[shape.method](shape, params, on_progress)
    on_progress(0.8, "unwrapping the mesh for the painter")
    try:
        return unpainted_shape(shape.generator, mesh, texture_size)
    except UnwrapFailed as exc:
        return _marked(photo_vertex_colours(mesh, image, str(exc)), shape)


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
    return _marked(finish(shape, image, params, on_progress, texture_size=texture_size), shape)


def finish_stored(
    storage: Storage,
    ticket: ExportTicket,
    on_progress: ProgressCallback,
    plugin: str | None = None,
    *,
    texture_size: int = DEFAULT_TEXTURE_SIZE,
) -> Finished:
    """The CPU stage from the store to the store: the shape and the prepared image in, the raw
    mesh (the export chain's input, with its texture) out, then the shape removed; or, when
    the ticket says a painter waits, the unwrapped mesh stored in the shape's place. Raises
    `ShapeLost` when neither the shape nor the mesh is stored."""
    start = time.perf_counter()
    try:
        data = storage.get(ticket.shape_path)
    except FileMissing:
        if storage.exists(ticket.raw_mesh_path):
            return Finished(0.0)
        raise ShapeLost(f"the generated shape {ticket.shape_path} is gone from the store") from None
    shape = read_shape(data)
    if ticket.paint and shape.method == UNPAINTED:
        return Finished(0.0, paint=True)  # unwrapped before a restart: still to be painted
    image = stored_image(storage, ticket.prepared_path)
    params = GenerationParams(**ticket.params)
    if ticket.paint and shape.method in SURFACES:
        prepared = to_paint(shape, image, params, on_progress, texture_size=texture_size)
        if isinstance(prepared, Shape):
            storage.put(ticket.shape_path, shape_bytes(prepared))
            return Finished(time.perf_counter() - start, paint=True)
        mesh = prepared
    else:
        mesh = finished(shape, image, params, on_progress, plugin, texture_size=texture_size)
    storage.put(ticket.raw_mesh_path, raw_mesh_bytes(mesh))
    try:  # a shape can be hundreds of MB; one left behind goes with the asset's folder
        storage.delete(ticket.shape_path)
    except StorageUnavailable as exc:
        log.warning("could not remove %s: %s", ticket.shape_path, exc)
    return Finished(time.perf_counter() - start)


def _marked(mesh: trimesh.Trimesh, shape: Shape) -> trimesh.Trimesh:
    """``mesh`` marked with the generator that made ``shape``."""
    mesh.metadata[GENERATOR_KEY] = shape.generator
    return mesh
