"""API keys: who a request comes from, and what it may do.

A key is held only as the SHA-256 of its text, so neither memory, a log line nor the keys file
gives one away. Keys are random and long (``new_key``), so an unsalted fast hash is enough: there
is no dictionary to run against it. Owners are recorded by the key's *name*, which is safe to log
and store; the key itself never leaves this module.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from sweedle_core.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from sweedle_core.config import Settings

READ, WRITE, ADMIN = "read", "write", "admin"
# Canonical order, for messages and files: the order people read them in, not alphabetical.
SCOPE_ORDER = (READ, WRITE, ADMIN)
SCOPES = frozenset(SCOPE_ORDER)
USER_SCOPES = frozenset({READ, WRITE})
# What a missing scope stops a key from doing, for the 403 message.
_DOING = {
    READ: "read assets or jobs",
    WRITE: "submit, change or delete",
    ADMIN: "see other owners' data or use admin routes",
}
# Names are stored as owners (String(64)) and shown in logs: keep them short and plain.
NAME_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
HOW_TO_SEND = "send the key as Authorization: Bearer <key> or X-API-Key: <key>"


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


@dataclass(frozen=True)
class ApiKey:
    """One known key. ``None`` limits fall back to the settings' defaults; 0 is no limit."""

    name: str
    digest: str = field(repr=False)
    scopes: frozenset[str]
    requests_per_minute: int | None = None
    max_waiting_jobs: int | None = None

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

    @classmethod
    def open(cls) -> Caller:
        """The caller of a service without keys: anyone may do anything, without limits."""
        return cls(name=None, scopes=SCOPES)

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


class KeyRing:
    """Every key the service accepts, and the check of a presented one."""

    def __init__(
        self,
        keys: Iterable[ApiKey] = (),
        *,
        default_requests_per_minute: int = 0,
        default_max_waiting_jobs: int = 0,
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
            return Caller.open()
        if not presented:
            raise Unauthorized(f"this server needs an API key: {HOW_TO_SEND}")
        key = self.identify(presented)
        if key is None:
            raise Unauthorized(f"the API key is not valid: {HOW_TO_SEND}")
        requests, waiting = self._limits(key)
        return Caller(key.name, key.scopes, requests, waiting)

    def keys(self) -> list[KeyInfo]:
        """Every key's name, scopes and applied limits, for an admin listing."""
        return [KeyInfo(k.name, tuple(ordered(k.scopes)), *self._limits(k)) for k in self._keys]

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


# -- The keys file ---------------------------------------------------------------------------


class _Entry(BaseModel):
    """One key in API_KEYS_FILE. ``sha256`` is preferred; ``key`` (the plain text) is hashed
    at load and dropped, but then the file itself is a secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    sha256: str | None = None
    key: SecretStr | None = None
    scopes: list[str] = Field(default_factory=lambda: ordered(USER_SCOPES))
    # None: the settings' default; 0: no limit for this key even when there is a default.
    requests_per_minute: int | None = Field(None, ge=0, strict=True)
    max_waiting_jobs: int | None = Field(None, ge=0, strict=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError("a name is 1 to 64 characters of A-Z a-z 0-9 . _ -")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not _HEX64.fullmatch(value):
            raise ValueError(
                "sha256 must be 64 hex digits, the SHA-256 of the key "
                "(`sweedle keys new` writes it; or `printf %s KEY | sha256sum`)"
            )
        return None if value is None else value.lower()

    @field_validator("key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        text = None if value is None else value.get_secret_value()
        if text is not None and (not text or text != text.strip()):
            raise ValueError("key must not be empty nor start or end with white space")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"scopes must not be empty; scopes are {', '.join(SCOPE_ORDER)}")
        for scope in value:
            if scope not in SCOPES:
                raise ValueError(f"unknown scope {scope!r}; scopes are {', '.join(SCOPE_ORDER)}")
        return value

    @model_validator(mode="after")
    def _one_secret(self) -> _Entry:
        if (self.sha256 is None) == (self.key is None):
            raise ValueError("give exactly one of sha256 (preferred) or key")
        return self

    def api_key(self) -> ApiKey:
        if self.sha256 is not None:
            digest = self.sha256
        else:  # _one_secret made sure there is a key
            digest = digest_of(self.key.get_secret_value() if self.key is not None else "")
        return ApiKey(
            self.name,
            digest,
            frozenset(self.scopes),
            self.requests_per_minute,
            self.max_waiting_jobs,
        )


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[_Entry]


def load_keys_file(path: Path) -> list[ApiKey]:
    """The keys in the JSON file at ``path``; raises ValueError naming the file, the entry and
    the problem (the service refuses to start rather than run with keys it misread)."""
    return _parse(path, _read(path))


def add_key_to_file(
    path: Path,
    name: str,
    scopes: Iterable[str] = USER_SCOPES,
    requests_per_minute: int | None = None,
    max_waiting_jobs: int | None = None,
) -> str:
    """Makes a key, records its SHA-256 in the keys file at ``path`` (created with mode 0600)
    and returns the key: the only time its text exists. Raises ValueError on a duplicate name,
    a bad value, or an existing file that does not load."""
    chosen = set(scopes)
    if unknown := chosen - SCOPES:
        raise ValueError(f"unknown scopes {sorted(unknown)}; scopes are {', '.join(SCOPE_ORDER)}")
    document: dict[str, Any] = _read(path) if path.exists() else {"keys": []}
    existing = _parse(path, document)
    if any(k.name == name for k in existing):
        raise ValueError(f"API_KEYS_FILE {path}: a key named {name!r} already exists")
    key = new_key()
    entry: dict[str, Any] = {"name": name, "sha256": digest_of(key), "scopes": ordered(chosen)}
    if requests_per_minute is not None:
        entry["requests_per_minute"] = requests_per_minute
    if max_waiting_jobs is not None:
        entry["max_waiting_jobs"] = max_waiting_jobs
    try:
        _Entry.model_validate(entry)
    except ValidationError as exc:
        raise ValueError(f"the new key {name!r}: {_reasons(exc, None)}") from None
    document["keys"].append(entry)
    _write_atomically(path, json.dumps(document, indent=2) + "\n")
    return key


def _read(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ValueError(f"API_KEYS_FILE {path}: cannot read it: {reason}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"API_KEYS_FILE {path}: not valid JSON at line {exc.lineno} column {exc.colno}: "
            f"{exc.msg}"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f'API_KEYS_FILE {path}: must be a JSON object {{"keys": [...]}}')
    return document


def _parse(path: Path, document: dict[str, Any]) -> list[ApiKey]:
    try:
        parsed = _File.model_validate(document)
    except ValidationError as exc:
        raise ValueError(f"API_KEYS_FILE {path}: {_reasons(exc, document)}") from None
    keys = [entry.api_key() for entry in parsed.keys]
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        for seen, what in ((key.name, "name"), (key.digest, "key")):
            if seen in first:
                raise ValueError(
                    f"API_KEYS_FILE {path}: keys[{index}] ({key.name!r}) has the same {what} as "
                    f"keys[{first[seen]}] ({keys[first[seen]].name!r})"
                )
            first[seen] = index
    return keys


def _reasons(exc: ValidationError, document: dict[str, Any] | None) -> str:
    """Pydantic's errors as ``keys[2] ('studio-b'): scopes: unknown scope ...``. The values are
    left out: one might be a key."""
    reasons = []
    for error in exc.errors(include_input=False, include_url=False):
        where, loc = [], list(error["loc"])
        if len(loc) >= 2 and loc[0] == "keys" and isinstance(loc[1], int):
            entry = (document or {}).get("keys", [])[loc[1]]
            named = isinstance(entry, dict) and isinstance(entry.get("name"), str)
            where.append(f"keys[{loc[1]}]" + (f" ({entry['name']!r})" if named else ""))
            loc = loc[2:]
        where += [str(part) for part in loc]
        message = error["msg"].removeprefix("Value error, ")
        reasons.append(": ".join([*where, message]))
    return "; ".join(reasons)


def _write_atomically(path: Path, text: str) -> None:
    """Writes through a temporary file and a rename, so a reader never sees half a file. A new
    file is 0600 (mkstemp's mode); an existing one keeps its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
