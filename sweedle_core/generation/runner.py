"""The GPU stage of one generation from stored files to stored files: the body of a generator's
work loop. The CPU stage (`finish.finish_stored`) runs later, in the CPU pool."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from PIL import Image

from sweedle_core.generation.protocol import Generator, ProgressCallback
from sweedle_core.generation.shape import Shape, shape_bytes
from sweedle_core.jobs.tickets import GenerateTicket
from sweedle_core.params import VIEWS, GenerationParams
from sweedle_core.storage import Storage


@dataclass(frozen=True)
class Generated:
    """gpu_s : the GPU stage alone (`Generator.generate_shape`); seconds : with the reads and
    the shape's store around it."""

    gpu_s: float
    seconds: float


def run_generation(
    generator: Generator, storage: Storage, ticket: GenerateTicket, on_progress: ProgressCallback
) -> Generated:
    """Make the ticket's shape from its prepared image and store it for the CPU stage."""
    start = time.perf_counter()
    image = stored_image(storage, ticket.prepared_path)
    views = _views(storage, image, ticket.views) if ticket.views else None
    params = GenerationParams(**ticket.params)
    gpu_start = time.perf_counter()
    shape = shape_of(generator, image, params, on_progress, views)
    gpu_s = time.perf_counter() - gpu_start
    storage.put(ticket.shape_path, shape_bytes(shape))
    return Generated(gpu_s, time.perf_counter() - start)


def shape_of(
    generator: Generator,
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
