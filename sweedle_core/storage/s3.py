"""The S3 store (AWS S3 or any S3-compatible server), through obstore.

obstore (Python bindings of the Rust ``object_store`` crate, also used by crates.io) reads the
standard ``AWS_*`` variables, streams in both directions, uploads large files in parts and signs
URLs; no S3 protocol code of ours. Each PUT is atomic on S3: an object appears whole or not at
all.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import obstore
from obstore.store import S3Store

from sweedle_core.config import env_flag
from sweedle_core.errors import FileMissing, StorageUnavailable
from sweedle_core.storage.base import CHUNK_BYTES, Storage, files_under
from sweedle_core.storage.layout import checked_key, parse_s3_url

DELETE_BATCH = 1000  # S3's DeleteObjects takes at most 1000 keys
UPLOADS_AT_ONCE = 8
# A download streams at its client's pace: its body may take this long, whatever the timeout of
# the other calls.
STREAM_TIMEOUT = "6h"
MEDIA_TYPES = {
    ".glb": "model/gltf-binary",
    ".gltf": "model/gltf+json",
    ".usdz": "model/vnd.usdz+zip",
}

# What an S3 answer means for the operator, by a word in it.
_HINTS = (
    ("NoSuchBucket", ": the bucket does not exist"),
    ("SignatureDoesNotMatch", ": the credentials were refused (AWS_SECRET_ACCESS_KEY)"),
    ("InvalidAccessKeyId", ": the credentials were refused (AWS_ACCESS_KEY_ID)"),
    ("AccessDenied", ": access denied (the key's permissions)"),
    ("PermanentRedirect", ": the bucket is in another region (AWS_REGION)"),
    ("AuthorizationHeaderMalformed", ": the bucket is in another region (AWS_REGION)"),
    ("error sending request", ": the endpoint is not reachable (AWS_ENDPOINT_URL)"),
    # With no keys set, the client asks the cloud's instance metadata service for some.
    ("169.254.169.254", ": no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"),
    ("builder error", ": the request could not be made (http endpoint without AWS_ALLOW_HTTP?)"),
)


class S3Storage(Storage):
    backend = "s3"

    def __init__(
        self,
        url: str,
        timeout_s: float = 60.0,
        config: dict[str, str] | None = None,
        allow_http: bool | None = None,
        scratch: Path | None = None,
    ) -> None:
        """``config``: obstore's S3 settings (endpoint, access_key_id, ...) that override the
        ``AWS_*`` environment; ``allow_http`` None: as AWS_ALLOW_HTTP says."""
        self.bucket, self.prefix = parse_s3_url(url)
        self.config = dict(config or {})
        if allow_http is None:
            allow_http = env_flag("AWS_ALLOW_HTTP")
        self.allow_http = allow_http
        self.location = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        endpoint = (
            self.config.get("endpoint")
            or os.environ.get("AWS_ENDPOINT_URL")
            or os.environ.get("AWS_ENDPOINT")
        )
        if endpoint:
            self.location += f" at {endpoint}"
        self.scratch = scratch
        self.store = self._store(timeout_s, f"{max(1, int(timeout_s))}s")
        self.stream_store = self._store(timeout_s, STREAM_TIMEOUT)

    def _store(self, timeout_s: float, request_timeout: str) -> S3Store:
        return S3Store(
            self.bucket,
            prefix=self.prefix or None,
            config=self.config or None,  # type: ignore[arg-type]  # obstore's TypedDict
            # Passing client options replaces what the environment said about them, so the
            # one that matters on a plain-http endpoint is carried over by hand.
            client_options={
                "allow_http": self.allow_http,
                "connect_timeout": f"{max(1, int(timeout_s // 6))}s",
                "timeout": request_timeout,
            },
            retry_config={
                "max_retries": 3,
                "retry_timeout": timedelta(seconds=timeout_s),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=2),
                    "base": 2.0,
                },
            },
        )

    def put(self, key: str, data: bytes) -> None:
        with self._failures("write", key):
            obstore.put(self.store, checked_key(key), data, attributes=_attributes(key))

    def put_file(self, key: str, path: Path) -> None:
        with self._failures("write", key):
            obstore.put(self.store, checked_key(key), Path(path), attributes=_attributes(key))

    def get(self, key: str) -> bytes:
        with self._failures("read", key):
            return bytes(obstore.get(self.store, checked_key(key)).bytes())

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except FileMissing:
            return False
        return True

    def size(self, key: str) -> int:
        with self._failures("read", key):
            return int(obstore.head(self.store, checked_key(key))["size"])

    def list(self, prefix: str) -> list[str]:
        with self._failures("list", prefix):
            batches = obstore.list(self.store, f"{checked_key(prefix)}/")
            return sorted(meta["path"] for batch in batches for meta in batch)

    def delete(self, key: str) -> None:
        with self._failures("delete", key):
            obstore.delete(self.store, checked_key(key))  # S3 answers a missing key with 204

    def delete_prefix(self, prefix: str) -> None:
        keys = self.list(prefix)
        with self._failures("delete", prefix):
            for start in range(0, len(keys), DELETE_BATCH):
                obstore.delete(self.store, keys[start : start + DELETE_BATCH])

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        with self._scratch() as folder:
            path = folder / Path(checked_key(key)).name
            with self._failures("read", key), path.open("wb") as out:
                for chunk in obstore.get(self.stream_store, key).stream(CHUNK_BYTES):
                    out.write(chunk)
            yield path

    @contextmanager
    def workspace(self, prefix: str) -> Iterator[Path]:
        with self._scratch() as folder:
            yield folder
            files = list(files_under(folder))
            # Side by side: a job's export is ~15 objects, each a round trip of its own.
            with ThreadPoolExecutor(UPLOADS_AT_ONCE) as uploads:
                done = [
                    uploads.submit(self.put_file, f"{checked_key(prefix)}/{name}", path)
                    for name, path in files
                ]
                for upload in done:
                    upload.result()

    async def open_stream(self, key: str) -> tuple[int, AsyncIterator[bytes]]:
        with self._failures("read", key):
            result = await obstore.get_async(self.stream_store, checked_key(key))
        return int(result.meta["size"]), self._chunks(key, result)

    async def _chunks(self, key: str, result: Any) -> AsyncIterator[bytes]:
        with self._failures("read", key):
            async for chunk in result.stream(CHUNK_BYTES):
                yield bytes(chunk)

    def presigned_url(self, key: str, seconds: int) -> str | None:
        with self._failures("sign", key):
            url = obstore.sign(self.store, "GET", checked_key(key), timedelta(seconds=seconds))
        return str(url)

    def check(self) -> None:
        with self._failures("list", "the bucket"):
            for _ in obstore.list(self.store, None, chunk_size=1):
                break

    @contextmanager
    def _scratch(self) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix="sweedle-", dir=self.scratch))
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def _failures(self, operation: str, key: str) -> Iterator[None]:
        try:
            yield
        except FileNotFoundError as exc:
            # obstore says "not found" for a missing bucket too (S3's 404 NoSuchBucket).
            if operation == "list" or "NoSuchBucket" in str(exc):
                raise self._unavailable(operation, key, exc) from exc
            raise FileMissing(f"{key} is not in the store") from exc
        except (OSError, ValueError) as exc:  # obstore's errors, and its builtin ones
            raise self._unavailable(operation, key, exc) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("obstore"):
                raise self._unavailable(operation, key, exc) from exc
            raise

    def _unavailable(self, operation: str, key: str, exc: Exception) -> StorageUnavailable:
        # obstore's first line, without the XML body S3 sends along (the hint says it plainly).
        said = str(exc).split("\n", 1)[0].split("<?xml", 1)[0].strip().rstrip(":").strip()
        hint = next((h for marker, h in _HINTS if marker in str(exc)), "")
        return StorageUnavailable(
            f"cannot {operation} {key} in {self.location} (STORAGE_URL){hint}: {said}"
        )


def _attributes(key: str) -> dict[str, str]:
    """The Content-Type an object is stored with (what a presigned download is served as)."""
    suffix = Path(key).suffix.lower()
    media = MEDIA_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"
    return {"Content-Type": media}
