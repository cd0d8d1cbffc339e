"""What the API reads and writes: one Read schema per thing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sweedle_core.db.store import as_utc


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_validator("created_at", "updated_at", "started_at", "completed_at", check_fields=False)
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value) if value else value


class JobRead(_Read):
    id: str
    asset_id: str
    status: str = Field(description="pending, processing, completed, failed or cancelled")
    stage: str = Field(
        description="queued, preprocessing, waiting_for_gpu, generating or exporting; "
        "for a finished job, the stage it ended in"
    )
    progress: float = Field(ge=0.0, le=1.0)
    message: str | None
    priority: str
    params: dict[str, Any]
    error: str | None
    background_method: str | None = Field(
        description="how the background was removed: alpha, rembg:<model>, flood_fill or none"
    )
    timings: dict[str, Any]
    attempts: int
    worker: str | None = Field(description="the generator replica that ran it last")
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class TagRead(_Read):
    id: int
    name: str


class AssetRead(_Read):
    id: str
    name: str
    source_type: str
    status: str
    original_filename: str | None
    model_format: str
    vertex_count: int | None
    face_count: int | None
    generator: str | None
    texture_method: str | None = Field(
        description="how the mesh got its colours: hunyuan3d_paint (the texture model), "
        "image_projection (the photo projected onto it) or none"
    )
    prompt: str | None = Field(description="the text of a text-to-3d asset")
    generation_params: dict[str, Any]
    tags: list[TagRead]
    created_at: datetime
    updated_at: datetime
    download_url: str | None = None
    thumbnail_url: str | None = None

    @classmethod
    def of(cls, asset: Any) -> AssetRead:
        read = cls.model_validate(asset)
        if asset.model_path:
            read.download_url = f"/api/assets/{asset.id}/download"
        if asset.thumbnail_path:
            read.thumbnail_url = f"/api/assets/{asset.id}/thumbnail"
        return read


class AssetPage(BaseModel):
    items: list[AssetRead]
    total: int
    page: int
    page_size: int
    pages: int


class SubmitResponse(BaseModel):
    job_id: str
    asset_id: str
    status: str
    stage: str
    priority: str
    status_url: str
    websocket_url: str


class QueueJob(BaseModel):
    job_id: str
    asset_id: str
    status: str
    stage: str
    progress: float
    priority: str
    message: str
    cancel_requested: bool


class QueueStatus(BaseModel):
    queue_depth: dict[str, int] = Field(description="jobs waiting, per priority")
    by_stage: dict[str, int]
    active_jobs: int
    preprocessing_slots: int
    generators: dict[str, dict[str, Any]] = Field(
        description="each generator replica: state (loading, idle, generating, unavailable)"
    )


class ErrorBody(BaseModel):
    error: str = Field(description="a machine-readable code, e.g. invalid_image")
    detail: str = Field(description="what is wrong, in words")
