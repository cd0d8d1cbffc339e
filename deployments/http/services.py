"""What the routes work with: the database, the files, the keys, and the Ray handles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sweedle_core.access.keyring import KeyRing
from sweedle_core.access.limits import RequestLimiter
from sweedle_core.config import Settings
from sweedle_core.db.store import Store
from sweedle_core.storage import Storage


@dataclass
class Services:
    """One per ingress replica. The Ray handles are None where the app runs without Ray (the
    plain-uvicorn benchmark serves only the library routes)."""

    settings: Settings
    store: Store
    storage: Storage
    keyring: KeyRing
    limiter: RequestLimiter = field(default_factory=RequestLimiter)
    queue: Any = None  # the JobQueue actor
    preprocessor: Any = None
    exporter: Any = None
    painter: Any = None
    submission: Any = None  # deployments.submission.Submission
    broadcaster: Any = None  # deployments.broadcast.Broadcaster

    @classmethod
    def without_ray(cls, settings: Settings) -> Services:
        return cls(
            settings=settings,
            store=Store.from_url(settings.database_url),
            storage=Storage(settings.storage_dir).ensure(),
            keyring=KeyRing.from_settings(settings),
        )
