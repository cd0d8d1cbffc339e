"""One generation from stored files to stored files: the body of a generator's work loop."""

from __future__ import annotations

import io
import time

from PIL import Image

from sweedle_core.export.mesh_io import raw_mesh_bytes
from sweedle_core.generation.protocol import GENERATOR_KEY, Generator, ProgressCallback
from sweedle_core.jobs.tickets import GenerateTicket
from sweedle_core.params import GenerationParams
from sweedle_core.storage import Storage


def run_generation(
    generator: Generator, storage: Storage, ticket: GenerateTicket, on_progress: ProgressCallback
) -> float:
    """Generate the ticket's mesh from its prepared image; returns the seconds it took."""
    start = time.perf_counter()
    with Image.open(io.BytesIO(storage.get(ticket.prepared_path))) as image:
        image.load()
    params = GenerationParams(**ticket.params)
    mesh = generator.generate(image, params, on_progress)
    mesh.metadata[GENERATOR_KEY] = generator.name
    storage.put(ticket.raw_mesh_path, raw_mesh_bytes(mesh))
    return time.perf_counter() - start
