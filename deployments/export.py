"""The Exporter deployment: the export pool, several CPU replicas.

It runs the CPU stage of every generation (the GPU stage's shape to the mesh: surface
extraction, clean-up, the photo baked into a TEXTURE_SIZE texture, or the unwrapping before and
the filling after a GPU paints it) and then its default export chain (for the queue), and the
exports the API asks for (for the ingress); long ones report progress on the WebSocket feed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ray import serve
from ray.actor import ActorHandle

from deployments.progress import api_export_progress, job_progress
from sweedle_core.config import Settings
from sweedle_core.export.asset_exports import AssetExports, StoredFile
from sweedle_core.export.draco_compressor import QuantizationSettings
from sweedle_core.export.pipeline import ExportOptions, within
from sweedle_core.export.thumbnail_generator import opengl_unavailable_reason
from sweedle_core.generation.finish import finish_stored
from sweedle_core.jobs.tickets import ExportOutcome, ExportTicket
from sweedle_core.storage import build_storage

# The share of the exporting stage's progress the CPU stage of the generation takes.
FINISH_SHARE = 0.4


@serve.deployment(ray_actor_options={"num_cpus": 0.25}, max_ongoing_requests=4)
class Exporter:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.exports = AssetExports(
            build_storage(settings),
            QuantizationSettings(position=settings.draco_position_bits),
            settings.draco_compression_level,
            settings.export_allowed_roots,
        )

    async def status(self) -> dict[str, str | None]:
        """How thumbnails are rendered: OpenGL (EGL, offscreen), or the numpy fallback and why."""
        reason = await asyncio.to_thread(opengl_unavailable_reason)
        renderer = "opengl" if reason is None else "numpy"
        return {"thumbnails": renderer, "fallback": renderer if reason else None, "note": reason}

    async def export(self, ticket: ExportTicket, queue: ActorHandle) -> ExportOutcome:
        """A generation's CPU stage (the stored shape to the mesh) and its default export
        chain, reported to ``queue`` as the job's exporting stage."""
        start = time.perf_counter()
        report = job_progress(queue, ticket)
        finish = await asyncio.to_thread(
            finish_stored,
            self.exports.storage,
            ticket,
            within(report, 0.0, FINISH_SHARE),
            self.settings.generator_backend,
            texture_size=self.settings.texture_size,
        )
        if finish.paint:
            await report.settle()
            return ExportOutcome.to_paint(finish.seconds)
        options = ExportOptions(
            output_format=ticket.output_format,
            lod_levels=self.settings.export_lod_levels,
            extra_formats=self.settings.export_formats,
            thumbnail_size=self.settings.thumbnail_size,
            draco=self.settings.export_draco,
            draco_quantization=self.exports.quantization,
            draco_level=self.settings.draco_compression_level,
        )
        stored = await asyncio.to_thread(
            self.exports.chain,
            ticket.asset_id,
            ticket.raw_mesh_path,
            options,
            within(report, FINISH_SHARE, 1.0),
        )
        await report.settle()
        result = stored.result
        return ExportOutcome(
            model_path=stored.model_key,
            thumbnail_path=stored.thumbnail_key,
            vertex_count=result.vertex_count,
            face_count=result.face_count,
            seconds=time.perf_counter() - start,
            finish_s=finish.seconds,
            texture=result.texture,
            generator=result.generator,
            lods=result.lods,
            validation=result.validation,
        )

    async def lods(
        self,
        asset_id: str,
        levels: Sequence[float],
        built: Sequence[dict[str, Any]],
        owner: str | None,
        queue: ActorHandle,
    ) -> list[dict[str, Any]]:
        progress = api_export_progress(queue, asset_id, "lods", owner)
        lods = await asyncio.to_thread(self.exports.lods, asset_id, levels, built, progress)
        await progress.settle()
        return lods

    async def download(
        self, asset_id: str, name: str, fmt: str, lod: int, draco: bool, lod_count: int
    ) -> StoredFile:
        return await asyncio.to_thread(
            self.exports.download, asset_id, name, fmt, lod, draco, lod_count
        )

    async def engine_bundle(
        self,
        asset_id: str,
        name: str,
        engine: str,
        lod_count: int,
        project_path: str | None,
        roots: Sequence[Path] | None,
        owner: str | None,
        queue: ActorHandle,
    ) -> dict[str, Any]:
        """``roots``: the calling key's own export roots, None for EXPORT_ALLOWED_ROOTS."""
        progress = api_export_progress(queue, asset_id, f"engine:{engine}", owner)
        bundle = await asyncio.to_thread(
            self.exports.engine_bundle,
            asset_id,
            name,
            engine,
            lod_count,
            project_path,
            progress,
            roots,
        )
        await progress.settle()
        return bundle

    async def bundle_file(self, asset_id: str, name: str, engine: str) -> StoredFile:
        return await asyncio.to_thread(self.exports.bundle_file, asset_id, name, engine)

    async def validate(self, asset_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.exports.validate, asset_id)

    async def thumbnail(self, asset_id: str, size: int) -> StoredFile:
        return await asyncio.to_thread(self.exports.thumbnail, asset_id, size)
