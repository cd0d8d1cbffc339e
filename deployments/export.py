"""The Exporter deployment: the export pool, several CPU replicas."""

from __future__ import annotations

import asyncio
import time

from ray import serve

from sweedle_core.config import Settings
from sweedle_core.export.pipeline import export_asset
from sweedle_core.jobs.tickets import ExportOutcome, ExportTicket
from sweedle_core.storage import Storage


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=4)
class Exporter:
    def __init__(self, settings: Settings) -> None:
        self.storage = Storage(settings.storage_dir).ensure()
        self.thumbnail_size = settings.thumbnail_size

    async def export(self, ticket: ExportTicket) -> ExportOutcome:
        start = time.perf_counter()
        result = await asyncio.to_thread(
            export_asset,
            self.storage.path(ticket.raw_mesh_path),
            self.storage.asset_dir(ticket.asset_id),
            ticket.output_format,
            self.thumbnail_size,
        )
        return ExportOutcome(
            model_path=self.storage.relative(result.model_path),
            thumbnail_path=self.storage.relative(result.thumbnail_path),
            vertex_count=result.vertex_count,
            face_count=result.face_count,
            seconds=time.perf_counter() - start,
            texture=result.texture,
        )
