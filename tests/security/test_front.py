"""The layer in front of every route: Host and Origin refusals, the key checked before a body is
read, and bodies bounded before they are read (in the app itself, driven as the server drives
it, so what the app consumed of a body is counted)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from deployments.http.app import create_app
from deployments.http.services import Services
from sweedle_core.access.exposure import Exposure, ExposureRefused
from sweedle_core.config import Settings

KEY = "swd_security_test_key_0123456789"
MB = 1024 * 1024


def app_with(**settings: Any) -> FastAPI:
    values = {"database_url": "sqlite+aiosqlite://", "max_upload_mb": 2, **settings}
    return create_app(Services.without_ray(Settings(**values)))


class Sent:
    """What an ASGI app answered, and how many body chunks it took from the client."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.chunks_taken = 0

    @property
    def status(self) -> int:
        return next(m["status"] for m in self.messages if m["type"] == "http.response.start")

    @property
    def json(self) -> dict[str, Any]:
        body = b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )
        return json.loads(body)


async def call(
    app: FastAPI,
    method: str,
    path: str,
    headers: dict[str, str],
    chunks: Iterator[bytes] = iter(()),
) -> Sent:
    """One request through the app as a server hands it over; ``chunks`` are the body as it
    arrives (pulled only when the app asks for more)."""
    sent = Sent()
    pending = list(chunks) if not hasattr(chunks, "__next__") else None
    source = iter(pending) if pending is not None else chunks
    upcoming = next(source, None)

    async def receive() -> dict[str, Any]:
        nonlocal upcoming
        if upcoming is None:
            return {"type": "http.disconnect"}
        chunk, upcoming = upcoming, next(source, None)
        sent.chunks_taken += 1
        return {"type": "http.request", "body": chunk, "more_body": upcoming is not None}

    async def send(message: dict[str, Any]) -> None:
        sent.messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    await app(scope, receive, send)
    return sent


def megabytes(count: int) -> Iterator[bytes]:
    """A multipart upload of one ``count`` MB file, arriving a MB at a time."""
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    chunk = b"x" * MB
    for _ in range(count):
        yield chunk


UPLOAD = {"host": "localhost:8000", "content-type": "multipart/form-data; boundary=b"}


# --- safe by default ----------------------------------------------------------------------


def test_listening_beyond_loopback_without_keys_is_refused_saying_what_to_set() -> None:
    with pytest.raises(ExposureRefused) as refused:
        Exposure.of(Settings(), "0.0.0.0", keys_on=False)

    for what in ("API_KEYS", "SWEEDLE_HOST", "ALLOW_ANONYMOUS_NETWORK"):
        assert what in refused.value.message


def test_open_access_asked_for_is_allowed_and_warned_about() -> None:
    exposure = Exposure.of(Settings(allow_anonymous_network=True), "0.0.0.0", keys_on=False)

    assert exposure.warning() is not None and "0.0.0.0" in exposure.warning()
    assert Exposure.of(Settings(), "0.0.0.0", keys_on=True).warning() is None
    assert Exposure.of(Settings(), "127.0.0.1", keys_on=False).warning() is None
    assert Exposure.of(Settings(), "::1", keys_on=False).warning() is None


# --- Host and Origin -------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST"])
async def test_the_servers_own_names_pass(host: str) -> None:
    sent = await call(app_with(), "GET", "/api/generation/queue/nonexistent", {"host": host})

    assert sent.status == 404  # routed: the name passed


async def test_a_rebound_name_is_refused() -> None:
    """A page on evil.example whose name now resolves to 127.0.0.1 (DNS rebinding)."""
    sent = await call(app_with(), "GET", "/api/assets", {"host": "evil.example:8000"})

    assert sent.status == 400 and sent.json["error"] == "host_not_allowed"
    assert "ALLOWED_HOSTS" in sent.json["detail"]


async def test_allowed_hosts_adds_a_name() -> None:
    app = app_with(allowed_hosts=["sweedle.studio.example"])

    sent = await call(app, "GET", "/api/generation/queue/x", {"host": "sweedle.studio.example"})

    assert sent.status == 404


@pytest.mark.parametrize("method", ["POST", "PATCH", "DELETE"])
async def test_a_state_change_from_another_sites_page_is_refused(method: str) -> None:
    headers = {"host": "localhost:8000", "origin": "https://evil.example"}

    sent = await call(app_with(), method, "/api/assets/abc", headers)

    assert sent.status == 403 and sent.json["error"] == "origin_not_allowed"


async def test_the_servers_own_pages_and_cors_origins_may_change_things() -> None:
    app = app_with(cors_origins=["https://studio.example"])
    for origin in ("http://localhost:8000", "https://studio.example"):
        headers = {"host": "localhost:8000", "origin": origin}

        sent = await call(app, "DELETE", "/api/generation/jobs/none-such", headers)

        assert sent.status != 403, (origin, sent.json)


async def test_reading_from_another_origin_is_left_to_cors() -> None:
    headers = {"host": "localhost:8000", "origin": "https://evil.example"}

    sent = await call(app_with(), "GET", "/api/generation/queue/x", headers)

    assert sent.status == 404  # a browser withholds the answer: no CORS header for it


def test_a_websocket_from_another_sites_page_is_refused() -> None:
    client = TestClient(app_with())
    headers = {"host": "localhost:8000", "origin": "https://evil.example"}
    with (
        client.websocket_connect("/ws/progress", headers=headers) as ws,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        assert ws.receive_json()["error"] == "origin_not_allowed"
        ws.receive_json()

    assert closed.value.code == 4403


# --- bounded before any work --------------------------------------------------------------------


async def test_without_a_key_a_huge_upload_is_refused_before_any_of_it_is_read() -> None:
    app = app_with(api_keys=SecretStr(KEY))
    headers = {**UPLOAD, "content-length": str(200 * MB)}

    sent = await call(app, "POST", "/api/generation/image-to-3d", headers, megabytes(200))

    assert sent.status == 401 and sent.chunks_taken == 0


async def test_a_declared_length_over_the_limit_is_a_413_before_any_of_it_is_read() -> None:
    app = app_with(api_keys=SecretStr(KEY))
    headers = {**UPLOAD, "x-api-key": KEY, "content-length": str(200 * MB)}

    sent = await call(app, "POST", "/api/generation/image-to-3d", headers, megabytes(200))

    assert sent.status == 413 and sent.chunks_taken == 0
    assert sent.json["error"] == "payload_too_large" and "MAX_UPLOAD_MB" in sent.json["detail"]


async def test_an_upload_that_does_not_say_its_size_is_a_411_before_any_of_it_is_read() -> None:
    app = app_with(api_keys=SecretStr(KEY))
    headers = {**UPLOAD, "x-api-key": KEY}

    sent = await call(app, "POST", "/api/generation/image-to-3d", headers, megabytes(200))

    assert sent.status == 411 and sent.chunks_taken == 0
    assert "Content-Length" in sent.json["detail"]


async def test_a_body_streamed_past_its_limit_is_cut_off() -> None:
    """A JSON body sent in chunks, with no Content-Length: read until it passes
    MAX_REQUEST_KB, then a 413; the rest of the 200 MB is never read."""
    app = app_with(api_keys=SecretStr(KEY), max_request_kb=256)
    headers = {"host": "localhost:8000", "x-api-key": KEY, "content-type": "application/json"}
    chunks = (b"x" * 64 * 1024 for _ in range(3200))

    sent = await call(app, "PATCH", "/api/assets/abc", headers, chunks)

    assert sent.status == 413 and "MAX_REQUEST_KB" in sent.json["detail"]
    assert sent.chunks_taken <= 256 // 64 + 1  # 64 KB chunks read, of 3,200
    assert [m["type"] for m in sent.messages].count("http.response.start") == 1


async def test_a_json_body_over_max_request_kb_is_a_413() -> None:
    headers = {"host": "localhost:8000", "content-type": "application/json"}
    body = iter([b'{"name": "' + b"x" * 300 * 1024 + b'"}'])

    sent = await call(app_with(max_request_kb=256), "PATCH", "/api/assets/abc", headers, body)

    assert sent.status == 413 and "MAX_REQUEST_KB" in sent.json["detail"]


# --- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [",", " , ", ",,,"])
def test_api_keys_that_list_no_key_are_an_error_not_an_open_api(value: str) -> None:
    with pytest.raises(ValueError, match="API_KEYS is set but holds no key"):
        Settings(api_keys=SecretStr(value))


def test_a_short_key_is_refused_without_being_shown() -> None:
    with pytest.raises(ValueError) as refused:
        Settings(admin_api_keys=SecretStr(f"{KEY},tiny-key"))

    assert "ADMIN_API_KEYS holds 1 key(s) shorter than 16" in str(refused.value)
    assert "tiny-key" not in str(refused.value) and KEY not in str(refused.value)


# --- errors that say enough and no more ---------------------------------------------------------


def test_an_unexpected_error_is_a_500_without_its_text_and_with_the_logged_id(caplog) -> None:
    """Without Ray the queue is missing: the queue status route fails on an AttributeError."""
    client = TestClient(app_with(), raise_server_exceptions=False)

    response = client.get("/api/generation/queue/status", headers={"host": "localhost"})

    body = response.json()
    assert response.status_code == 500 and body["error"] == "internal"
    assert "AttributeError" not in response.text and "NoneType" not in response.text
    assert response.headers["x-request-id"] == body["request_id"]
    logged = [r for r in caplog.records if body["request_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback is in the log


def test_every_answer_carries_a_request_id_the_clients_own_when_plain() -> None:
    client = TestClient(app_with())
    own = client.get("/api/x", headers={"host": "localhost", "x-request-id": "studio-42.a"})
    made = client.get("/api/x", headers={"host": "evil.example"})
    odd = client.get("/api/x", headers={"host": "localhost", "x-request-id": "a b\\c"})

    assert own.headers["x-request-id"] == "studio-42.a"
    assert len(made.headers["x-request-id"]) == 32  # refusals too
    assert odd.headers["x-request-id"] != "a b\\c"


async def test_a_tag_filter_longer_than_any_asset_can_match_is_a_422_not_a_500() -> None:
    query = "&".join(f"tags=t{i}" for i in range(2000))
    client = TestClient(app_with(), raise_server_exceptions=False)

    response = client.get(f"/api/assets?{query}", headers={"host": "localhost"})

    assert response.status_code == 422 and "tags" in response.json()["detail"]
    assert "SELECT" not in response.text


async def test_with_any_host_allowed_only_cors_origins_may_change_things() -> None:
    """ALLOWED_HOSTS=["*"] lets a rebound name in: its page's Origin then matches its Host,
    which proves nothing; only CORS_ORIGINS count."""
    app = app_with(allowed_hosts=["*"], cors_origins=["https://studio.example"])
    rebound = {"host": "evil.example:8000", "origin": "http://evil.example:8000"}
    studio = {"host": "sweedle.example", "origin": "https://studio.example"}

    refused = await call(app, "DELETE", "/api/generation/jobs/none-such", rebound)
    allowed = await call(app, "DELETE", "/api/generation/jobs/none-such", studio)

    assert refused.status == 403 and allowed.status != 403


def test_a_refusal_reaches_an_allowed_page_with_its_cors_headers() -> None:
    """The page can read why (401, 413) instead of seeing a network error."""
    client = TestClient(app_with(api_keys=SecretStr(KEY), cors_origins=["https://studio.example"]))

    response = client.get(
        "/api/assets", headers={"host": "localhost", "origin": "https://studio.example"}
    )

    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "https://studio.example"


# --- fair sharing ---------------------------------------------------------------------------------


async def test_priority_high_is_a_scope_of_its_own() -> None:
    """A read-write key may submit, but not ahead of everyone: priority=high needs the
    `priority` scope (admin keys have it; a keys file can grant it)."""
    from sweedle_core.access.keys import Caller
    from sweedle_core.errors import Forbidden
    from sweedle_core.jobs.intake import Intake
    from sweedle_core.params import Priority

    intake = Intake.__new__(Intake)  # admit needs no store for a caller without limits
    writer = Caller("studio-a", frozenset({"read", "write"}))
    trusted = Caller("producer", frozenset({"read", "write", "priority"}))

    with pytest.raises(Forbidden, match="'priority' scope"):
        await intake.admit(writer, Priority.HIGH)
    await intake.admit(writer, Priority.NORMAL)
    await intake.admit(trusted, Priority.HIGH)
    await intake.admit(Caller.open(), Priority.HIGH)  # no keys: a service on your own machine


def test_feeds_are_capped_per_caller_and_in_all() -> None:
    from sweedle_core.access.limits import FeedSlots
    from sweedle_core.errors import RateLimited

    feeds = FeedSlots(total=3, per_client=2)
    feeds.take("alice")
    feeds.take("alice")
    with pytest.raises(RateLimited, match="MAX_FEEDS_PER_CLIENT"):
        feeds.take("alice")
    feeds.take("bob")
    with pytest.raises(RateLimited, match="MAX_FEEDS"):
        feeds.take("carol")
    feeds.give_back("alice")
    feeds.take("carol")


def test_thumbnail_sizes_come_from_a_small_set() -> None:
    from pydantic import ValidationError

    from sweedle_core.schemas import ThumbnailRequest

    assert ThumbnailRequest(size=512).size == 512
    for odd in (100, 2000, 4096):
        with pytest.raises(ValidationError):
            ThumbnailRequest(size=odd)


async def test_api_exports_run_one_at_a_time_and_leave_the_pool_to_the_jobs() -> None:
    """API_EXPORT_CONCURRENCY (1): a second API export waits in the ingress until the first
    is done, instead of taking another of the pool's slots from the jobs' exports."""
    import asyncio
    import types

    from deployments.http.services import ApiExports

    running, most, started, release = 0, 0, asyncio.Event(), asyncio.Event()

    async def thumbnail(asset_id: str, size: int) -> str:
        nonlocal running, most
        running += 1
        most = max(most, running)
        started.set()
        await release.wait()
        running -= 1
        return f"{asset_id}@{size}"

    pool = types.SimpleNamespace(thumbnail=types.SimpleNamespace(remote=thumbnail))
    exports = ApiExports(pool, None, concurrency=1)

    calls = [asyncio.ensure_future(exports.call("thumbnail", f"a{i}", 128)) for i in range(3)]
    await started.wait()  # the first runs; the others wait at the gate
    release.set()

    assert await asyncio.gather(*calls) == ["a0@128", "a1@128", "a2@128"] and most == 1
