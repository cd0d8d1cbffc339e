"""Bad input gets a 4xx JSON error that names the problem, and leaves nothing behind."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from tests.conftest import drawn_image

UNKNOWN = "0" * 32


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims ``width`` x ``height`` 1-bit pixels: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = zlib.compress(b"\x00" * ((width + 7) // 8 + 1) * 64)
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, "GIF")
    return buffer.getvalue()


def stored_files(deployment) -> set[str]:
    """The storage's asset folders: a refused upload must not leave one (files of other
    assets' jobs, still running, come and go inside their own folders)."""
    root = deployment.storage_root
    return {p.name for p in root.iterdir()} if root.exists() else set()


@pytest.mark.parametrize(
    ("image", "fields", "status", "code", "words"),
    [
        (gif(), {}, 415, "unsupported_image_format", "GIF"),
        (drawn_image()[:400], {}, 400, "invalid_image", "truncated"),
        (b"", {}, 400, "invalid_image", "empty"),
        (b"hello, I am text", {}, 415, "unsupported_image_format", "PNG"),
        (b"\0" * (2 * 1024 * 1024 + 10), {}, 413, "image_too_large", "MB"),
        (png_header_only(12_000, 5_000), {}, 413, "image_too_large", "pixels"),
        (drawn_image(), {"octree_resolution": 4096}, 422, "invalid_input", "octree_resolution"),
        (drawn_image(), {"inference_steps": 0}, 422, "invalid_input", "inference_steps"),
        (drawn_image(), {"priority": "urgent"}, 422, "invalid_input", "priority"),
        (drawn_image(), {"seed": -1}, 422, "invalid_input", "seed"),
        (drawn_image(), {"output_format": "fbx"}, 422, "invalid_input", "output_format"),
    ],
    ids=[
        "gif",
        "truncated-png",
        "zero-bytes",
        "text",
        "over-upload-limit",
        "decompression-bomb",
        "octree-too-high",
        "zero-steps",
        "unknown-priority",
        "negative-seed",
        "unknown-format",
    ],
)
def test_bad_uploads_get_a_named_4xx_and_leave_nothing(
    deployment, client, image, fields, status, code, words
):
    assets_before = client.http.get("/api/assets").json()["total"]
    files_before = stored_files(deployment)

    response = client.submit(image, **fields)

    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert words.lower() in body["detail"].lower()
    assert client.http.get("/api/assets").json()["total"] == assets_before
    assert stored_files(deployment) == files_before


def test_a_request_without_a_file_is_a_422(client):
    response = client.http.post("/api/generation/image-to-3d", data={"name": "no file"})
    assert response.status_code == 422
    assert "file" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/generation/jobs/{UNKNOWN}"),
        ("DELETE", f"/api/generation/jobs/{UNKNOWN}"),
        ("GET", f"/api/assets/{UNKNOWN}"),
        ("GET", f"/api/assets/{UNKNOWN}/download"),
        ("GET", f"/api/assets/{UNKNOWN}/thumbnail"),
    ],
)
def test_unknown_ids_are_404_with_a_message(client, method, path):
    response = client.http.request(method, path)
    assert response.status_code == 404
    assert UNKNOWN in response.json()["detail"]


def test_malformed_ids_and_paging_are_422(client):
    assert client.http.get("/api/generation/jobs/not-an-id").status_code == 422
    assert client.http.get("/api/assets", params={"page": 0}).status_code == 422
    assert client.http.get("/api/assets", params={"page_size": 1000}).status_code == 422
