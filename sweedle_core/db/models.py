"""ORM models. Alembic (``sweedle_core/db/migrations``) owns the schema they map."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# "none (rembg:custom:<file name> found no background)" and the like fit; longer is cut.
BACKGROUND_METHOD_LENGTH = 128


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands datetimes back naive; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


TAG_ASSET_INDEX = "ix_asset_tags_tag_asset"
asset_tags = Table(
    "asset_tags",
    Base.metadata,
    Column("asset_id", ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    # The asset's creation time and name, copied by triggers (migration 0015), so a tag's
    # assets are found newest first (or by name, below), and searched by name, off an index;
    # on PostgreSQL the name in lower case (migration 0016, `search.copy_holds`).
    Column("created_at", DateTime(timezone=True), nullable=True),
    Column("name", String(255), nullable=True),
    # And its owner (migration 0017): a key's own pages walk a tag's links of that owner.
    Column("owner", String(64), nullable=True),
    Index("ix_asset_tags_tag_order", "tag_id", "created_at", "asset_id", "name"),
    Index("ix_asset_tags_owner_order", "tag_id", "owner", "created_at", "asset_id", "name"),
    # A range of a tag's asset ids: a fair sample of its assets (ids are random); and of one
    # owner's of them. Also the index a probe of a tag reads (`filters.by_tag`).
    Index(TAG_ASSET_INDEX, "tag_id", "asset_id", "name"),
    Index("ix_asset_tags_owner_asset", "tag_id", "owner", "asset_id", "name"),
)
_link = asset_tags.c
Index(
    "ix_asset_tags_tag_name_order", _link.tag_id, func.lower(_link.name), _link.asset_id, _link.name
)
Index(
    "ix_asset_tags_owner_name_order",
    _link.tag_id,
    _link.owner,
    func.lower(_link.name),
    _link.asset_id,
    _link.name,
)


class Asset(Base):
    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(255))
    source_type: Mapped[str] = mapped_column(String(16), default="image")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    original_filename: Mapped[str | None] = mapped_column(String(255))
    input_path: Mapped[str | None] = mapped_column(String(512))
    # A multi-view asset's other photos: {"left": key, "back": key, ...} (the front is input_path).
    input_views: Mapped[dict[str, str] | None] = mapped_column(JSON)
    model_path: Mapped[str | None] = mapped_column(String(512))
    model_format: Mapped[str] = mapped_column(String(8), default="glb")
    thumbnail_path: Mapped[str | None] = mapped_column(String(512))
    vertex_count: Mapped[int | None] = mapped_column(Integer)
    face_count: Mapped[int | None] = mapped_column(Integer)
    # The generator that made the mesh (a fallback, when the configured one could not run).
    generator: Mapped[str | None] = mapped_column(String(64))
    # How the mesh got its colours: hunyuan3d_paint, image_projection or none.
    texture_method: Mapped[str | None] = mapped_column(String(32))
    # How the photo's background was removed (as its job records it).
    background_method: Mapped[str | None] = mapped_column(String(BACKGROUND_METHOD_LENGTH))
    # The text a text-to-3d asset was made from (source_type "text").
    prompt: Mapped[str | None] = mapped_column(Text)
    # The export chain's results: [{level, faces, vertices, path}], and the validation report.
    lods: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    validation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    generation_params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    # The API key (by name) that made it; None when the service runs without keys.
    owner: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    tags: Mapped[list[Tag]] = relationship(secondary=asset_tags, lazy="selectin", order_by="Tag.id")
    jobs: Mapped[list[GenerationJob]] = relationship(
        back_populates="asset", cascade="all, delete-orphan", passive_deletes=True
    )


class GenerationJob(Base):
    __tablename__ = "generation_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    asset_id: Mapped[str] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    stage: Mapped[str] = mapped_column(String(24), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    background_method: Mapped[str | None] = mapped_column(String(BACKGROUND_METHOD_LENGTH))
    timings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Per stage, how many times it was started again because its worker or node died.
    retries: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    worker: Mapped[str | None] = mapped_column(String(128))
    # Kept in the database so a cancel asked of a running job survives a queue restart.
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    owner: Mapped[str | None] = mapped_column(String(64))
    # Where the job's end is announced (a POST per final state); None: no webhook.
    webhook_url: Mapped[str | None] = mapped_column(Text)
    # The path the submitting request came in under (a Serve route_prefix; None: the server's
    # root): the links the job's webhook carries start with it.
    root_path: Mapped[str | None] = mapped_column(String(255))
    # The claim (`sweedle_core/db/claims.py`): the queue holding the job, until when, and the
    # fencing token every write about the job names; each new claim counts it up.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column()
    claim: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    asset: Mapped[Asset] = relationship(back_populates="jobs", lazy="joined")
    webhooks: Mapped[list[WebhookDelivery]] = relationship(
        lazy="selectin", order_by="WebhookDelivery.created_at", passive_deletes=True
    )


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RequestCount(Base):
    """Requests of one key in one minute of the clock, across every ingress replica."""

    __tablename__ = "request_counts"

    key_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[int] = mapped_column(Integer, primary_key=True)  # minutes since the epoch
    count: Mapped[int] = mapped_column(Integer)


class IdempotencyRecord(Base):
    """A submission's Idempotency-Key: the same key and request give back the same job."""

    __tablename__ = "idempotency_keys"

    # sha256 of owner and key: one row per key per owner, whatever the key's length.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(ForeignKey("generation_jobs.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class WebhookDelivery(Base):
    """One webhook call (a job's final state to its URL) and every attempt at it."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("generation_jobs.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(32))
    # The JSON body, fixed when the job ended, so every attempt sends the same bytes.
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # pending (attempts left), delivered (a 2xx answer) or failed (attempts used up).
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    # [{attempt, at, status_code, error, duration_ms}], one per attempt.
    log: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class StorageRemoval(Base):
    """An asset's files that must go: its rows were deleted (``not_before`` now), or its upload
    is being taken in (``not_before`` a grace period later, the record dropped with the rows'
    creation). A sweep removes the files of every record that is due and has no asset."""

    __tablename__ = "storage_removals"

    prefix: Mapped[str] = mapped_column(String(32), primary_key=True)
    not_before: Mapped[datetime] = mapped_column(index=True)
    # Set while a sweeper removes the files (an upload's rows may no longer be created then).
    claimed_at: Mapped[datetime | None] = mapped_column()
    # Looks at the prefix so far: a second one, a while after the first, catches late writes.
    passes: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The orders the library sorts and pages by, each matched by an index on SQLite and PostgreSQL
# (`AssetLibrary`), over every asset and over one key's own: a page is read off an index, not
# sorted out of every row.
_ASSET_ORDERS: dict[str, tuple[Any, ...]] = {
    "created": (Asset.created_at, Asset.id),
    "name": (func.lower(Asset.name), Asset.id),
    "vertices": (Asset.vertex_count.is_(None), Asset.vertex_count, Asset.id),
    "vertices_desc": (Asset.vertex_count.is_(None), Asset.vertex_count.desc(), Asset.id.desc()),
}
for _name, _columns in _ASSET_ORDERS.items():
    Index(f"ix_assets_{_name}_order", *_columns)
    Index(f"ix_assets_owner_{_name}_order", Asset.owner, *_columns)
Index("ix_generation_jobs_created_order", GenerationJob.created_at, GenerationJob.id)
Index(
    "ix_generation_jobs_owner_created_order",
    GenerationJob.owner,
    GenerationJob.created_at,
    GenerationJob.id,
)
