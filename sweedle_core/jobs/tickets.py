"""What the queue hands to its workers, and what the workers hand back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sweedle_core.jobs.book import JobEntry
from sweedle_core.storage.layout import (
    painted_key,
    prepared_key,
    raw_mesh_key,
    shape_key,
    view_prepared_key,
)


@dataclass(frozen=True)
class PrepareTicket:
    job_id: str
    asset_id: str
    input_path: str
    prepared_path: str
    remove_background: bool
    prompt: str | None = None  # text-to-3d: paint ``input_path`` from this first
    seed: int = 0
    # A multi-view job's other photos, prepared like the front: view -> (input, prepared) key.
    views: dict[str, tuple[str, str]] = field(default_factory=dict)
    claim: int = 0  # the run's claim, which its progress reports name

    @classmethod
    def for_job(cls, entry: JobEntry) -> PrepareTicket:
        return cls(
            job_id=entry.id,
            asset_id=entry.asset_id,
            input_path=entry.input_path or painted_key(entry.asset_id),
            prepared_path=prepared_key(entry.asset_id),
            remove_background=bool(entry.params.get("remove_background", True)),
            prompt=entry.prompt,
            seed=int(entry.params.get("seed", 0)),
            views={
                view: (key, view_prepared_key(entry.asset_id, view))
                for view, key in entry.views.items()
            },
            claim=entry.claim,
        )


@dataclass(frozen=True)
class PrepareOutcome:
    background: str
    seconds: float


@dataclass(frozen=True)
class GenerateTicket:
    job_id: str
    asset_id: str
    prepared_path: str
    shape_path: str
    params: dict[str, Any]
    attempt: int
    views: dict[str, str] = field(default_factory=dict)  # other photos: view -> prepared key
    claim: int = 0  # the run's claim, which every report about it names

    @classmethod
    def for_job(cls, entry: JobEntry) -> GenerateTicket:
        return cls(
            job_id=entry.id,
            asset_id=entry.asset_id,
            prepared_path=prepared_key(entry.asset_id),
            shape_path=shape_key(entry.asset_id),
            params=entry.params,
            attempt=entry.attempts,
            views={view: view_prepared_key(entry.asset_id, view) for view in entry.views},
            claim=entry.claim,
        )


@dataclass(frozen=True)
class ExportTicket:
    """The CPU stage (the shape to the raw mesh, unless a run before this one stored it) and
    the default export chain of one job. ``paint``: a generator that paints is there, so a
    textured job's mesh is unwrapped and handed back to a GPU instead of coloured here."""

    job_id: str
    asset_id: str
    shape_path: str
    prepared_path: str
    raw_mesh_path: str
    params: dict[str, Any]
    output_format: str
    paint: bool = False
    claim: int = 0  # the run's claim, which its progress reports name

    @classmethod
    def for_job(cls, entry: JobEntry, paint: bool = False) -> ExportTicket:
        return cls(
            job_id=entry.id,
            asset_id=entry.asset_id,
            shape_path=shape_key(entry.asset_id),
            prepared_path=prepared_key(entry.asset_id),
            raw_mesh_path=raw_mesh_key(entry.asset_id),
            params=entry.params,
            output_format=str(entry.params.get("output_format", "glb")),
            paint=paint,
            claim=entry.claim,
        )


@dataclass(frozen=True)
class ExportOutcome:
    model_path: str
    thumbnail_path: str
    vertex_count: int
    face_count: int
    seconds: float
    finish_s: float = 0.0  # of which the CPU stage (0 when its mesh was already stored)
    texture: str | None = None
    generator: str | None = None  # the backend that made the mesh (a fallback, if one ran)
    lods: list[dict[str, Any]] = field(default_factory=list)
    validation: dict[str, Any] = field(default_factory=dict)
    paint: bool = False  # no export: the mesh waits for a painter (see `to_paint`)

    @classmethod
    def to_paint(cls, seconds: float) -> ExportOutcome:
        """The CPU stage stored the unwrapped mesh for a painter: the job goes back to a GPU."""
        return cls("", "", 0, 0, seconds, finish_s=seconds, paint=True)


class Workers(Protocol):
    """The CPU pools the queue dispatches to (Ray Serve deployments in the app)."""

    async def preprocess(self, ticket: PrepareTicket) -> PrepareOutcome: ...

    async def export(self, ticket: ExportTicket) -> ExportOutcome: ...


class QueueMetrics(Protocol):
    def record_queue(self, depth: dict[str, int], active: dict[str, int]) -> None: ...

    def record_stage(self, stage: str, seconds: float) -> None: ...

    def record_finished(self, status: str) -> None: ...


class NoMetrics:
    def record_queue(self, depth: dict[str, int], active: dict[str, int]) -> None:
        pass

    def record_stage(self, stage: str, seconds: float) -> None:
        pass

    def record_finished(self, status: str) -> None:
        pass
