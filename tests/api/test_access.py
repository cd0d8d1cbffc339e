"""Who may use the app: every route tried without a key, with a wrong key, with a key outside
its scope and with another key's ids. The routes are enumerated from the app itself, so a new
route cannot slip through unguarded."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.websockets import WebSocketDisconnect

from deployments.http.app import create_app
from deployments.http.services import Services
from sweedle_core.config import Settings
from tests.app_settings import KEYS
from tests.conftest import drawn_image
from tests.serve.client import Sweedle

IMAGE = drawn_image(96)
# Open to anyone: the health check, and Studio's page and files (the page asks for a key).
OPEN = {"/health", "/", "/ui/", "/ui/assets/{name:path}"}
ZERO = "0" * 32


def _walk(routes) -> Iterator:  # type: ignore[no-untyped-def]
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router
        yield from _walk(inner.routes) if inner is not None else [route]


def app_routes() -> list[tuple[str, str]]:
    """(method, path) of every REST route and ("WS", path) of every WebSocket route."""
    app = create_app(Services.without_ray(Settings(database_url="sqlite+aiosqlite://")))
    found = []
    for route in _walk(app.router.routes):
        if isinstance(route, APIRoute):
            found += [(method, route.path) for method in sorted(route.methods)]
        elif isinstance(route, APIWebSocketRoute):
            found.append(("WS", route.path))
    return found


ROUTES = app_routes()
REST = [(m, p) for m, p in ROUTES if m != "WS" and p not in OPEN]
WITH_IDS = [(m, p) for m, p in REST if "{asset_id}" in p or "{job_id}" in p]


def key(name: str) -> str:
    return KEYS[name][0]


def fill(path: str, asset_id: str = ZERO, job_id: str = ZERO) -> str:
    path = path.replace("{asset_id}", asset_id).replace("{job_id}", job_id)
    return path.replace("{engine}", "unity")


def call(client: Sweedle, method: str, path: str):  # type: ignore[no-untyped-def]
    return client.http.request(method, path)


def test_the_routes_were_found():
    paths = {p for _, p in ROUTES}
    assert {"/api/assets", "/api/assets/{asset_id}", "/ws/progress", "/health"} <= paths
    assert len(REST) >= 20 and len(WITH_IDS) >= 12


@pytest.mark.parametrize(("method", "path"), REST, ids=[f"{m} {p}" for m, p in REST])
def test_every_route_refuses_a_missing_or_unknown_key(client, method, path):
    for caller in (client.as_key(None), client.as_key("swd_wrong"), client.as_key("")):
        response = call(caller, method, fill(path))
        assert response.status_code == 401, (caller.api_key, response.text)
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    bearer = client.as_key(None)
    bearer.http.headers["Authorization"] = "Bearer swd_wrong"
    assert call(bearer, method, fill(path)).status_code == 401


@pytest.mark.parametrize(("method", "path"), REST, ids=[f"{m} {p}" for m, p in REST])
def test_a_read_only_key_reads_but_never_writes(client, method, path):
    response = call(client.as_key(key("viewer")), method, fill(path))
    if method in ("GET", "HEAD") and not path.startswith("/api/admin/"):
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"


def test_a_bearer_token_is_a_key_too(client):
    bearer = client.as_key(None)
    bearer.http.headers["Authorization"] = f"Bearer {key('viewer')}"
    assert bearer.http.get("/api/assets").status_code == 200
    assert client.as_key(None).http.get("/health").status_code == 200  # the one open route


@pytest.fixture
def alices(client) -> dict:
    """An asset of alice's (and its job), still in the making."""
    return client.as_key(key("alice")).submit_ok(IMAGE, name="alice's chair")


@pytest.mark.parametrize(("method", "path"), WITH_IDS, ids=[f"{m} {p}" for m, p in WITH_IDS])
def test_another_keys_ids_are_not_found(client, alices, method, path):
    filled = fill(path, alices["asset_id"], alices["job_id"])
    response = call(client.as_key(key("bob")), method, filled)
    assert response.status_code == 404, response.text
    assert response.json()["error"] in ("asset_not_found", "job_not_found")


def test_a_key_sees_only_its_own_and_an_admin_sees_all(client, alices):
    bob, alice = client.as_key(key("bob")), client.as_key(key("alice"))
    bob.submit_ok(IMAGE, name="bob's table")  # another key's asset, for the lists to leave out
    mine = alice.http.get("/api/assets", params={"page_size": 100}).json()
    assert alices["asset_id"] in {a["id"] for a in mine["items"]}
    assert {a["owner"] for a in mine["items"]} == {"alice"}
    theirs = bob.http.get("/api/assets", params={"page_size": 100}).json()
    assert alices["asset_id"] not in {a["id"] for a in theirs["items"]}
    history = bob.http.get("/api/generation/jobs", params={"page_size": 100}).json()
    assert alices["job_id"] not in {j["id"] for j in history["items"]}
    assert client.http.get(f"/api/assets/{alices['asset_id']}").json()["owner"] == "alice"
    only_alice = client.http.get("/api/assets", params={"owner": "alice", "page_size": 100})
    assert {a["owner"] for a in only_alice.json()["items"]} == {"alice"}
    nosy = bob.http.get("/api/assets", params={"owner": "alice"}).json()
    assert nosy["total"] == 0  # a key that is not admin still sees only its own
    assert alice.job(alices["job_id"])["owner"] == "alice"


def test_the_feed_needs_a_key(api):
    for api_key in (None, "swd_wrong"):
        with api.feed(api_key) as ws:
            refusal = ws.receive_text()
            assert '"unauthorized"' in refusal
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
        assert closed.value.code == 4401


def test_the_admin_route_is_for_admin_keys_only(client):
    assert client.as_key(key("alice")).http.get("/api/admin/keys").status_code == 403
    listed = client.http.get("/api/admin/keys").json()
    assert {k["name"] for k in listed} == set(KEYS)
    fields = {"name", "scopes", "requests_per_minute", "max_waiting_jobs", "export_roots"}
    assert all(set(k) == fields for k in listed)
    roots = {k["name"]: k["export_roots"] for k in listed}
    assert roots["admin"] is None and roots["alice"][0].endswith("/projects/alice")


def test_requests_over_a_keys_rate_get_429_with_retry_after(client):
    limited = client.as_key(key("limited"))
    answers = [limited.http.get("/api/assets").status_code for _ in range(12)]
    assert answers[:8] == [200] * 8 and 429 in answers[8:]
    refused = limited.http.get("/api/assets")
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert client.http.get("/api/assets").status_code == 200  # other keys are not held back


def test_a_key_over_its_waiting_jobs_gets_429(client):
    capped = client.as_key(key("queue-capped"))
    capped.submit_ok(IMAGE)  # it waits (the CPU pool is busy)

    refused = capped.submit(IMAGE)

    assert refused.status_code == 429, refused.text
    assert re.search(r"1 job", refused.json()["detail"])
    assert int(refused.headers["retry-after"]) >= 1
    client.submit_ok(IMAGE)  # the limit is capped's alone


def test_cors_answers_the_configured_origin_only(client):
    def preflight(origin: str):  # type: ignore[no-untyped-def]
        return client.http.options(
            "/api/assets",
            headers={"Origin": origin, "Access-Control-Request-Method": "GET"},
        )

    allowed = preflight("http://studio.example")
    assert allowed.headers["access-control-allow-origin"] == "http://studio.example"
    assert "access-control-allow-origin" not in preflight("http://evil.example").headers


def test_health_without_a_key_says_only_whether_the_service_is_up_and_ready(client):
    anonymous = client.as_key(None).http.get("/health")
    detailed = client.http.get("/health").json()

    assert anonymous.status_code == 200
    assert set(anonymous.json()) == {"status", "ready"}, anonymous.json()
    assert anonymous.json()["ready"] is True and anonymous.json()["status"] == detailed["status"]
    assert "storage" in detailed and "exposure" in detailed  # paths and models: for keys only


def test_priority_high_needs_its_own_scope(client):
    alice = client.as_key(key("alice"))

    refused = alice.submit(IMAGE, priority="high")

    assert refused.status_code == 403 and "'priority' scope" in refused.json()["detail"]
    assert alice.submit(IMAGE, priority="normal").status_code == 202


def test_a_key_sees_other_keys_work_as_counts_only(api, client):
    """Which job each generator runs is for admin keys; the others see states and counts."""
    alice = client.as_key(key("alice"))

    theirs = alice.http.get("/api/generation/queue/status").json()
    everything = client.http.get("/api/generation/queue/status").json()

    assert theirs["generators"] and all("job_id" not in g for g in theirs["generators"].values())
    assert all("job_id" in g for g in everything["generators"].values())
    assert {"queue_depth", "active_jobs", "by_stage"} <= set(theirs)  # counts for both
    with api.feed(key("alice")) as feed:
        snapshot = feed.receive_json()
    assert all("job_id" not in g for g in snapshot["generators"].values())


def test_one_caller_cannot_hold_every_feed(api):
    """MAX_FEEDS_PER_CLIENT (20 by default): the 21st feed of one key is told why and closed
    with 4429; other keys' feeds go on."""
    with contextlib.ExitStack() as open_feeds:
        for _ in range(20):
            feed = open_feeds.enter_context(api.feed(key("alice")))
            assert feed.receive_json()["type"] == "queue_status"  # it holds its slot now
        with api.feed(key("alice")) as refused:
            told = json.loads(refused.receive_text())
            with pytest.raises(WebSocketDisconnect) as closed:
                refused.receive_text()
        with api.feed(key("bob")) as bobs:
            assert bobs.receive_json()["type"] == "queue_status"

    assert told["error"] == "rate_limited" and "MAX_FEEDS_PER_CLIENT" in told["detail"]
    assert closed.value.code == 4429
