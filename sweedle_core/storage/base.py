"""The file store every deployment hands files through: one small interface, two backends.

Keys are relative paths (`layout`). Every write is all-or-nothing: a reader sees the whole object
or none. Tools that need a real file work in node-local scratch space (`local_file`,
`workspace`) and their results are stored from there.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

CHUNK_BYTES = 1024 * 1024  # streamed downloads move a MiB at a time


class Storage(abc.ABC):
    """Where asset files live. Methods are blocking (call them from a thread in async code),
    except `open_stream`; failures raise `FileMissing` (no such object) or `StorageUnavailable`."""

    backend: str  # "local" or "s3"
    location: str  # what an operator recognises: the folder, or s3://bucket/prefix

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing what was there."""

    @abc.abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Store the local file ``path`` under ``key`` without reading it into memory."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes: ...

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def size(self, key: str) -> int: ...

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """The keys under ``prefix`` (a folder: ``<asset id>``), sorted."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; none there is not an error."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> None:
        """Remove every object under ``prefix`` (a folder); nothing there is not an error."""

    @abc.abstractmethod
    def local_file(self, key: str) -> AbstractContextManager[Path]:
        """A real file holding the object, for tools that need a path (valid in the block)."""

    @abc.abstractmethod
    def workspace(self, prefix: str) -> AbstractContextManager[Path]:
        """A local folder standing for ``prefix``: what the block writes into it is stored
        under ``prefix`` when the block ends without an error. A local store hands out the
        folder itself (each file is written atomically); an object store a scratch folder."""

    @abc.abstractmethod
    async def open_stream(self, key: str) -> tuple[int, AsyncIterator[bytes]]:
        """The object's size and its bytes in chunks, for a download that must not sit in
        memory whole; `FileMissing` before any byte when there is no such object."""

    def served_path(self, key: str) -> Path | None:
        """The file itself, where the store is a local folder (sent with its own range and
        caching support), else None."""
        return None

    def presigned_url(self, key: str, seconds: int) -> str | None:
        """A URL that reads the object without credentials for ``seconds``, where the store
        has such URLs, else None."""
        return None

    def tidy(self) -> None:
        """Finish what an interrupted removal left behind (the sweep calls it); an object
        store has nothing to finish: it lists and deletes by key."""
        return None

    @abc.abstractmethod
    def check(self) -> None:
        """Raise `StorageUnavailable` naming the problem when the store cannot be used."""


def files_under(folder: Path) -> Iterator[tuple[str, Path]]:
    """``(relative name, path)`` of every file under ``folder``, skipping temporary files a
    writer left (``.name.<hex>.tmp``)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not (path.name.startswith(".") and path.name.endswith(".tmp")):
            yield path.relative_to(folder).as_posix(), path
