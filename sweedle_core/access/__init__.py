"""Access control: API keys and their scopes (keys), the accepted keys (keyring, keys_file),
and per-key limits (limits)."""

from sweedle_core.access.keyring import KeyRing
from sweedle_core.access.keys import (
    ADMIN,
    READ,
    SCOPES,
    WRITE,
    ApiKey,
    Caller,
    KeyInfo,
    digest_of,
    new_key,
    presented_key,
)
from sweedle_core.access.keys_file import add_key_to_file, load_keys_file
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
