"""Taking an upload in: validate, store, record, enqueue — all or nothing."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import ray
from fastapi import UploadFile
from pydantic import BaseModel, Field, field_validator
from ray.serve.handle import DeploymentHandle

from sweedle_core.access.keys import Caller
from sweedle_core.access.limits import waiting_jobs_exceeded
from sweedle_core.config import Settings
from sweedle_core.db.models import GenerationJob, new_id
from sweedle_core.db.store import Idempotency, IdempotencyTaken, Store
from sweedle_core.errors import (
    IdempotencyConflict,
    ImageTooLarge,
    TextToImageDisabled,
    WebhooksDisabled,
)
from sweedle_core.idempotency import idempotency
from sweedle_core.params import GenerationParams, OutputFormat, Priority
from sweedle_core.preprocess import ImageInfo
from sweedle_core.schemas import SubmitResponse
from sweedle_core.storage import Storage

log = logging.getLogger("ray.serve")


class GenerationOptions(BaseModel):
    """What a client may choose for one generation; a field left out takes the server's
    default."""

    name: str | None = Field(None, max_length=255)
    priority: Priority = Priority.NORMAL
    inference_steps: int | None = Field(None, ge=1, le=200)
    guidance_scale: float | None = Field(None, ge=0.0, le=30.0)
    octree_resolution: int | None = Field(None, ge=16, le=512)
    num_chunks: int | None = Field(None, ge=1000, le=500_000)
    max_faces: int | None = Field(None, ge=100, le=5_000_000, description="face budget")
    seed: int | None = Field(None, ge=0, le=2**32 - 1)
    remove_background: bool = True
    texture: bool = Field(
        False,
        description="paint with Hunyuan3D's texture model where it can run (CUDA); otherwise "
        "the mesh is coloured from the image (the asset's texture_method says which)",
    )
    output_format: OutputFormat = "glb"
    webhook_url: str | None = Field(
        None,
        max_length=2048,
        description="POSTed to when the job completes, fails or is cancelled (signed with "
        "HMAC-SHA256, header X-Sweedle-Signature); default: the server's WEBHOOK_URL",
    )

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook_url must be an http:// or https:// URL with a host")
        return value.strip()

    def params(self, settings: Settings) -> GenerationParams:
        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        return GenerationParams(
            inference_steps=pick(self.inference_steps, settings.default_inference_steps),
            guidance_scale=pick(self.guidance_scale, settings.default_guidance_scale),
            octree_resolution=pick(self.octree_resolution, settings.default_octree_resolution),
            num_chunks=pick(self.num_chunks, settings.default_num_chunks),
            max_faces=pick(self.max_faces, settings.default_max_faces),
            seed=pick(self.seed, settings.default_seed),
            remove_background=self.remove_background,
            texture=self.texture,
            output_format=self.output_format,
        )


class GenerationForm(GenerationOptions):
    """The multipart fields beside `file`; the name defaults to the file's name."""


class TextTo3DRequest(GenerationOptions):
    """A text-to-3d job: the prompt is painted into an image, which then becomes the asset."""

    prompt: str = Field(min_length=1, max_length=2000, description="what to make")

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the prompt is blank")
        return value.strip()


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

    async def submit(
        self, form: GenerationForm, file: UploadFile, caller: Caller, key: str | None
    ) -> tuple[SubmitResponse, bool]:
        """Take an upload in; the flag says the answer replays an earlier identical request."""
        params = form.params(self.settings)
        webhook_url = self._webhook_url(form)
        data = await _read_capped(file, self.settings.max_upload_bytes)
        request = (data, form.model_dump_json().encode(), (file.filename or "").encode())
        once = idempotency(caller.owner, key, *request) if key else None
        if once is not None and (replayed := await self._replay(once)) is not None:
            return replayed, True
        await self._check_waiting(caller)
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
                owner=caller.owner,
                webhook_url=webhook_url,
                idempotency=once,
            )
        except IdempotencyTaken:
            self.storage.remove_asset(asset_id)
            return await self._replay_raced(once), True
        except BaseException:
            self.storage.remove_asset(asset_id)  # no file without its rows
            raise
        return await self._enqueue(job), False

    async def submit_text(
        self, request: TextTo3DRequest, caller: Caller, key: str | None
    ) -> tuple[SubmitResponse, bool]:
        """Record a text-to-3d job; its image is painted in the preprocessing stage."""
        if not self.settings.text_to_image_model:
            raise TextToImageDisabled(
                "text-to-3d needs a text-to-image model: set TEXT_TO_IMAGE_MODEL to a diffusers "
                "pipeline (a hub id such as Tencent-Hunyuan/HunyuanDiT-v1.2-Diffusers, or a "
                "local folder holding model_index.json) and restart the app"
            )
        webhook_url = self._webhook_url(request)
        once = idempotency(caller.owner, key, request.model_dump_json().encode()) if key else None
        if once is not None and (replayed := await self._replay(once)) is not None:
            return replayed, True
        await self._check_waiting(caller)
        asset_id = new_id()
        try:
            job = await self.store.create_job(
                name=request.name or request.prompt[:80],
                params=request.params(self.settings),
                priority=request.priority,
                original_filename=None,
                input_path=Storage.input_name(asset_id, "PNG"),
                asset_id=asset_id,
                generator=self.settings.generator_backend,
                prompt=request.prompt,
                owner=caller.owner,
                webhook_url=webhook_url,
                idempotency=once,
            )
        except IdempotencyTaken:
            return await self._replay_raced(once), True
        return await self._enqueue(job), False

    def _webhook_url(self, options: GenerationOptions) -> str | None:
        url = options.webhook_url or self.settings.webhook_url or None
        if url and not self.settings.webhook_secret.get_secret_value():
            raise WebhooksDisabled(
                "webhooks are signed with WEBHOOK_SECRET, which this server has not set: set it "
                "and restart, or submit without webhook_url"
            )
        return url

    async def _replay(self, once: Idempotency) -> SubmitResponse | None:
        """The first job of an Idempotency-Key, if the key was used before with this request."""
        ttl = timedelta(hours=self.settings.idempotency_ttl_hours)
        found = await self.store.idempotent_job(once.record_id, ttl)
        if found is None:
            return None
        request_hash, job = found
        if request_hash != once.request_hash:
            raise IdempotencyConflict(
                "this Idempotency-Key was used for a different request (another file or other "
                f"options) which made job {job.id}; use a new key for a new request"
            )
        return _submitted(job)

    async def _replay_raced(self, once: Idempotency | None) -> SubmitResponse:
        """A request with the same key was recorded while this one was being taken in."""
        assert once is not None
        replayed = await self._replay(once)
        if replayed is None:
            raise IdempotencyConflict("this Idempotency-Key is being used; try again")
        return replayed

    async def _check_waiting(self, caller: Caller) -> None:
        if caller.owner is not None and caller.max_waiting_jobs:
            waiting = await self.store.library.waiting_jobs(caller.owner)
            waiting_jobs_exceeded(waiting, caller.max_waiting_jobs)

    async def _enqueue(self, job: GenerationJob) -> SubmitResponse:
        try:
            await self.queue.submit.remote(job.id)
        except ray.exceptions.RayError as exc:
            # The job is in the database: the queue adopts it when it is back.
            log.warning("job %s recorded but the queue is unreachable: %s", job.id, exc)
        return _submitted(job)


def _submitted(job: GenerationJob) -> SubmitResponse:
    return SubmitResponse(
        job_id=job.id,
        asset_id=job.asset_id,
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
