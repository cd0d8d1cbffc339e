"""The library through the app, without Ray: pages by cursor, the totals' kind, and edits and
paging requests refused with a named 4xx."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sweedle_core.db import paging
from sweedle_core.db.models import Asset, utcnow
from tests.conftest import drawn_image
from tests.cursors import forged


def add_assets(api, names: list[str]) -> None:  # type: ignore[no-untyped-def]
    """Completed assets named ``names``, a second apart, oldest first, straight into the
    app's database."""
    start = utcnow() - timedelta(hours=1)

    async def add() -> None:
        async with api.services.store.sessions.begin() as session:
            session.add_all(
                Asset(
                    name=name,
                    status="completed",
                    vertex_count=i % 7 or None,
                    created_at=start + timedelta(seconds=i),
                    generation_params={},
                    metadata_={},
                )
                for i, name in enumerate(names)
            )

    assert api.http.portal is not None
    api.http.portal.call(add)


def walk(client, **params) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every item of a list, followed by next_cursor, 7 at a time."""
    body = client.http.get("/api/assets", params={"page_size": 7, **params}).json()
    items = body["items"]
    while body["next_cursor"]:
        body = client.http.get(
            "/api/assets", params={"page_size": 7, "cursor": body["next_cursor"], **params}
        ).json()
        assert body["page"] is None and body["total"] == 40 and body["total_kind"] == "exact"
        items += body["items"]
    return items


@pytest.mark.parametrize("sort", ["created:desc", "name:asc", "vertex_count:desc"])
def test_cursors_walk_the_library_as_pages_do(api, client, sort):
    add_assets(api, [f"crate {i:02d}" for i in range(40)])
    sort_by, sort_order = sort.split(":")
    params = {"search": "crate", "sort_by": sort_by, "sort_order": sort_order}
    by_page = client.http.get("/api/assets", params={"page_size": 100, **params}).json()
    assert (by_page["total"], by_page["total_kind"], by_page["next_cursor"]) == (40, "exact", None)
    assert [a["id"] for a in walk(client, **params)] == [a["id"] for a in by_page["items"]]


def test_a_total_past_the_threshold_says_it_is_not_counted(api, client, monkeypatch):
    monkeypatch.setattr(paging, "TOTAL_EXACT_UP_TO", 25)
    add_assets(api, [f"crate {i:02d}" for i in range(40)])
    body = client.http.get("/api/assets", params={"page_size": 10}).json()
    assert (body["total"], body["total_kind"], body["pages"]) == (25, "more_than", 3)
    assert len(body["items"]) == 10 and body["next_cursor"]


def test_bad_edits_and_paging_requests_are_named_4xx(client):
    asset = client.submit_ok(drawn_image())  # pending: waits in the stand-in queue
    base = f"/api/assets/{asset['asset_id']}"
    for body, field in [
        ({"name": "  "}, "name"),
        ({"tags": ["a/b"]}, "tags"),
        ({"metadata": {"blob": "x" * 20_000}}, "metadata"),
        ({"owner": "me"}, "owner"),
    ]:
        response = client.http.patch(base, json=body)
        assert response.status_code == 422, response.text
        assert field in response.json()["detail"]
    assert client.http.post("/api/assets/tags", json={"name": "<b>"}).status_code == 422
    assert client.http.get("/api/assets", params={"sort_by": "size"}).status_code == 422

    for path in ("/api/assets", "/api/generation/jobs"):
        for params, code, problem in [
            ({"cursor": "x" * 3000}, "invalid_input", "cursor"),
            ({"cursor": "bm90IGEgY3Vyc29y"}, "invalid_cursor", "not one this server gave out"),
            ({"cursor": "bm90IGEgY3Vyc29y", "page": 1}, "invalid_cursor", "page or cursor"),
        ]:
            refused = client.http.get(path, params=params)
            assert refused.status_code == 422, (path, params, refused.text)
            assert refused.json()["error"] == code and problem in str(refused.json()["detail"])
    # A cursor given for one order is refused for another, saying which.
    client.submit_ok(drawn_image(64))
    cursor = client.http.get("/api/assets", params={"page_size": 1}).json()["next_cursor"]
    other = client.http.get("/api/assets", params={"cursor": cursor, "sort_by": "name"})
    assert other.status_code == 422 and "'created:desc', not 'name:desc'" in other.text
    elsewhere = client.http.get("/api/assets", params={"cursor": cursor, "search": "x"})
    assert elsewhere.status_code == 422 and "other filters" in elsewhere.text
    # A cursor a client edited: values its columns cannot hold are refused, not a 500.
    for keys in (["0001-01-01T00:00:00+05:00", "x"], [[1], "x"], [2**70, "x"], [None, "x"]):
        edited = client.http.get("/api/assets", params={"cursor": forged(cursor, keys)})
        assert edited.status_code == 422 and edited.json()["error"] == "invalid_cursor", keys


def test_job_history_pages_on_by_cursor(client):
    jobs = [client.submit_ok(drawn_image(48 + i))["job_id"] for i in range(5)]
    first = client.http.get("/api/generation/jobs", params={"page_size": 2}).json()
    assert (first["total"], first["total_kind"], first["page"]) == (5, "exact", 1)
    walked = [j["id"] for j in first["items"]]
    body = first
    while body["next_cursor"]:
        params = {"page_size": 2, "cursor": body["next_cursor"]}
        body = client.http.get("/api/generation/jobs", params=params).json()
        walked += [j["id"] for j in body["items"]]
    assert walked == jobs[::-1]  # newest first, each once
