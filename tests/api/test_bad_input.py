"""Bad input gets a 4xx JSON error that names the problem, and leaves nothing behind."""

from __future__ import annotations

import struct
import zlib

import pytest

from tests.conftest import box_photo, drawn_image

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


def stored_files(api) -> set[str]:  # type: ignore[no-untyped-def]
    """The storage's asset folders: a refused upload must not leave one."""
    root = api.storage_root
    return {p.name for p in root.iterdir()} if root.exists() else set()


@pytest.mark.parametrize(
    ("image", "fields", "status", "code", "words"),
    [
        (drawn_image(32, "GIF"), {}, 415, "unsupported_image_format", "GIF"),
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
    api, client, image, fields, status, code, words
):
    assets_before = client.http.get("/api/assets").json()["total"]
    files_before = stored_files(api)

    response = client.submit(image, **fields)

    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert words.lower() in body["detail"].lower()
    assert client.http.get("/api/assets").json()["total"] == assets_before
    assert stored_files(api) == files_before


def test_a_request_without_a_file_is_a_422(client):
    response = client.http.post("/api/generation/image-to-3d", data={"name": "no file"})
    assert response.status_code == 422
    assert "file" in response.json()["detail"]


def test_front_is_required_and_a_bad_view_is_named(client):
    missing_front = client.submit_views({"left": box_photo(0.25)}, octree_resolution=96)
    assert missing_front.status_code == 422
    assert "front" in missing_front.json()["detail"]

    views = {"front": box_photo(0.5), "back": b"not an image at all"}
    broken = client.submit_views(views, octree_resolution=96)
    assert broken.status_code in (400, 415, 422), broken.text
    assert "back" in broken.json()["detail"]


def test_text_to_3d_without_a_model_is_a_404_naming_the_setting(client):
    response = client.http.post("/api/generation/text-to-3d", json={"prompt": "a chair"})

    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "text_to_image_disabled"
    assert "TEXT_TO_IMAGE_MODEL" in body["detail"]


def test_a_bad_webhook_url_is_a_422(client):
    for url in ["ftp://x/y", "not a url", "http://"]:
        response = client.submit(drawn_image(96), webhook_url=url)
        assert response.status_code == 422, response.text
        assert "webhook_url" in response.json()["detail"]


def test_a_webhook_to_an_inside_address_is_a_422_naming_the_rule(client):
    """The app allows 127.0.0.0/8 (the serve tier's test receivers); every other inside address
    is refused before a job exists, so nothing is ever sent there."""
    before = client.http.get("/api/generation/jobs").json()["total"]
    for url, rule in [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.1:8080/hook", "private"),
        ("http://[::1]:8000/api/assets", "loopback"),
        ("http://[::ffff:a9fe:a9fe]/", "link-local"),
    ]:
        response = client.submit(drawn_image(96), webhook_url=url)
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["error"] == "webhook_destination_refused" and rule in body["detail"], body
    assert client.http.get("/api/generation/jobs").json()["total"] == before


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


def test_exports_of_an_asset_still_generating_are_a_409(client):
    submitted = client.submit_ok(drawn_image(128))  # it waits at the busy CPU pool
    asset_id = submitted["asset_id"]

    for response in (
        client.http.get(f"/api/assets/{asset_id}/download"),
        client.http.get(f"/api/export/{asset_id}/validate"),
        client.http.post(f"/api/export/{asset_id}/engine", json={"engine": "godot"}),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "asset_not_ready"
    assert client.http.delete(f"/api/generation/jobs/{submitted['job_id']}").status_code == 200
