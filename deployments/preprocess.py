"""The Preprocessor deployment: CPU replicas that decode, validate and prepare images."""

from __future__ import annotations

import asyncio
import io
import time

from ray import serve
from ray.serve.handle import DeploymentHandle

from sweedle_core.config import Settings
from sweedle_core.jobs.tickets import PrepareOutcome, PrepareTicket
from sweedle_core.preprocess import ImageInfo, ImagePreparer, inspect_image
from sweedle_core.storage import build_storage


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=4)
class Preprocessor:
    def __init__(self, settings: Settings, painter: DeploymentHandle) -> None:
        self.storage = build_storage(settings)
        self.preparer = ImagePreparer.from_settings(settings)
        self.painter = painter  # the TextToImage deployment, for text-to-3d jobs

    def status(self) -> dict[str, str | None]:
        """Which background remover runs: the rembg model, or the classical fallback and why."""
        remover = self.preparer.remover.name
        model = remover if remover.startswith("rembg") else None
        return {
            "background_remover": remover,
            "model": model,
            "fallback": None if model else remover,
            "note": self.preparer.background_note,
        }

    async def inspect(self, data: bytes) -> ImageInfo:
        """Validate an upload (format, size, pixels, integrity); raises ImageRejected."""
        return await asyncio.to_thread(inspect_image, data, self.preparer.limits)

    async def prepare(self, ticket: PrepareTicket) -> PrepareOutcome:
        start = time.perf_counter()
        if ticket.prompt is not None and not await asyncio.to_thread(
            self.storage.exists, ticket.input_path
        ):
            await self.painter.render.remote(ticket)
        data = await asyncio.to_thread(self.storage.get, ticket.input_path)
        prepared = await asyncio.to_thread(self.preparer.prepare, data, ticket.remove_background)
        buffer = io.BytesIO()
        await asyncio.to_thread(prepared.image.save, buffer, "PNG")
        await asyncio.to_thread(self.storage.put, ticket.prepared_path, buffer.getvalue())
        return PrepareOutcome(background=prepared.background, seconds=time.perf_counter() - start)
