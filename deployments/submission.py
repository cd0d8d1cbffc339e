"""Taking an upload in: validate, store, record, enqueue — all or nothing."""

from __future__ import annotations

import asyncio
import logging

import ray
from fastapi import UploadFile
from pydantic import BaseModel, Field
from ray.serve.handle import DeploymentHandle

from sweedle_core.config import Settings
from sweedle_core.db.models import new_id
from sweedle_core.db.store import Store
from sweedle_core.errors import ImageTooLarge
from sweedle_core.params import GenerationParams, OutputFormat, Priority
from sweedle_core.preprocess import ImageInfo
from sweedle_core.schemas import SubmitResponse
from sweedle_core.storage import Storage

log = logging.getLogger("ray.serve")


class GenerationForm(BaseModel):
    """The multipart fields beside `file`; a field left out takes the server's default."""

    name: str | None = Field(None, max_length=255, description="defaults to the file's name")
    priority: Priority = Priority.NORMAL
    inference_steps: int | None = Field(None, ge=1, le=200)
    guidance_scale: float | None = Field(None, ge=0.0, le=30.0)
    octree_resolution: int | None = Field(None, ge=16, le=512)
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    remove_background: bool = True
    texture: bool = False
    output_format: OutputFormat = "glb"

    def params(self, settings: Settings) -> GenerationParams:
        return GenerationParams(
            inference_steps=self.inference_steps or settings.default_inference_steps,
            guidance_scale=(
                settings.default_guidance_scale
                if self.guidance_scale is None
                else self.guidance_scale
            ),
            octree_resolution=self.octree_resolution or settings.default_octree_resolution,
            seed=settings.default_seed if self.seed is None else self.seed,
            remove_background=self.remove_background,
            texture=self.texture,
            output_format=self.output_format,
        )


class Submission:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        storage: Storage,
        preprocessor: DeploymentHandle,
        queue: ray.actor.ActorHandle,
    ) -> None:
        self.settings = settings
        self.store = store
        self.storage = storage
        self.preprocessor = preprocessor
        self.queue = queue

    async def submit(self, form: GenerationForm, file: UploadFile) -> SubmitResponse:
        params = form.params(self.settings)
        data = await _read_capped(file, self.settings.max_upload_bytes)
        info: ImageInfo = await self.preprocessor.inspect.remote(data)
        asset_id = new_id()
        input_path = Storage.input_name(asset_id, info.format)
        await asyncio.to_thread(self.storage.write_bytes, input_path, data)
        try:
            job = await self.store.create_job(
                name=form.name or _stem(file.filename) or "untitled",
                params=params,
                priority=form.priority,
                original_filename=file.filename,
                input_path=input_path,
                asset_id=asset_id,
                generator=self.settings.generator_backend,
            )
        except BaseException:
            self.storage.remove_asset(asset_id)  # no file without its rows
            raise
        try:
            await self.queue.submit.remote(job.id)
        except ray.exceptions.RayError as exc:
            # The job is in the database: the queue adopts it when it is back.
            log.warning("job %s recorded but the queue is unreachable: %s", job.id, exc)
        return SubmitResponse(
            job_id=job.id,
            asset_id=asset_id,
            status=job.status,
            stage=job.stage,
            priority=job.priority,
            status_url=f"/api/generation/jobs/{job.id}",
            websocket_url=f"/ws/progress?job_id={job.id}",
        )


async def _read_capped(file: UploadFile, limit: int) -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(
            f"the upload is larger than the {limit / 1024 / 1024:.0f} MB limit (MAX_UPLOAD_MB)"
        )
    return data


def _stem(filename: str | None) -> str:
    return (filename or "").rsplit("/", 1)[-1].rsplit(".", 1)[0].strip()[:255]
