"""The progress feed (WebSocket) and the health check."""

from __future__ import annotations

import asyncio
from typing import Any

import ray
from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect

from deployments.broadcast import Subscription
from deployments.http.auth import WS_CLOSE, authorize_websocket, header_key, services_of
from sweedle_core.access.keys import Caller
from sweedle_core.errors import RateLimited
from sweedle_core.jobs.views import status_view

feed_router = APIRouter(tags=["progress"])
health_router = APIRouter(tags=["health"])


@feed_router.websocket("/ws/progress")
async def progress(
    websocket: WebSocket,
    caller: Caller = Depends(authorize_websocket),
    job_id: str | None = None,
) -> None:
    """JSON events: job_created, progress, asset_ready, job_failed, job_cancelled,
    export_progress, queue_status. `?job_id=` or a `{"action": "subscribe", "job_id": ...}`
    message narrows the feed to one job; a key sees only its own jobs' events."""
    services = websocket.app.state.services
    who = caller.name or (websocket.client.host if websocket.client else "an unknown address")
    await websocket.accept()
    try:
        services.feeds.take(who)
    except RateLimited as error:
        await websocket.send_json({"type": "error", "error": error.code, "detail": error.message})
        await websocket.close(code=WS_CLOSE[error.code])
        return
    try:
        subscription = await services.broadcaster.subscribe(job_id, caller.sees)
        try:
            status = status_view(await services.queue.status.remote(), caller.sees)
            await websocket.send_json({"type": "queue_status", **status})
            await _pump_feed(websocket, subscription)
        except WebSocketDisconnect:
            pass
        finally:
            services.broadcaster.unsubscribe(subscription)
    finally:
        services.feeds.give_back(who)


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


@health_router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Liveness and readiness for anyone; for a caller with a key (or with keys off), per
    service which model runs, which fallback runs instead and why, and what generation is
    waiting for, if anything."""
    services = services_of(request)
    status = await services.queue.status.remote()
    generation = generation_readiness(status["generators"], status.get("scaled_to_zero", False))
    generation["configured"] = services.settings.generator_backend
    storage = await services.storage_state()
    healthy = storage["state"] == "ok" and not status["cluster"]["problems"]
    if services.keyring.enabled and services.keyring.identify(header_key(request.headers)) is None:
        # Paths, models and the cluster's layout are not for whoever reaches the port.
        ready = generation["state"] in CAN_GENERATE
        return {"status": "ok" if healthy else "degraded", "ready": ready}
    return {
        "status": "ok" if healthy else "degraded",
        "app": services.settings.app_name,
        "generator_backend": services.settings.generator_backend,
        "generation": generation,
        "preprocessing": await services.preprocessor.status.remote(),
        "export": await services.exporter.status.remote(),
        "text_to_image": await services.painter.status.remote(),
        "queue": {"active_jobs": status["active_jobs"], "queue_depth": status["queue_depth"]},
        "storage": storage,
        "cluster": status["cluster"],
        "exposure": {
            "bound": services.exposure.bound,
            "warning": services.exposure.warning(),
        },
    }


# Generation states in which a job submitted now is generated (scaled to zero: once a replica
# has started for it).
CAN_GENERATE = ("ready", "scaled_to_zero")


def generation_readiness(
    generators: dict[str, dict[str, Any]], scaled_to_zero: bool = False
) -> dict[str, Any]:
    """The generators' state, what they run (``running``) and, for a fallback, why;
    ``scaled_to_zero``: none runs because the Generator scaled to zero while idle."""
    running = sorted({g["generator"] for g in generators.values() if g.get("generator")})
    fallbacks = sorted({g["fallback"] for g in generators.values() if g.get("fallback")})
    said = {"running": running, "fallback": "; ".join(fallbacks) or None}
    states = [g.get("state") for g in generators.values()]
    if any(s in ("idle", "generating") for s in states):
        return {"state": "ready", "detail": f"{len(states)} generator replica(s)", **said}
    if "loading" in states:
        return {"state": "loading", "detail": "the generation model is loading", **said}
    if states:
        details = "; ".join(g.get("detail", "") for g in generators.values())
        return {"state": "unavailable", "detail": details, **said}
    if scaled_to_zero:
        return {
            "running": [],
            "fallback": None,
            "state": "scaled_to_zero",
            "detail": "no generator running: scaled to zero, one starts for the next job",
        }
    gpus = ray.cluster_resources().get("GPU", 0)
    return {
        "running": [],
        "fallback": None,
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
