"""The Preprocessor deployment: CPU replicas that decode, validate and prepare images."""

from __future__ import annotations

import asyncio
import io
import time

from ray import serve
from ray.actor import ActorHandle
from ray.serve.handle import DeploymentHandle

from sweedle_core.config import Settings
from sweedle_core.errors import ImageRejected
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

    async def prepare(self, ticket: PrepareTicket, queue: ActorHandle) -> PrepareOutcome:
        """``queue``: where a text-to-3d job's painting reports its progress."""
        start = time.perf_counter()
        if ticket.prompt is not None and not await asyncio.to_thread(
            self.storage.exists, ticket.input_path
        ):
            await self.painter.render.remote(ticket, queue)
        background = await asyncio.to_thread(
            self._prepare, ticket.input_path, ticket.prepared_path, ticket.remove_background
        )
        for view, (source, target) in ticket.views.items():  # a multi-view job's other photos
            try:
                await asyncio.to_thread(self._prepare, source, target, ticket.remove_background)
            except ImageRejected as exc:
                raise type(exc)(f"the {view} view: {exc.message}") from exc
        return PrepareOutcome(background=background, seconds=time.perf_counter() - start)

    def _prepare(self, source: str, target: str, remove_background: bool) -> str:
        """Prepare the stored image ``source`` into ``target``; returns the background method."""
        prepared = self.preparer.prepare(self.storage.get(source), remove_background)
        buffer = io.BytesIO()
        prepared.image.save(buffer, "PNG")
        self.storage.put(target, buffer.getvalue())
        return prepared.background
