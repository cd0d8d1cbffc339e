"""The TextToImage deployment: paints the image of a text-to-3d job from its prompt.

One replica holds the diffusers pipeline, loaded once at start when TEXT_TO_IMAGE_MODEL is
set. The Preprocessor asks it for a job's image before preparing it as it would an upload, so
text jobs share the queue, the priorities and the progress feed with image jobs.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

from ray import serve
from ray.actor import ActorHandle

from deployments.progress import job_progress
from sweedle_core.config import Settings
from sweedle_core.errors import ModelUnavailable, TextToImageDisabled
from sweedle_core.jobs.coordinator import describe_error
from sweedle_core.jobs.tickets import PrepareTicket
from sweedle_core.storage import build_storage
from sweedle_core.text_to_image import TextToImageModel

log = logging.getLogger("ray.serve")


@serve.deployment(ray_actor_options={"num_cpus": 0.25, "num_gpus": 0}, max_ongoing_requests=8)
class TextToImage:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.storage = build_storage(settings)
        self.model: TextToImageModel | None = None
        self.state, self.detail = "disabled", "TEXT_TO_IMAGE_MODEL is not set"
        self._loaded: asyncio.Task[None] | None = None
        if settings.text_to_image_model:
            self.state, self.detail = "loading", f"loading {settings.text_to_image_model}"
            self._loaded = asyncio.get_event_loop().create_task(self._load())

    async def _load(self) -> None:
        try:
            self.model = await asyncio.to_thread(TextToImageModel.from_settings, self.settings)
        except Exception as exc:  # the replica stays up and says why
            self.state, self.detail = "unavailable", describe_error(exc)
            log.error("text-to-image model cannot load: %s", self.detail)
        else:
            described = self.model.describe()
            self.state = "ready"
            self.detail = f"{described['pipeline']} ({described['model']}) on {described['device']}"

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "detail": self.detail}

    async def render(self, ticket: PrepareTicket, queue: ActorHandle) -> None:
        """Paint ``ticket.prompt`` into ``ticket.input_path``, reporting each step to
        ``queue``."""
        if self._loaded is None:
            raise TextToImageDisabled(f"text-to-3d is disabled: {self.detail}")
        await asyncio.shield(self._loaded)
        if self.model is None:
            raise ModelUnavailable(f"the text-to-image model is unavailable: {self.detail}")
        on_progress = job_progress(queue, ticket)

        image = await asyncio.to_thread(
            self.model.render,
            (ticket.prompt or "") + self.settings.text_to_image_prompt_suffix,
            ticket.seed,
            on_progress,
            self.settings.text_to_image_negative_prompt or None,
        )
        await on_progress.settle()
        buffer = io.BytesIO()
        await asyncio.to_thread(image.save, buffer, "PNG")
        await asyncio.to_thread(self.storage.put, ticket.input_path, buffer.getvalue())
