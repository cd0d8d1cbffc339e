"""What the API reads and writes: one Read schema per thing."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sweedle_core.db.library import normalize_tags
from sweedle_core.db.models import as_utc
from sweedle_core.db.paging import TOTAL_EXACT_UP_TO, TotalKind
from sweedle_core.errors import InvalidTag
from sweedle_core.params import VIEWS

BACKGROUND_METHOD = (
    "how the photo's background was removed: alpha (the upload's own), rembg:<model>, "
    "flood_fill (a plain background), grabcut (the classical cut-out), none (not asked for), or "
    "none (<method> found no background)"
)


# The most tags an asset carries, and so the most a filter can usefully name.
MAX_TAGS = 50


class _Read(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    @field_validator("created_at", "updated_at", "started_at", "completed_at", check_fields=False)
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return as_utc(value) if value else value


class WebhookDeliveryRead(_Read):
    id: str = Field(description="also sent as the X-Sweedle-Delivery header")
    event: str = Field(description="job.completed, job.failed or job.cancelled")
    url: str
    status: str = Field(description="pending (attempts left), delivered or failed")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    log: list[dict[str, Any]] = Field(
        description="every attempt: attempt, at, status_code, error, duration_ms"
    )
    created_at: datetime

    @field_validator("next_attempt_at")
    @classmethod
    def _next_utc(cls, value: datetime | None) -> datetime | None:
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
    background_method: str | None = Field(description=BACKGROUND_METHOD)
    timings: dict[str, Any]
    attempts: int
    retries: dict[str, int] = Field(
        description="per stage, how many times it ran again because its worker or node died"
    )
    worker: str | None = Field(description="the generator replica that ran it last")
    owner: str | None = Field(description="the name of the API key that submitted it")
    webhook_url: str | None
    webhooks: list[WebhookDeliveryRead] = Field(
        description="each webhook call for this job, with every attempt"
    )
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None


class Paging(BaseModel):
    """The paging fields of a `paging.Page`."""

    total: int = Field(description="how many match: see total_kind")
    total_kind: TotalKind = Field(
        description=f"'exact': counted (up to {TOTAL_EXACT_UP_TO:,} matches); 'estimate': "
        "past that, or where a search or tag finds more, an estimate (never below the rows "
        "paged through); 'more_than': more than total (the threshold)"
    )
    page: int | None = Field(description="null for a page asked for by cursor")
    page_size: int
    pages: int = Field(description="from total: an estimate or a lower bound unless exact")
    next_cursor: str | None = Field(
        description="pass as cursor for the page after this one (fast at any depth, stable "
        "while assets are added); null on the last page"
    )


def _paging(page: Any) -> dict[str, Any]:
    return {name: getattr(page, name) for name in Paging.model_fields}


class JobPage(Paging):
    items: list[JobRead]

    @classmethod
    def of(cls, page: Any) -> JobPage:
        return cls(items=[JobRead.model_validate(job) for job in page.items], **_paging(page))


class TagRead(_Read):
    id: int
    name: str


class Links(Protocol):
    """Where the HTTP layer serves what an answer links to (it knows the routes and the path
    the app is served at; the core never spells a URL)."""

    def download(self, asset_id: str, lod: int | None = None) -> str: ...

    def thumbnail(self, asset_id: str) -> str: ...

    def job(self, job_id: str) -> str: ...

    def job_feed(self, job_id: str) -> str: ...


class LodRead(BaseModel):
    index: int
    level: float = Field(description="the requested share of the full mesh's faces")
    faces: int
    vertices: int
    bytes: int | None = Field(None, description="its GLB's size (uncompressed)")
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
    generator: str | None = Field(
        description="the generator that made the mesh: hunyuan3d, depth or silhouette (a "
        "fallback, when the configured one could not run: /health says why)"
    )
    texture_method: str | None = Field(
        description="how the mesh got its colours: hunyuan3d_paint (the texture model), "
        "image_projection (the photo projected onto it) or none"
    )
    background_method: str | None = Field(None, description=BACKGROUND_METHOD)
    prompt: str | None = Field(description="the text of a text-to-3d asset")
    lods: list[LodRead] | None = Field(description="the LOD chain the export pool built")
    generation_params: dict[str, Any]
    tags: list[TagRead]
    metadata: dict[str, Any] = Field(validation_alias="metadata_", description="free-form")
    owner: str | None = Field(description="the name of the API key that made it")
    created_at: datetime
    updated_at: datetime
    download_url: str | None = None
    thumbnail_url: str | None = None
    views: list[str] = Field(
        [], description="the photos it was made from: front, and a multi-view asset's others"
    )

    @classmethod
    def of(cls, asset: Any, links: Links) -> AssetRead:
        """From an asset (a `models.Asset`; a library page's rows: `AssetPage.of`), with the
        links to its files. Its values are read as loaded (an ORM attribute read per field was
        most of a library page's Python), and validated once, links included."""
        loaded = vars(asset)
        data = {k: loaded[k] if k in loaded else getattr(asset, k) for k in _ASSET_ATTRIBUTES}
        return cls.model_validate(_asset_data(data, links))


def _asset_data(data: dict[str, Any], links: Links) -> dict[str, Any]:
    """An asset's values (`AssetRead.of`) with what it makes of them: the photos it was made
    from, and the links to its files."""
    asset_id = data["id"]
    if data["input_path"]:
        others = data["input_views"] or {}
        data["views"] = [view for view in VIEWS if view == "front" or view in others]
    if data["model_path"]:
        data["download_url"] = links.download(asset_id)
    if data["thumbnail_path"]:
        data["thumbnail_url"] = links.thumbnail(asset_id)
    if data["lods"]:
        data["lods"] = [
            {**lod, "download_url": links.download(asset_id, lod["index"])} for lod in data["lods"]
        ]
    return data


# What `AssetRead.of` reads of an asset: its fields (as the row names them) but those it makes
# itself, and what those are made of.
_ASSET_ATTRIBUTES = [
    *(
        str(f.validation_alias or name)
        for name, f in AssetRead.model_fields.items()
        if name not in {"download_url", "thumbnail_url", "views"}
    ),
    "input_path",
    "input_views",
    "model_path",
    "thumbnail_path",
]


class AssetPage(Paging):
    items: list[AssetRead]

    @classmethod
    def of(cls, page: Any, links: Links) -> AssetPage:
        """A library page of rows (`library.find`: every column `_ASSET_ATTRIBUTES` names), its
        assets validated in one call (one call per asset took twice as long)."""
        items = [_asset_data(row._asdict(), links) for row in page.items]
        return cls.model_validate({"items": items, **_paging(page)})


# Free-form metadata is kept small: it lives in the asset's row.
METADATA_MAX_BYTES = 16_384


class AssetUpdate(BaseModel):
    """A PATCH of an asset: each field given replaces the old value; a field left out stays."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=255)
    tags: list[str] | None = Field(
        None,
        max_length=MAX_TAGS,
        description="the whole set; normalised like POST /api/assets/tags",
    )
    metadata: dict[str, Any] | None = Field(
        None, description=f"free-form JSON object, at most {METADATA_MAX_BYTES} bytes"
    )

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the name is blank")
        return value.strip() if value is not None else None

    @field_validator("tags")
    @classmethod
    def _tags_valid(cls, value: list[str] | None) -> list[str] | None:
        try:
            return normalize_tags(value) if value is not None else None
        except InvalidTag as exc:
            raise ValueError(exc.message) from None

    @field_validator("metadata")
    @classmethod
    def _metadata_small(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(json.dumps(value)) > METADATA_MAX_BYTES:
            raise ValueError(f"metadata is larger than {METADATA_MAX_BYTES} bytes as JSON")
        return value


class TagCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class TagCount(BaseModel):
    name: str
    count: int = Field(description="assets carrying it (of those the key may see)")


class KeyRead(BaseModel):
    name: str
    scopes: list[str]
    requests_per_minute: int | None
    max_waiting_jobs: int | None
    export_roots: list[Path] | None = Field(
        None, description="where its engine bundles may be written; null: EXPORT_ALLOWED_ROOTS"
    )


class SubmitResponse(BaseModel):
    job_id: str
    asset_id: str
    status: str
    stage: str
    priority: str
    status_url: str
    websocket_url: str

    @classmethod
    def of(cls, job: Any, links: Links) -> SubmitResponse:
        return cls(
            job_id=job.id,
            asset_id=job.asset_id,
            status=job.status,
            stage=job.stage,
            priority=job.priority,
            status_url=links.job(job.id),
            websocket_url=links.job_feed(job.id),
        )


class QueueJob(BaseModel):
    job_id: str
    asset_id: str
    status: str
    stage: str
    progress: float
    priority: str
    message: str
    cancel_requested: bool
    owner: str | None = None


class QueueStatus(BaseModel):
    queue_depth: dict[str, int] = Field(description="jobs waiting, per priority")
    by_stage: dict[str, int]
    active_jobs: int
    preprocessing_slots: int
    export_slots: int = Field(description="generated jobs the export pool runs at once")
    waiting_for_export: int = Field(description="generated jobs waiting for an export slot")
    generators: dict[str, dict[str, Any]] = Field(
        description="each generator replica: state (loading, idle, generating, unavailable)"
    )
    scaled_to_zero: bool = Field(
        False,
        description="no generator runs: scaled to zero while idle; one starts for the next job",
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
        description="a project folder on the server, under the key's export roots "
        "(EXPORT_ALLOWED_ROOTS unless the keys file gives it its own); a relative path is "
        "taken inside the first root; omitted: the bundle is only kept for download",
    )


class EngineExportRead(BaseModel):
    engine: str
    manifest: dict[str, Any]
    written: list[str] = Field(
        description="files written into project_path, if one was given, relative to the "
        "export root they are under"
    )
    download_url: str


# The sizes a thumbnail is rendered at through the API: each is rendered once per asset and
# then reused (a render of a large mesh at 2048 px takes seconds of the export pool's CPU).
ThumbnailSize = Literal[64, 128, 256, 512, 1024, 2048]


class ThumbnailRequest(BaseModel):
    size: ThumbnailSize = Field(256, description="px; rendered once per asset, then reused")


class ErrorBody(BaseModel):
    error: str = Field(description="a machine-readable code, e.g. invalid_image")
    detail: str = Field(description="what is wrong, in words")
