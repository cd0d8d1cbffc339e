"""The GPU stage of one generation from stored files to stored files: the body of a generator's
work loop (a shape, or a textured job's painting). The CPU stage (`finish.finish_stored`) runs
later, in the CPU pool."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from PIL import Image

from sweedle_core.errors import FileMissing
from sweedle_core.generation.paint import UNPAINTED, painted_or_kept, painter_of
from sweedle_core.generation.protocol import GeneratorBackend, ProgressCallback
from sweedle_core.generation.shape import Shape, read_shape, shape_bytes
from sweedle_core.jobs.tickets import GenerateTicket
from sweedle_core.params import VIEWS, GenerationParams
from sweedle_core.storage import Storage


@dataclass(frozen=True)
class Generated:
    """gpu_s : the GPU stage alone (`GeneratorBackend.generate_shape`); seconds : with the reads
    and the shape's store around it."""

    gpu_s: float
    seconds: float


def run_generation(
    generator: GeneratorBackend,
    storage: Storage,
    ticket: GenerateTicket,
    on_progress: ProgressCallback,
) -> Generated:
    """One GPU visit: make the ticket's shape from its prepared image and store it for the
    CPU stage; or, when the store holds a mesh the CPU pool unwrapped for a painter, paint it
    (a replica without a painter leaves it, and the CPU pool bakes the photo onto it)."""
    start = time.perf_counter()
    image = stored_image(storage, ticket.prepared_path)
    waiting = _waiting_for_paint(storage, ticket.shape_path)
    gpu_start = time.perf_counter()
    if waiting is not None:
        painter = painter_of(generator)
        shape = (
            waiting if painter is None else painted_or_kept(painter, waiting, image, on_progress)
        )
        if shape is waiting:
            return Generated(0.0, time.perf_counter() - start)
    else:
        views = _views(storage, image, ticket.views) if ticket.views else None
        params = GenerationParams(**ticket.params)
        shape = shape_of(generator, image, params, on_progress, views)
    gpu_s = time.perf_counter() - gpu_start
    storage.put(ticket.shape_path, shape_bytes(shape))
    return Generated(gpu_s, time.perf_counter() - start)


def _waiting_for_paint(storage: Storage, key: str) -> Shape | None:
    """The unwrapped mesh a textured job left at ``key`` for a painter, if that is what the
    store holds there (anything else there is an earlier visit's, made again)."""
    try:
        shape = read_shape(storage.get(key))
    except FileMissing:
        return None
    return shape if shape.method == UNPAINTED else None


def shape_of(
    generator: GeneratorBackend,
    image: Image.Image,
    params: GenerationParams,
    on_progress: ProgressCallback,
    views: Mapping[str, Image.Image] | None = None,
) -> Shape:
    """The GPU stage, marked with the backend that ran; ``views`` only where there are some
    (a plugin written for one photo need not take them)."""
    extra = {"views": views} if views else {}
    shape = generator.generate_shape(image, params, on_progress, **extra)
    return replace(shape, generator=generator.name)


def stored_image(storage: Storage, key: str) -> Image.Image:
    """The stored image at ``key``, decoded."""
    with Image.open(io.BytesIO(storage.get(key))) as image:
        image.load()
    return image


def _views(
    storage: Storage, front: Image.Image, prepared: dict[str, str]
) -> dict[str, Image.Image]:
    """Every photo of a multi-view job by view name, in `VIEWS` order."""
    found = {"front": front, **{v: stored_image(storage, k) for v, k in prepared.items()}}
    return {view: found[view] for view in VIEWS if view in found}
