"""Who may see what, where it needs the running app: a key's finished jobs and their events, and
its engine bundles on the export pool. The other access rules (every route without a key, with
a wrong one, outside its scope, with another key's ids) are tested without Ray, in
tests/api/test_access.py."""

from __future__ import annotations

import pytest

from tests.app_settings import KEYS
from tests.conftest import drawn_image

IMAGE = drawn_image(96)


def key(name: str) -> str:
    return KEYS[name][0]


@pytest.fixture(scope="module")
def alices(deployment) -> dict:
    """A completed asset of alice's (and its job)."""
    alice = deployment.client.as_key(key("alice"))
    with alice.feed() as feed:
        submitted = alice.submit_ok(IMAGE, name="alice's chair")
        final = feed.wait_finished({submitted["job_id"]})[submitted["job_id"]]
    assert final["type"] == "asset_ready", final
    return submitted


def test_the_feed_shows_a_key_only_its_own_jobs(client):
    alice, bob = client.as_key(key("alice")), client.as_key(key("bob"))
    with alice.feed() as alice_feed, bob.feed() as bob_feed:
        alices_job = alice.submit_ok(IMAGE)["job_id"]
        alice_feed.wait_finished({alices_job})
        bobs_job = bob.submit_ok(IMAGE)["job_id"]
        # Events come in order: once bob's feed shows his job, alice's events are long past.
        bob_feed.wait_for(lambda e: e.get("job_id") == bobs_job and e["type"] == "job_created")
        bob_feed.wait_finished({bobs_job})
    assert bob_feed.events_of(alices_job) == []
    assert {e["type"] for e in alice_feed.events_of(alices_job)} >= {"job_created", "asset_ready"}


def test_a_keys_engine_bundles_go_under_its_own_export_root(client, alices, deployment):
    alice = client.as_key(key("alice"))
    own = deployment.projects / "alice" / "game"
    own.mkdir(parents=True)
    (deployment.projects / "shared").mkdir()
    url = f"/api/export/{alices['asset_id']}/engine"

    written = alice.http.post(url, json={"engine": "godot", "project_path": "game"})
    assert written.status_code == 200, written.text
    paths = written.json()["written"]  # relative to her root
    assert paths and all(path.startswith("game/") for path in paths), paths
    assert list(own.rglob("*.glb"))
    # The service-wide root is not hers: only the admin (no roots of its own) writes there.
    shared = str(deployment.projects / "shared")
    refused = alice.http.post(url, json={"engine": "godot", "project_path": shared})
    assert refused.status_code == 403 and refused.json()["error"] == "unsafe_path"
    assert list((deployment.projects / "shared").iterdir()) == []
    admin = client.http.post(url, json={"engine": "godot", "project_path": shared})
    assert admin.status_code == 200, admin.text
