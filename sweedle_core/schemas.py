"""What the API reads and writes: one Read schema per thing."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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


class LodRead(BaseModel):
    index: int
    level: float = Field(description="the requested share of the full mesh's faces")
    faces: int
    vertices: int
    download_url: str = ""


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
    lods: list[LodRead] | None = Field(description="the LOD chain the export pool built")
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
        for lod in read.lods or []:
            lod.download_url = f"/api/assets/{asset.id}/download?lod={lod.index}"
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


class LodRequest(BaseModel):
    levels: list[float] = Field(
        [1.0, 0.5, 0.25, 0.1],
        min_length=1,
        max_length=8,
        description="face shares, decreasing, the first 1.0 (the full mesh)",
    )

    @field_validator("levels")
    @classmethod
    def _decreasing(cls, value: list[float]) -> list[float]:
        if value[0] != 1.0 or any(not 0.0 < v <= 1.0 for v in value):
            raise ValueError("levels must start with 1.0 and lie in (0, 1]")
        if value != sorted(value, reverse=True) or len(set(value)) != len(value):
            raise ValueError("levels must be strictly decreasing")
        return value


class EngineRequest(BaseModel):
    engine: Literal["unity", "unreal", "godot"]
    project_path: str | None = Field(
        None,
        max_length=4096,
        description="a project folder on the server, under EXPORT_ALLOWED_ROOTS; "
        "omitted: the bundle is only kept for download",
    )


class EngineExportRead(BaseModel):
    engine: str
    manifest: dict[str, Any]
    written: list[str] = Field(description="files written into project_path, if one was given")
    download_url: str


class ThumbnailRequest(BaseModel):
    size: int = Field(256, ge=32, le=2048)


class ErrorBody(BaseModel):
    error: str = Field(description="a machine-readable code, e.g. invalid_image")
    detail: str = Field(description="what is wrong, in words")
