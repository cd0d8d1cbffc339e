"""The file store: `Storage` and the backend the settings choose (`build_storage`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweedle_core.errors import StorageUnavailable, one_line
from sweedle_core.storage.atomic import write_atomic
from sweedle_core.storage.base import Storage
from sweedle_core.storage.local import LocalStorage

if TYPE_CHECKING:
    from sweedle_core.config import Settings

__all__ = [
    "LocalStorage",
    "Storage",
    "build_storage",
    "storage_status",
    "store_state",
    "write_atomic",
]


def build_storage(settings: Settings) -> Storage:
    """``STORAGE_URL`` (s3://bucket/prefix) if set, else the folder ``STORAGE_DIR``."""
    if settings.storage_url:
        from sweedle_core.storage.s3 import S3Storage

        given = {
            "endpoint": settings.aws_endpoint_url,
            "access_key_id": settings.aws_access_key_id,
            "secret_access_key": settings.aws_secret_access_key.get_secret_value(),
            "region": settings.aws_region,
        }
        return S3Storage(
            settings.storage_url,
            timeout_s=settings.storage_timeout_s,
            config={name: value for name, value in given.items() if value},
            # The settings were read where the app was built; unset, the replica's own
            # environment (a runtime_env's variables, say) still decides, as for the keys.
            allow_http=settings.aws_allow_http or None,
        )
    return LocalStorage(settings.storage_dir)


def storage_status(storage: Storage) -> dict[str, Any]:
    """What `/health` says of the store: which one, and whether it can be used (blocking)."""
    try:
        storage.check()
        problem = None
    except StorageUnavailable as exc:
        problem = exc.message
    except Exception as exc:  # whatever else the store raised, /health must still answer
        problem = one_line(exc)
    return store_state(storage, problem)


def store_state(storage: Storage, problem: str | None) -> dict[str, Any]:
    """The store as `/health` shows it: usable, or not because of ``problem``."""
    return {
        "backend": storage.backend,
        "location": storage.location,
        "state": "ok" if problem is None else "unavailable",
        "problem": problem,
    }
