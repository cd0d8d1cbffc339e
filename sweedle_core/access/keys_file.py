"""API_KEYS_FILE: named keys stored as SHA-256 digests, with their scopes and limits."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from sweedle_core.access.keys import (
    HEX64,
    MAX_EXPORT_ROOTS,
    MIN_KEY_LENGTH,
    NAME_RE,
    SCOPE_ORDER,
    SCOPES,
    USER_SCOPES,
    ApiKey,
    digest_of,
    new_key,
    ordered,
)

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
    # The folders this key's engine bundles may be written under, instead of
    # EXPORT_ALLOWED_ROOTS; [] lets it write into none.
    export_roots: list[str] | None = Field(None, max_length=MAX_EXPORT_ROOTS)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.fullmatch(value):
            raise ValueError("a name is 1 to 64 characters of A-Z a-z 0-9 . _ -")
        return value

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str | None) -> str | None:
        if value is not None and not HEX64.fullmatch(value):
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
        if text is not None and len(text) < MIN_KEY_LENGTH:
            raise ValueError(
                f"key is shorter than {MIN_KEY_LENGTH} characters; use a long random key "
                "(`sweedle keys new` makes one and stores only its sha256)"
            )
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

    @field_validator("export_roots")
    @classmethod
    def _export_roots(cls, value: list[str] | None) -> list[str] | None:
        for root in value or []:
            if not Path(root).is_absolute() or "\0" in root or ".." in Path(root).parts:
                raise ValueError(f"an export root is an absolute folder without '..', not {root!r}")
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
            None if self.export_roots is None else tuple(map(Path, self.export_roots)),
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
    export_roots: Sequence[str] | None = None,
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
    if export_roots is not None:
        entry["export_roots"] = list(export_roots)
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
