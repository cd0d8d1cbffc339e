"""The local-folder store: one folder per asset under a root (one machine, or a mount every
node shares)."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from sweedle_core.errors import FileMissing, StorageUnavailable
from sweedle_core.storage.atomic import copy_atomic, make_folder, write_atomic
from sweedle_core.storage.base import CHUNK_BYTES, Storage, files_under
from sweedle_core.storage.layout import checked_key


class LocalStorage(Storage):
    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.location = str(self.root)

    def path(self, key: str) -> Path:
        """The file of ``key``; refuses names that would leave the root (a link included)."""
        candidate = (self.root / checked_key(key)).resolve()
        if not candidate.is_relative_to(self.root):
            raise FileMissing(f"stored name {key!r} leaves the storage folder")
        return candidate

    def put(self, key: str, data: bytes) -> None:
        with self._failures("write", key):
            write_atomic(self.path(key), data, private=True)

    def put_file(self, key: str, path: Path) -> None:
        target = self.path(key)
        if Path(path).resolve() == target:
            return  # written in place through `workspace`
        with self._failures("write", key):
            copy_atomic(path, target, private=True)

    def get(self, key: str) -> bytes:
        with self._failures("read", key):
            return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        with self._failures("read", key):
            return self.path(key).is_file()

    def size(self, key: str) -> int:
        with self._failures("read", key):
            return self.path(key).stat().st_size

    def list(self, prefix: str) -> list[str]:
        folder = self.path(prefix)
        with self._failures("list", prefix):
            if not folder.is_dir():
                return []
            # Sorted as strings, as an object store lists them ("lods.zip" before "lods/...").
            return sorted(f"{prefix}/{name}" for name, _ in files_under(folder))

    def delete(self, key: str) -> None:
        with self._failures("delete", key):
            self.path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        folder = self.path(prefix)
        with self._failures("delete", prefix):
            try:
                # Renamed away first, so that readers see the whole folder or none of it.
                trash = self.root / f".trash-{uuid.uuid4().hex}"
                os.replace(folder, trash)
            except FileNotFoundError:
                return
            shutil.rmtree(trash, ignore_errors=True)  # what stays, `tidy` removes

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        path = self.path(key)
        if not path.is_file():
            raise FileMissing(f"{key} is not in the store")
        yield path

    @contextmanager
    def workspace(self, prefix: str) -> Iterator[Path]:
        folder = self.path(prefix)
        with self._failures("write", prefix):
            make_folder(folder, private=True)
        yield folder

    async def open_stream(self, key: str) -> tuple[int, AsyncIterator[bytes]]:
        path = self.path(key)
        with self._failures("read", key):
            handle = await asyncio.to_thread(path.open, "rb")
        return os.fstat(handle.fileno()).st_size, self._chunks(key, handle)

    async def _chunks(self, key: str, handle: BinaryIO) -> AsyncIterator[bytes]:
        with handle, self._failures("read", key):
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk

    def served_path(self, key: str) -> Path | None:
        with self._failures("read", key):
            path = self.path(key)
            return path if path.is_file() else None

    def tidy(self) -> None:
        """Finish removals a crash interrupted (folders renamed away, not yet deleted)."""
        for trash in self.root.glob(".trash-*"):
            shutil.rmtree(trash, ignore_errors=True)

    def check(self) -> None:
        with self._failures("write", "a check file"):
            make_folder(self.root, private=True)
            write_atomic(self.root / ".sweedle-check", b"ok", private=True)

    @contextmanager
    def _failures(self, operation: str, key: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as exc:
            raise FileMissing(f"{key} is not in the store") from exc
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot {operation} {key} in the storage folder {self.root} (STORAGE_DIR): "
                f"{exc.strerror or exc}"
            ) from exc
