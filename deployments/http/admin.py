"""Admin routes (keys with the admin scope only)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from deployments.http.deps import ServicesDep
from sweedle_core.schemas import KeyRead

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/keys", response_model=list[KeyRead])
async def list_keys(services: ServicesDep) -> list[KeyRead]:
    """The configured API keys: names, scopes and limits (never the keys or their digests)."""
    return [KeyRead(**asdict(key)) for key in services.keyring.keys()]
