"""The FastAPI app: routers, the API key check, CORS and the error mapping, over `Services`."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from deployments.http import admin, assets, exports, generation
from deployments.http.auth import authorize
from deployments.http.errors import ERROR_RESPONSES, install_error_handlers
from deployments.http.feed import feed_router, health_router
from deployments.http.generation import REPLAYED
from deployments.http.services import Services

# Routers behind the API key check; /health is the only open route.
GUARDED = (generation.router, assets.router, exports.router, admin.router)


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="Sweedle",
        summary="Self-hosted image-to-3D: a photo in, a game-ready GLB out.",
        version="0.1.0",
        responses=ERROR_RESPONSES,
    )
    app.state.services = services
    install_error_handlers(app)
    for router in GUARDED:
        app.include_router(router, dependencies=[Depends(authorize)])
    app.include_router(feed_router)  # checks its key itself: see authorize_websocket
    app.include_router(health_router)
    if services.settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=services.settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"],
            expose_headers=["Retry-After", REPLAYED],
        )
    return app
