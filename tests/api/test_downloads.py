"""How a stored file is answered: a local file as a file, an S3 object streamed (its length
said first) or, with STORAGE_PRESIGNED_DOWNLOADS, a redirect to a URL that needs no key."""

from __future__ import annotations

import asyncio
import random
from types import SimpleNamespace

import httpx
import pytest
from fastapi.responses import FileResponse, RedirectResponse, StreamingResponse

from deployments.http.files import send_stored
from deployments.http.services import Services
from sweedle_core.access.keyring import KeyRing
from sweedle_core.config import Settings
from sweedle_core.errors import FileMissing
from sweedle_core.export.asset_exports import StoredFile
from sweedle_core.storage import LocalStorage
from sweedle_core.storage.s3 import S3Storage

DATA = random.Random(7).randbytes(3 * 1024 * 1024 + 17)  # more than one streamed chunk
GLB = StoredFile("asset1/model.glb", "model/gltf-binary", "Red Disc.glb")


@pytest.fixture
def bucket(s3_server, monkeypatch) -> S3Storage:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    storage = S3Storage(s3_server.url(f"downloads-{random.getrandbits(32):08x}"))
    storage.put(GLB.path, DATA)
    return storage


def services(storage, **settings):  # type: ignore[no-untyped-def]
    return SimpleNamespace(storage=storage, settings=Settings(**settings))


async def body(response: StreamingResponse) -> bytes:
    return b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[misc]


def test_a_local_file_is_sent_as_the_file(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put(GLB.path, DATA)
    response = asyncio.run(send_stored(services(storage), GLB))
    assert isinstance(response, FileResponse) and response.path == tmp_path / GLB.path


def test_an_s3_object_is_streamed_with_its_length_and_name(bucket):
    response = asyncio.run(send_stored(services(bucket), GLB))
    assert isinstance(response, StreamingResponse)
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["content-disposition"] == "attachment; filename*=utf-8''Red%20Disc.glb"
    assert asyncio.run(body(response)) == DATA


def test_a_presigned_download_redirects_to_a_url_that_needs_no_key(bucket):
    settings = {"storage_presigned_downloads": True, "storage_presign_seconds": 60}
    response = asyncio.run(send_stored(services(bucket, **settings), GLB))
    assert isinstance(response, RedirectResponse) and response.status_code == 303
    fetched = httpx.get(response.headers["location"])
    assert fetched.status_code == 200 and fetched.content == DATA

    # Studio asks for the bytes from this server (its CSP, and its key's header).
    streamed = asyncio.run(send_stored(services(bucket, **settings), GLB, redirect=False))
    assert isinstance(streamed, StreamingResponse) and asyncio.run(body(streamed)) == DATA


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_missing_file_is_a_404_error_before_any_byte(backend, tmp_path, request):
    storage = LocalStorage(tmp_path) if backend == "local" else request.getfixturevalue("bucket")
    missing = StoredFile("asset1/nothing.glb", "model/gltf-binary", "x.glb")
    with pytest.raises(FileMissing, match="asset1 has no thumbnail yet"):
        asyncio.run(send_stored(services(storage), missing, "asset1 has no thumbnail yet"))


def test_health_names_a_store_that_cannot_be_used(s3_server, monkeypatch):
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    missing = S3Storage("s3://no-such-bucket/sweedle", timeout_s=3)
    services = Services(
        settings=Settings(),
        store=None,
        storage=missing,
        keyring=KeyRing(),
    )

    state = asyncio.run(services.storage_state())

    assert state["state"] == "unavailable" and state["backend"] == "s3"
    assert "the bucket does not exist" in state["problem"] and "STORAGE_URL" in state["problem"]
