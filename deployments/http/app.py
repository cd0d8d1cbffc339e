"""The FastAPI app: routers, the API key check, CORS and the error mapping, over `Services`."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from deployments.http import admin, assets, exports, generation, studio
from deployments.http.auth import authorize
from deployments.http.errors import ERROR_RESPONSES, install_error_handlers
from deployments.http.feed import feed_router, health_router
from deployments.http.front import Front
from deployments.http.generation import REPLAYED
from deployments.http.services import Services

DESCRIPTION = """
**Keys.** With API keys configured, every route but `/health` needs one: `Authorization: Bearer
<key>` or `X-API-Key: <key>`. 401 without a known key, 403 outside its scopes (`read` for GET,
`write` for the rest, `admin` for `/api/admin`), 429 with `Retry-After` over its limits. A key
sees only its own assets and jobs (another key's ids are 404) unless it is an admin key.

**Errors** are JSON `{"error": "<code>", "detail": "<what is wrong>"}`; an unexpected one is a
500 `{"error": "internal", "detail": ..., "request_id": ...}` that names the log entry, not the
exception. Every answer carries `X-Request-ID` (the client's own when it sends a plain one).

**Limits in front of every route.** A `Host` the server does not answer to is a 400; a state-
changing request or WebSocket from a browser page whose `Origin` is not the server's own or in
`CORS_ORIGINS` is a 403; with keys on, an `/api/` request without a valid key is a 401 before
its body is read; a body over its limit (multipart uploads: `MAX_UPLOAD_MB` per view; other
bodies: `MAX_REQUEST_KB`) is a 413.

**Progress** streams on the WebSocket `/ws/progress` (`?job_id=` to follow one job, `?api_key=`
where headers cannot be set): `queue_status`, `job_created`, `progress`, `asset_ready`,
`job_failed`, `job_cancelled`, `export_progress` and `webhook_attempt` events, as JSON. A refused
key gets an `error` event, then the socket closes with 4401 or 4403.

**Webhooks** (`webhook_url`) are POSTed when a job ends, signed in `X-Sweedle-Signature:
t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`.
"""

# Routers behind the API key check; /health is the only open route.
GUARDED = (generation.router, assets.router, exports.router, admin.router)


def create_app(services: Services, behind_serve: bool = False) -> FastAPI:
    """The app; ``behind_serve``: Ray Serve's proxy sends every answer's X-Request-ID."""
    app = FastAPI(
        title="Sweedle",
        summary="Self-hosted image-to-3D: a photo in, a game-ready GLB out.",
        version="0.1.0",
        description=DESCRIPTION,
        responses=ERROR_RESPONSES,
    )
    app.state.services = services
    app.state.echo_request_id = not behind_serve
    app.state.link_templates = {}  # `RequestLinks`: each route's path, looked up once
    install_error_handlers(app)
    for router in GUARDED:
        app.include_router(router, dependencies=[Depends(authorize)])
    app.include_router(feed_router)  # checks its key itself: see authorize_websocket
    app.include_router(health_router)
    app.include_router(studio.router)  # the web UI: its page and files need no key
    # In front of every route; CORS (added after, so outside it) answers preflights and
    # gives the front layer's refusals their CORS headers.
    app.add_middleware(Front, services=services, echo_request_id=app.state.echo_request_id)
    if services.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=services.settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After", REPLAYED],
        )
    return app
