"""Taking a submission in over HTTP: its options, its upload read within the limit, the
rules of `sweedle_core.jobs.intake`, the queue told."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlsplit

import ray
from fastapi import UploadFile
from pydantic import BaseModel, Field, field_validator
from ray.serve.handle import DeploymentHandle

from deployments.lost_workers import worker_lost_is_said
from sweedle_core.access.keys import Caller
from sweedle_core.config import Settings
from sweedle_core.db.models import GenerationJob
from sweedle_core.db.store import Store
from sweedle_core.errors import (
    ImageRejected,
    ImageTooLarge,
    TextToImageDisabled,
    WebhooksDisabled,
    unwrapped,
)
from sweedle_core.idempotency import idempotency
from sweedle_core.jobs.intake import Intake, NewJob, Taken
from sweedle_core.params import (
    GenerationParams,
    GuidanceScale,
    InferenceSteps,
    MaxFaces,
    NumChunks,
    OctreeResolution,
    OutputFormat,
    Priority,
    Quality,
    Seed,
)
from sweedle_core.preprocess import ImageInfo
from sweedle_core.quality import TUNABLE, is_turbo, resolve_params
from sweedle_core.storage import Storage
from sweedle_core.webhooks.destinations import checked_destination

log = logging.getLogger("ray.serve")


class GenerationOptions(BaseModel):
    """What a client may choose for one generation; a field left out takes the server's
    default."""

    name: str | None = Field(None, max_length=255)
    priority: Priority = Priority.NORMAL
    quality: Quality | None = Field(
        None,
        description="a preset of steps, octree resolution, guidance and decoding: fast, "
        "standard or high; a parameter given beside it overrides the preset's value",
    )
    inference_steps: InferenceSteps | None = None
    guidance_scale: GuidanceScale | None = None
    octree_resolution: OctreeResolution | None = None
    num_chunks: NumChunks | None = None
    max_faces: MaxFaces | None = None
    seed: Seed | None = None
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
        return resolve_params(
            self.model_dump(include=set(TUNABLE)),
            self.quality,
            {name: getattr(settings, f"default_{name}") for name in TUNABLE},
            turbo_weights=is_turbo(settings.hunyuan_subfolder),
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
    """The ingress's side of taking a job in: the upload read within its limit, the image
    inspected by the Preprocessor, the rules of `Intake`, then the queue told."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        storage: Storage,
        preprocessor: DeploymentHandle,
        queue: ray.actor.ActorHandle,
    ) -> None:
        self.settings = settings
        self.intake = Intake(
            store,
            storage,
            settings.generator_backend,
            timedelta(hours=settings.idempotency_ttl_hours),
            timedelta(seconds=settings.storage_timeout_s),
        )
        self.preprocessor = preprocessor
        self.queue = queue

    async def submit(
        self,
        form: GenerationForm,
        file: UploadFile,
        caller: Caller,
        key: str | None,
        root_path: str = "",
    ) -> tuple[GenerationJob, bool]:
        """Take an upload in: its job, and whether it is an earlier identical request's."""
        params = form.params(self.settings)
        webhook_url = await self._webhook_url(form)
        data = await _read_capped(file, self.settings.max_upload_bytes)
        request = (data, form.model_dump_json().encode(), (file.filename or "").encode())
        once = idempotency(caller.owner, key, *request) if key else None
        if (replayed := await self.intake.replay(once)) is not None:
            return replayed.job, True
        await self.intake.admit(caller, form.priority)
        with worker_lost_is_said():  # a replica that died under it: 503, try again
            info: ImageInfo = await self.preprocessor.inspect.remote(data)
        new = NewJob(
            name=form.name or _stem(file.filename) or "untitled",
            params=params,
            priority=form.priority,
            caller=caller,
            webhook_url=webhook_url,
            original_filename=file.filename,
            root_path=root_path,
        )
        return await self._enqueue(await self.intake.take_image(new, data, info.format, once))

    async def submit_views(
        self,
        form: GenerationForm,
        files: Mapping[str, UploadFile],
        caller: Caller,
        key: str | None,
        root_path: str = "",
    ) -> tuple[GenerationJob, bool]:
        """Take a multi-view submission in: ``files`` maps each view (``front`` required, then
        any of left, back, right) to its upload; each is read within the upload limit and
        inspected, and a refusal names the view."""
        params = form.params(self.settings)
        webhook_url = await self._webhook_url(form)
        data = {
            view: await _read_capped(file, self.settings.max_upload_bytes, f"the {view} photo")
            for view, file in files.items()
        }
        parts = [form.model_dump_json().encode()]
        for view, file in files.items():
            parts += [view.encode(), data[view], (file.filename or "").encode()]
        once = idempotency(caller.owner, key, *parts) if key else None
        if (replayed := await self.intake.replay(once)) is not None:
            return replayed.job, True
        await self.intake.admit(caller, form.priority)
        formats = {view: (await self._inspect(view, blob)).format for view, blob in data.items()}
        new = NewJob(
            name=form.name or _stem(files["front"].filename) or "untitled",
            params=params,
            priority=form.priority,
            caller=caller,
            webhook_url=webhook_url,
            original_filename=files["front"].filename,
            root_path=root_path,
        )
        uploads = {view: (data[view], formats[view]) for view in data}
        return await self._enqueue(await self.intake.take_views(new, uploads, once))

    async def _inspect(self, view: str, data: bytes) -> ImageInfo:
        """The Preprocessor's verdict on one photo; a refusal names the view."""
        try:
            with worker_lost_is_said():  # a replica that died under it: 503, try again
                info: ImageInfo = await self.preprocessor.inspect.remote(data)
        except Exception as exc:
            refused = unwrapped(exc)
            if isinstance(refused, ImageRejected):
                raise type(refused)(f"the {view} photo: {refused.message}") from None
            raise
        return info

    async def submit_text(
        self, request: TextTo3DRequest, caller: Caller, key: str | None, root_path: str = ""
    ) -> tuple[GenerationJob, bool]:
        """Record a text-to-3d job; its image is painted in the preprocessing stage."""
        if not self.settings.text_to_image_model:
            raise TextToImageDisabled(
                "text-to-3d needs a text-to-image model: set TEXT_TO_IMAGE_MODEL to a diffusers "
                "pipeline (a hub id such as Tencent-Hunyuan/HunyuanDiT-v1.2-Diffusers, or a "
                "local folder holding model_index.json) and restart the app"
            )
        webhook_url = await self._webhook_url(request)
        once = idempotency(caller.owner, key, request.model_dump_json().encode()) if key else None
        if (replayed := await self.intake.replay(once)) is not None:
            return replayed.job, True
        await self.intake.admit(caller, request.priority)
        new = NewJob(
            name=request.name or request.prompt[:80],
            params=request.params(self.settings),
            priority=request.priority,
            caller=caller,
            webhook_url=webhook_url,
            prompt=request.prompt,
            root_path=root_path,
        )
        return await self._enqueue(await self.intake.take_text(new, once))

    async def _webhook_url(self, options: GenerationOptions) -> str | None:
        """The job's webhook URL; a submitter's own must reach a public address (a 422 naming
        the rule otherwise), checked again before every delivery attempt."""
        url = options.webhook_url or self.settings.webhook_url or None
        if url and not self.settings.webhook_secret.get_secret_value():
            raise WebhooksDisabled(
                "webhooks are signed with WEBHOOK_SECRET, which this server has not set: set it "
                "and restart, or submit without webhook_url"
            )
        if options.webhook_url:
            await checked_destination(options.webhook_url, self.settings.webhook_allowed_cidrs)
        return url

    async def _enqueue(self, taken: Taken) -> tuple[GenerationJob, bool]:
        if not taken.replayed:
            try:
                await self.queue.submit.remote(taken.job.id)
            except ray.exceptions.RayError as exc:
                # The job is in the database: the queue adopts it when it is back.
                log.warning("job %s recorded but the queue is unreachable: %s", taken.job.id, exc)
        return taken.job, taken.replayed


async def _read_capped(file: UploadFile, limit: int, what: str = "the upload") -> bytes:
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLarge(
            f"{what} is larger than the {limit / 1024 / 1024:.0f} MB limit (MAX_UPLOAD_MB)"
        )
    return data


def _stem(filename: str | None) -> str:
    return (filename or "").rsplit("/", 1)[-1].rsplit(".", 1)[0].strip()[:255]
