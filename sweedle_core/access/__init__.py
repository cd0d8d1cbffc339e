"""Access control: API keys and their scopes (keys), and per-key limits (limits)."""

from sweedle_core.access.keys import (
    ADMIN,
    READ,
    SCOPES,
    WRITE,
    ApiKey,
    Caller,
    KeyInfo,
    KeyRing,
    add_key_to_file,
    digest_of,
    load_keys_file,
    new_key,
    presented_key,
)
from sweedle_core.access.limits import RequestLimiter, waiting_jobs_exceeded

__all__ = [
    "ADMIN",
    "READ",
    "SCOPES",
    "WRITE",
    "ApiKey",
    "Caller",
    "KeyInfo",
    "KeyRing",
    "RequestLimiter",
    "add_key_to_file",
    "digest_of",
    "load_keys_file",
    "new_key",
    "presented_key",
    "waiting_jobs_exceeded",
]
