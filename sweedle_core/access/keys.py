"""API keys: who a request comes from, and what it may do.

A key is held only as the SHA-256 of its text, so neither memory, a log line nor the keys file
gives one away. Keys are random and long (``new_key``), so an unsalted fast hash is enough: there
is no dictionary to run against it. Owners are recorded by the key's *name*, which is safe to log
and store; the key itself never leaves this module.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sweedle_core.errors import Forbidden

READ, WRITE, PRIORITY, ADMIN = "read", "write", "priority", "admin"
# Canonical order, for messages and files: the order people read them in, not alphabetical.
SCOPE_ORDER = (READ, WRITE, PRIORITY, ADMIN)
SCOPES = frozenset(SCOPE_ORDER)
USER_SCOPES = frozenset({READ, WRITE})
# What a missing scope stops a key from doing, for the 403 message.
_DOING = {
    READ: "read assets or jobs",
    WRITE: "submit, change or delete",
    PRIORITY: "submit jobs at priority high (ahead of everyone's normal ones)",
    ADMIN: "see other owners' data or use admin routes",
}
# Names are stored as owners (String(64)) and shown in logs: keep them short and plain.
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
HEX64 = re.compile(r"[0-9a-fA-F]{64}")
HOW_TO_SEND = "send the key as Authorization: Bearer <key> or X-API-Key: <key>"


# The shortest key accepted from API_KEYS, ADMIN_API_KEYS or a keys file's ``key``: a short one
# is guessed (`new_key` makes 47 characters).
MIN_KEY_LENGTH = 16
# The most folders one key's engine bundles may be written under.
MAX_EXPORT_ROOTS = 16


def checked_keys(text: str, setting: str) -> str:
    """``text`` (comma-separated keys, as in API_KEYS) unless a key in it is shorter than
    `MIN_KEY_LENGTH`, or it is set but holds no key at all (``","``): then ValueError naming
    the setting (never the key)."""
    if not text.strip():
        return text
    keys = [part.strip() for part in text.split(",") if part.strip()]
    if not keys:
        raise ValueError(
            f"{setting} is set but holds no key ({text!r}): list keys, or unset it to run "
            "without keys (on loopback only)"
        )
    short = [key for key in keys if len(key) < MIN_KEY_LENGTH]
    if short:
        raise ValueError(
            f"{setting} holds {len(short)} key(s) shorter than {MIN_KEY_LENGTH} characters; "
            "use long random keys (`sweedle keys new` makes one)"
        )
    return text


def new_key() -> str:
    """A fresh key: 256 random bits; the prefix makes a leaked one easy to grep for."""
    return "swd_" + secrets.token_urlsafe(32)


def digest_of(key: str) -> str:
    """The SHA-256 hex digest under which ``key`` is stored."""
    # surrogatepass: any str a header decoder hands over hashes instead of raising.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def ordered(scopes: Iterable[str]) -> list[str]:
    chosen = set(scopes)
    return [s for s in SCOPE_ORDER if s in chosen]


def presented_key(
    authorization: str | None = None, x_api_key: str | None = None, query: str | None = None
) -> str | None:
    """The key a request presents: ``Authorization: Bearer <key>``, else ``X-API-Key``, else the
    ``api_key`` query parameter (for WebSockets, which browsers cannot give headers)."""
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    for value in (x_api_key, query):
        if value and value.strip():
            return value.strip()
    return None


def may_see(sees: str | None, owner: str | None) -> bool:
    """Whether a caller whose reads are narrowed to ``sees`` (`Caller.sees`; None: every
    owner's) may see a job, asset or event of ``owner``. The one rule the library, the feed
    and the routes share."""
    return sees is None or owner == sees


@dataclass(frozen=True)
class ApiKey:
    """One known key. ``None`` limits fall back to the settings' defaults; 0 is no limit."""

    name: str
    digest: str = field(repr=False)
    scopes: frozenset[str]
    requests_per_minute: int | None = None
    max_waiting_jobs: int | None = None
    # The folders this key's engine bundles may be written under; None: EXPORT_ALLOWED_ROOTS.
    export_roots: tuple[Path, ...] | None = None

    def __post_init__(self) -> None:
        if not NAME_RE.fullmatch(self.name):
            raise ValueError(f"key name {self.name!r} is not 1-64 of A-Z a-z 0-9 . _ -")
        if unknown := self.scopes - SCOPES:
            raise ValueError(f"key {self.name!r}: unknown scopes {sorted(unknown)}")


@dataclass(frozen=True)
class Caller:
    """Who a request comes from, once its key is checked: what routes and rows consult."""

    name: str | None
    scopes: frozenset[str]
    requests_per_minute: int = 0
    max_waiting_jobs: int = 0
    export_roots: tuple[Path, ...] | None = None  # None: EXPORT_ALLOWED_ROOTS

    @classmethod
    def open(cls, max_waiting_jobs: int = 0) -> Caller:
        """The caller of a service without keys: anyone may do anything; only the jobs
        waiting at once are bounded (MAX_WAITING_JOBS_ANONYMOUS), for all of them together."""
        return cls(name=None, scopes=SCOPES, max_waiting_jobs=max_waiting_jobs)

    @property
    def admin(self) -> bool:
        return ADMIN in self.scopes

    @property
    def owner(self) -> str | None:
        """What a new asset or job records as its owner."""
        return self.name

    @property
    def sees(self) -> str | None:
        """The owner filter for reads: None (every owner's rows) for an admin."""
        return None if self.admin else self.name

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def require(self, scope: str) -> None:
        """Raises `Forbidden` unless the key has ``scope``."""
        if not self.allows(scope):
            has = ", ".join(ordered(self.scopes)) or "none"
            raise Forbidden(
                f"the key {self.name!r} may not {_DOING.get(scope, scope)}: it needs the "
                f"{scope!r} scope, and its scopes are {has}"
            )


@dataclass(frozen=True)
class KeyInfo:
    """A key as an admin may see it: its limits as applied, never its digest."""

    name: str
    scopes: tuple[str, ...]
    requests_per_minute: int
    max_waiting_jobs: int
    export_roots: tuple[Path, ...] | None
