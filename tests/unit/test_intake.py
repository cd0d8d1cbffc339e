"""Taking a job in: Idempotency-Key replays, the waiting-jobs limit, and the upload stored with
its rows or, in the end, not at all."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update

from sweedle_core.access.keys import SCOPES, Caller
from sweedle_core.asset_removal import sweep_removals
from sweedle_core.db.library import AssetQuery
from sweedle_core.db.models import StorageRemoval, utcnow
from sweedle_core.errors import (
    IdempotencyConflict,
    InvalidInput,
    RateLimited,
    StorageUnavailable,
)
from sweedle_core.idempotency import idempotency
from sweedle_core.jobs.intake import Intake, NewJob
from sweedle_core.params import GenerationParams, Priority
from sweedle_core.storage import LocalStorage

ALICE = Caller(name="alice", scopes=SCOPES, max_waiting_jobs=2)
PHOTO = b"\x89PNG the photo's bytes"


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "files")


@pytest.fixture
def intake(store, storage):
    return Intake(store, storage, "silhouette", idempotency_ttl=timedelta(hours=24))


def chair(caller: Caller = ALICE) -> NewJob:
    return NewJob(
        name="chair",
        params=GenerationParams(),
        priority=Priority.NORMAL,
        caller=caller,
        original_filename="chair.png",
    )


async def assets(store) -> list[str]:  # type: ignore[no-untyped-def]
    return [a.id for a in (await store.library.find(AssetQuery(), None)).items]


async def test_an_upload_is_stored_and_named_by_its_rows(store, storage, intake):
    taken = await intake.take_image(chair(), PHOTO, "PNG", None)

    assert not taken.replayed
    asset = await store.library.get(taken.job.asset_id, "alice")
    assert storage.get(asset.input_path) == PHOTO and asset.input_path.endswith("/input.png")
    assert (taken.job.owner, asset.generator) == ("alice", "silhouette")
    assert await store.removals.pending() == []  # the upload is the asset's: nothing to sweep


async def test_an_idempotency_key_replays_its_job_and_refuses_another_request(
    store, storage, intake
):
    once = idempotency("alice", "order-7", PHOTO, b"options")
    first = await intake.take_image(chair(), PHOTO, "PNG", once)

    again = await intake.replay(idempotency("alice", "order-7", PHOTO, b"options"))
    assert again is not None and again.replayed and again.job.id == first.job.id
    with pytest.raises(IdempotencyConflict, match=first.job.id):
        await intake.replay(idempotency("alice", "order-7", b"another photo", b"options"))
    assert await intake.replay(idempotency("bob", "order-7", PHOTO, b"options")) is None
    assert await assets(store) == [first.job.asset_id]


async def test_a_key_at_its_waiting_limit_is_told_to_wait(intake):
    for _ in range(2):
        await intake.check_waiting(ALICE)
        await intake.take_image(chair(), PHOTO, "PNG", None)
    with pytest.raises(RateLimited, match="limit is 2"):
        await intake.check_waiting(ALICE)
    await intake.check_waiting(Caller.open())  # no key, no limit


async def test_a_store_outage_leaves_no_rows(store, storage, intake, monkeypatch):
    def down(key: str, data: bytes) -> None:
        raise StorageUnavailable("cannot write: the bucket does not exist")

    monkeypatch.setattr(storage, "put", down)
    with pytest.raises(StorageUnavailable, match="bucket"):
        await intake.take_image(chair(), PHOTO, "PNG", None)
    assert await assets(store) == []


async def test_a_file_whose_rows_never_came_is_swept(store, storage, intake, monkeypatch):
    async def database_gone(**_: object) -> None:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(store, "create_job", database_gone)
    with pytest.raises(ConnectionError):
        await intake.take_image(chair(), PHOTO, "PNG", None)
    (prefix,) = await store.removals.pending()
    assert storage.list(prefix) == [f"{prefix}/input.png"]  # for now: the grace runs

    async with store.sessions.begin() as session:  # the grace has run out
        await session.execute(update(StorageRemoval).values(not_before=utcnow()))
    assert await sweep_removals(store, storage) == 1
    assert storage.list(prefix) == [] and await assets(store) == []


async def test_a_text_job_names_no_image_before_it_is_painted(store, intake):
    taken = await intake.take_text(
        NewJob("lamp", GenerationParams(), Priority.HIGH, ALICE, prompt="a brass lamp"), None
    )
    asset = await store.library.get(taken.job.asset_id, None)
    assert (asset.prompt, asset.source_type) == ("a brass lamp", "text")
    assert asset.input_path is None  # a row never names a file not stored yet


@pytest.mark.parametrize(
    "views", [{"left": (b"x", "PNG")}, {"front": (b"x", "PNG"), "../top": (b"x", "PNG")}]
)
async def test_a_multiview_submission_needs_a_front_and_known_views(store, intake, views):
    with pytest.raises(InvalidInput, match="front required"):
        await intake.take_views(chair(), views, None)
    assert await assets(store) == []
    assert await store.removals.pending() == [], "refused before anything was stored"


async def test_a_multiview_submission_stores_every_photo_and_the_asset_names_them(
    store, storage, intake
):
    uploads = {"front": (b"front-png", "PNG"), "left": (b"left-jpeg", "JPEG")}

    taken = await intake.take_views(chair(), uploads, None)

    job = await store.get_job(taken.job.id)
    asset_id = job.asset_id
    assert job.asset.input_path == f"{asset_id}/input.png"
    assert job.asset.input_views == {"left": f"{asset_id}/views/left.jpg"}
    assert storage.get(f"{asset_id}/input.png") == b"front-png"
    assert storage.get(f"{asset_id}/views/left.jpg") == b"left-jpeg"
    assert await store.removals.pending() == [], "the upload's record went with the rows"


async def test_racing_submissions_cannot_pass_the_waiting_limit_together(store, intake):
    """Eight submissions of one key at once, its limit 2: the count and the insert are one
    step in the database, so exactly two get in (SQLite and PostgreSQL alike); the others
    are told to wait, and leave no rows."""
    results = await asyncio.gather(
        *(intake.take_image(chair(), PHOTO, "PNG", None) for _ in range(8)),
        return_exceptions=True,
    )

    refused = [r for r in results if isinstance(r, RateLimited)]
    assert len(refused) == 6 and len(results) - len(refused) == 2, results
    assert len(await assets(store)) == 2


async def test_without_keys_the_jobs_waiting_at_once_are_bounded_too(store, intake):
    """MAX_WAITING_JOBS_ANONYMOUS: a service without keys bounds the jobs waiting at once for
    all its callers together (default 100; 2 here), atomically like a key's."""
    anonymous = Caller.open(max_waiting_jobs=2)
    results = await asyncio.gather(
        *(intake.take_image(chair(anonymous), PHOTO, "PNG", None) for _ in range(5)),
        return_exceptions=True,
    )

    assert sum(isinstance(r, RateLimited) for r in results) == 3, results
    with pytest.raises(RateLimited, match="limit is 2"):
        await intake.check_waiting(anonymous)
