"""The keys a service accepts, from the settings, and the check of a presented one."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sweedle_core.access.keys import (
    HOW_TO_SEND,
    SCOPES,
    USER_SCOPES,
    ApiKey,
    Caller,
    KeyInfo,
    digest_of,
    ordered,
)
from sweedle_core.access.keys_file import load_keys_file
from sweedle_core.errors import Unauthorized

if TYPE_CHECKING:
    from sweedle_core.config import Settings


class KeyRing:
    """Every key the service accepts, and the check of a presented one."""

    def __init__(
        self,
        keys: Iterable[ApiKey] = (),
        *,
        default_requests_per_minute: int = 0,
        default_max_waiting_jobs: int = 0,
        anonymous_max_waiting_jobs: int = 0,
        enabled: bool | None = None,
    ) -> None:
        self._keys = tuple(keys)
        names: dict[str, ApiKey] = {}
        digests: dict[str, ApiKey] = {}
        for key in self._keys:
            if key.name in names:
                raise ValueError(f"two keys are named {key.name!r}; names must be unique")
            if key.digest in digests:
                raise ValueError(
                    f"the keys {digests[key.digest].name!r} and {key.name!r} are the same key"
                )
            names[key.name], digests[key.digest] = key, key
        self._defaults = (default_requests_per_minute, default_max_waiting_jobs)
        self._anonymous_waiting = anonymous_max_waiting_jobs
        self.enabled = bool(self._keys) if enabled is None else enabled

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """API_KEYS, ADMIN_API_KEYS and API_KEYS_FILE; raises ValueError on a bad keys file.

        A configured keys file turns access control on even if it lists no key yet: a service
        meant to be closed fails closed (every request 401) rather than open.
        """
        keys = env_keys(
            settings.api_keys.get_secret_value(), settings.admin_api_keys.get_secret_value()
        )
        if settings.api_keys_file is not None:
            keys += load_keys_file(settings.api_keys_file)
        return cls(
            keys,
            default_requests_per_minute=settings.rate_limit_per_minute,
            default_max_waiting_jobs=settings.max_waiting_jobs_per_key,
            anonymous_max_waiting_jobs=settings.max_waiting_jobs_anonymous,
            enabled=bool(keys) or settings.api_keys_file is not None,
        )

    def identify(self, presented: str | None) -> ApiKey | None:
        """The key ``presented`` is, or None.

        Every stored digest is compared, without stopping at a match, so the time taken says
        nothing about which key (or whether any) matched.
        """
        if not presented:
            return None
        digest = digest_of(presented)
        found: ApiKey | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest):
                found = key
        return found

    def caller(self, presented: str | None) -> Caller:
        """The `Caller` behind ``presented`` (the bare key, "Bearer " already stripped);
        raises `Unauthorized` when keys are on and it is missing or unknown."""
        if not self.enabled:
            return Caller.open(max_waiting_jobs=self._anonymous_waiting)
        if not presented:
            raise Unauthorized(f"this server needs an API key: {HOW_TO_SEND}")
        key = self.identify(presented)
        if key is None:
            raise Unauthorized(f"the API key is not valid: {HOW_TO_SEND}")
        requests, waiting = self._limits(key)
        return Caller(key.name, key.scopes, requests, waiting, key.export_roots)

    def keys(self) -> list[KeyInfo]:
        """Every key's name, scopes and applied limits, for an admin listing."""
        return [
            KeyInfo(k.name, tuple(ordered(k.scopes)), *self._limits(k), k.export_roots)
            for k in self._keys
        ]

    def _limits(self, key: ApiKey) -> tuple[int, int]:
        default_requests, default_waiting = self._defaults
        return (
            default_requests if key.requests_per_minute is None else key.requests_per_minute,
            default_waiting if key.max_waiting_jobs is None else key.max_waiting_jobs,
        )

    def __repr__(self) -> str:
        return f"KeyRing(enabled={self.enabled}, keys={[k.name for k in self._keys]})"


def env_keys(api_keys: str, admin_api_keys: str) -> list[ApiKey]:
    """Keys from the comma-separated API_KEYS and ADMIN_API_KEYS, named ``key-<8 hex>`` (the
    start of the digest: stable across restarts, and gives nothing of the key away). A key
    listed in both is an admin key."""
    scopes: dict[str, frozenset[str]] = {}
    for text, granted in ((api_keys, USER_SCOPES), (admin_api_keys, SCOPES)):
        for part in text.split(","):
            if part.strip():
                digest = digest_of(part.strip())
                scopes[digest] = scopes.get(digest, frozenset()) | granted
    return [ApiKey(f"key-{d[:8]}", d, s) for d, s in scopes.items()]
