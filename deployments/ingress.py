"""The Ingress deployment: Sweedle's REST API and its WebSocket progress feed."""

# No `from __future__ import annotations` here: Serve's class-based ingress needs the route
# annotations as real objects for FastAPI to read them.

import asyncio
import logging
from typing import Annotated, Any, Literal

import ray
from fastapi import FastAPI, File, Form, Path, Query, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from ray import serve
from ray.serve.handle import DeploymentHandle

from deployments.broadcast import Broadcaster, Subscription
from deployments.http_errors import ERROR_RESPONSES, install_error_handlers
from deployments.job_queue import get_job_queue
from deployments.submission import GenerationForm, Submission, TextTo3DRequest
from sweedle_core.config import Settings
from sweedle_core.db.models import Asset
from sweedle_core.db.store import Store
from sweedle_core.errors import AssetNotReady, FileMissing
from sweedle_core.export.asset_exports import StoredFile
from sweedle_core.params import ExportFormat
from sweedle_core.schemas import (
    AssetPage,
    AssetRead,
    EngineExportRead,
    EngineRequest,
    JobRead,
    LodRead,
    LodRequest,
    QueueJob,
    QueueStatus,
    SubmitResponse,
    ThumbnailRequest,
)
from sweedle_core.storage import Storage

log = logging.getLogger("ray.serve")

app = FastAPI(
    title="Sweedle",
    summary="Self-hosted image-to-3D: a photo in, a game-ready GLB out.",
    version="0.1.0",
    responses=ERROR_RESPONSES,
)
install_error_handlers(app)

NO_GENERATOR_WARNING_S = 30.0

Id = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="a 32-character hex id")]
Engine = Literal["unity", "unreal", "godot"]


# Helpers come before the class: @serve.ingress serialises it as soon as it is defined.
async def _pump_feed(websocket: WebSocket, subscription: Subscription) -> None:
    """Send the feed's events; read the client's subscribe/unsubscribe/ping messages."""

    async def read_client() -> None:
        while True:
            message = await websocket.receive_json()
            action = message.get("action") if isinstance(message, dict) else None
            if action == "subscribe":
                subscription.job_id = message.get("job_id")
            elif action == "unsubscribe":
                subscription.job_id = None
            elif action == "ping":
                await websocket.send_json({"type": "pong"})
            else:
                await websocket.send_json(
                    {"type": "error", "detail": "actions: subscribe, unsubscribe, ping"}
                )

    reader = asyncio.get_running_loop().create_task(read_client())
    try:
        while True:
            getter = asyncio.ensure_future(subscription.queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                getter.cancel()
                reader.result()  # raises WebSocketDisconnect when the client left
                return
            event = getter.result()
            await websocket.send_json(event)
            if event["type"] == "feed_closed":
                await websocket.close(code=1013)
                return
    finally:
        reader.cancel()


def _generation_readiness(generators: dict[str, dict[str, Any]]) -> dict[str, Any]:
    states = [g.get("state") for g in generators.values()]
    if any(s in ("idle", "generating") for s in states):
        return {"state": "ready", "detail": f"{len(states)} generator replica(s)"}
    if "loading" in states:
        return {"state": "loading", "detail": "the generation model is loading"}
    if states:
        details = "; ".join(g.get("detail", "") for g in generators.values())
        return {"state": "unavailable", "detail": details}
    gpus = ray.cluster_resources().get("GPU", 0)
    return {
        "state": "waiting_for_generator",
        "detail": (
            "no Generator replica has started yet. "
            + (
                "This Ray cluster has no GPU: serve_config.yaml reserves one GPU per Generator "
                "(num_gpus: 1), so generation waits for a GPU node to join. On a machine "
                "without a GPU, start with `serve run configs/cpu.yaml` (or `make serve`)."
                if gpus == 0
                else "It may still be starting."
            )
        ),
    }


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_ " else "_" for c in name).strip()
    return cleaned[:80] or "asset"


@serve.deployment(max_ongoing_requests=2000, ray_actor_options={"num_cpus": 0.25})
@serve.ingress(app)
class Ingress:
    def __init__(
        self,
        settings: Settings,
        preprocessor: DeploymentHandle,
        exporter: DeploymentHandle,
        generator: DeploymentHandle,
        painter: DeploymentHandle,
    ) -> None:
        # The generator is bound here so that it is deployed with the app; it is never called
        # through its handle: its replicas pull work from the queue.
        del generator
        self.settings = settings
        self.painter = painter
        self.exporter = exporter
        self.preprocessor = preprocessor
        self.store = Store.from_url(settings.database_url)
        self.storage = Storage(settings.storage_dir).ensure()
        self.queue = get_job_queue(settings, preprocessor, exporter)
        ray.get(self.queue.ready.remote())  # the schema is migrated before the first request
        self.submission = Submission(settings, self.store, self.storage, preprocessor, self.queue)
        self.broadcaster = Broadcaster(self.queue)
        self._watchdog = asyncio.get_event_loop().create_task(self._warn_while_no_generator())

    # --- generation ---------------------------------------------------------------------

    @app.post("/api/generation/image-to-3d", status_code=202, response_model=SubmitResponse)
    async def image_to_3d(
        self, form: Annotated[GenerationForm, Form()], file: Annotated[UploadFile, File()]
    ) -> SubmitResponse:
        """Upload a photo; the job is queued and its progress streams on `/ws/progress`."""
        return await self.submission.submit(form, file)

    @app.post("/api/generation/text-to-3d", status_code=202, response_model=SubmitResponse)
    async def text_to_3d(self, request: TextTo3DRequest) -> SubmitResponse:
        """A prompt becomes an image (TEXT_TO_IMAGE_MODEL), then a 3D asset like an upload."""
        return await self.submission.submit_text(request)

    @app.get("/api/generation/jobs/{job_id}", response_model=JobRead)
    async def get_job(self, job_id: Id) -> JobRead:
        return JobRead.model_validate(await self.store.get_job(job_id))

    @app.delete("/api/generation/jobs/{job_id}", response_model=QueueJob)
    async def cancel_job(self, job_id: Id) -> QueueJob:
        """Cancel a job: a waiting one at once, a running one at its next progress step."""
        return QueueJob(**await self.queue.cancel.remote(job_id))

    @app.get("/api/generation/queue/status", response_model=QueueStatus)
    async def queue_status(self) -> QueueStatus:
        return QueueStatus(**await self.queue.status.remote())

    @app.get("/api/generation/queue/jobs", response_model=list[QueueJob])
    async def queue_jobs(self) -> list[QueueJob]:
        """Active jobs: running ones first, then waiting ones in the order they will run."""
        return [QueueJob(**job) for job in await self.queue.jobs.remote()]

    # --- assets -------------------------------------------------------------------------

    @app.get("/api/assets", response_model=AssetPage)
    async def list_assets(
        self,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> AssetPage:
        assets, total, pages = await self.store.list_assets(page, page_size)
        items = [AssetRead.of(a) for a in assets]
        return AssetPage(items=items, total=total, page=page, page_size=page_size, pages=pages)

    @app.get("/api/assets/{asset_id}", response_model=AssetRead)
    async def get_asset(self, asset_id: Id) -> AssetRead:
        return AssetRead.of(await self.store.get_asset(asset_id))

    @app.get("/api/assets/{asset_id}/download", response_class=FileResponse)
    async def download(
        self,
        asset_id: Id,
        format: Annotated[ExportFormat | None, Query(description="default: the job's")] = None,
        lod: Annotated[int, Query(ge=0, le=7, description="0 is the full mesh")] = 0,
        draco: Annotated[bool, Query(description="Draco-compressed GLB")] = False,
    ) -> FileResponse:
        """The asset's model in a format, at a LOD; multi-file formats come as a zip."""
        asset = await self._completed_asset(asset_id)
        fmt = format or asset.model_format
        stored = await self.exporter.download.remote(
            asset_id, _safe_name(asset.name), fmt, lod, draco, len(asset.lods or [])
        )
        return self._send(stored)

    # --- exports ------------------------------------------------------------------------

    @app.post("/api/export/{asset_id}/lods", response_model=list[LodRead])
    async def make_lods(self, asset_id: Id, request: LodRequest) -> list[LodRead]:
        """Rebuild the asset's LOD chain; progress comes as export_progress events."""
        await self._completed_asset(asset_id)
        lods = await self.exporter.lods.remote(asset_id, request.levels)
        await self.store.update_asset(asset_id, lods=lods)
        return AssetRead.of(await self.store.get_asset(asset_id)).lods or []

    @app.post("/api/export/{asset_id}/engine", response_model=EngineExportRead)
    async def engine_bundle(self, asset_id: Id, request: EngineRequest) -> EngineExportRead:
        """A Unity, Unreal or Godot bundle: kept as a zip, and written into `project_path`
        (under EXPORT_ALLOWED_ROOTS) when one is given."""
        asset = await self._completed_asset(asset_id)
        result = await self.exporter.engine_bundle.remote(
            asset_id,
            _safe_name(asset.name),
            request.engine,
            len(asset.lods or []),
            request.project_path,
        )
        url = f"/api/export/{asset_id}/engine/{request.engine}"
        return EngineExportRead(**result, download_url=url)

    @app.get("/api/export/{asset_id}/engine/{engine}", response_class=FileResponse)
    async def engine_zip(self, asset_id: Id, engine: Engine) -> FileResponse:
        asset = await self._completed_asset(asset_id)
        return self._send(
            await self.exporter.bundle_file.remote(asset_id, _safe_name(asset.name), engine)
        )

    @app.get("/api/export/{asset_id}/validate", response_model=dict[str, Any])
    async def validate(self, asset_id: Id) -> dict[str, Any]:
        """The mesh's validation report: counts, bounds, watertightness, manifold edges,
        components, degenerate and duplicate faces, winding, normals, problems."""
        await self._completed_asset(asset_id)
        return await self.exporter.validate.remote(asset_id)

    @app.post("/api/export/{asset_id}/thumbnail", response_class=FileResponse)
    async def render_thumbnail(self, asset_id: Id, request: ThumbnailRequest) -> FileResponse:
        """A thumbnail of the asset at another size (PNG)."""
        await self._completed_asset(asset_id)
        return self._send(await self.exporter.thumbnail.remote(asset_id, request.size))

    @app.get("/api/assets/{asset_id}/thumbnail", response_class=FileResponse)
    async def thumbnail(self, asset_id: Id) -> FileResponse:
        asset = await self.store.get_asset(asset_id)
        path = self._stored_file(asset.thumbnail_path, f"asset {asset_id} has no thumbnail yet")
        return FileResponse(path, media_type="image/png")

    # --- progress feed and health -------------------------------------------------------

    @app.websocket("/ws/progress")
    async def progress(self, websocket: WebSocket, job_id: str | None = None) -> None:
        """JSON events: job_created, progress, asset_ready, job_failed, job_cancelled,
        queue_status. `?job_id=` or a `{"action": "subscribe", "job_id": ...}` message narrows
        the feed to one job."""
        await websocket.accept()
        subscription = await self.broadcaster.subscribe(job_id)
        try:
            await websocket.send_json({"type": "queue_status", **await self.queue.status.remote()})
            await _pump_feed(websocket, subscription)
        except WebSocketDisconnect:
            pass
        finally:
            self.broadcaster.unsubscribe(subscription)

    @app.get("/health")
    async def health(self) -> dict[str, Any]:
        """Liveness and what generation is waiting for, if anything."""
        status = await self.queue.status.remote()
        return {
            "status": "ok",
            "app": self.settings.app_name,
            "generator_backend": self.settings.generator_backend,
            "generation": _generation_readiness(status["generators"]),
            "preprocessing": await self.preprocessor.status.remote(),
            "text_to_image": await self.painter.status.remote(),
            "queue": {"active_jobs": status["active_jobs"], "queue_depth": status["queue_depth"]},
        }

    async def _warn_while_no_generator(self) -> None:
        """Say plainly in the log, again and again, when generation cannot happen."""
        while True:
            await asyncio.sleep(NO_GENERATOR_WARNING_S)
            try:
                status = await self.queue.status.remote()
            except ray.exceptions.RayError:
                continue
            readiness = _generation_readiness(status["generators"])
            if readiness["state"] != "ready":
                log.warning("generation is not possible yet: %s", readiness["detail"])

    async def _completed_asset(self, asset_id: str) -> Asset:
        asset = await self.store.get_asset(asset_id)
        if asset.status != "completed":
            raise AssetNotReady(f"asset {asset_id} is {asset.status}: exports need a completed one")
        return asset

    def _send(self, stored: StoredFile) -> FileResponse:
        path = self._stored_file(stored.path, f"{stored.path} is missing")
        return FileResponse(path, media_type=stored.media_type, filename=stored.filename)

    def _stored_file(self, relative: str | None, missing: str):  # type: ignore[no-untyped-def]
        if not relative or not (path := self.storage.path(relative)).is_file():
            raise FileMissing(missing)
        return path
