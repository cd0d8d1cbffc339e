"""The store: jobs and assets in a real (SQLite) database, migrated by Alembic."""

from __future__ import annotations

import asyncio

import pytest

from sweedle_core.db.library import AssetQuery, JobQuery
from sweedle_core.db.models import new_id
from sweedle_core.db.store import Store
from sweedle_core.errors import AssetNotFound, JobNotFound, RateLimited
from sweedle_core.jobs.states import ACTIVE, JobStatus
from sweedle_core.params import GenerationParams, Priority


async def create(store: Store, name: str = "chair", **params: object):
    asset_id = new_id()
    return await store.create_job(
        name=name,
        params=GenerationParams(**params),
        priority=Priority.HIGH,
        original_filename="chair.png",
        input_path=f"{asset_id}/input.png",
        asset_id=asset_id,
    )


async def test_create_job_writes_the_asset_and_its_job(store):
    created = await create(store, output_format="obj", seed=7)

    job = await store.get_job(created.id)
    assert job.asset_id == created.asset_id
    assert (job.status, job.stage, job.priority) == ("pending", "queued", "high")
    assert (job.progress, job.attempts, job.error) == (0.0, 0, None)
    assert job.params == GenerationParams(output_format="obj", seed=7).model_dump()
    assert job.created_at is not None

    asset = await store.get_asset(created.asset_id)
    assert asset.name == "chair"
    assert asset.status == "pending"
    assert asset.original_filename == "chair.png"
    assert asset.input_path == f"{asset.id}/input.png"
    assert asset.model_format == "obj"
    assert asset.generation_params["seed"] == 7
    assert asset.model_path is None
    assert job.asset.id == asset.id  # the job comes with its asset


async def test_unknown_ids_raise_not_found(store):
    with pytest.raises(JobNotFound):
        await store.get_job("nope")
    with pytest.raises(AssetNotFound):
        await store.get_asset("nope")


async def test_job_history_shows_finished_and_updated_statuses(store):
    first, done, last = await create(store), await create(store), await create(store)
    await store.finish_job(done.id, 0, JobStatus.FAILED, {"error": "boom"}, {})
    await store.update_job(last.id, 0, status="processing", stage="generating")

    # As GET /jobs?status=... lists them.
    unfinished = await store.library.jobs(JobQuery(status=[s.value for s in ACTIVE]), None)
    assert {job.id for job in unfinished.items} == {first.id, last.id}
    failed = await store.library.jobs(JobQuery(status=["failed"]), None)
    assert [job.id for job in failed.items] == [done.id]
    assert (await store.library.jobs(JobQuery(), None)).total == 3


async def test_finish_job_finishes_once(store):
    job = await create(store)
    asset_fields = {
        "model_path": f"{job.asset_id}/model.glb",
        "thumbnail_path": f"{job.asset_id}/thumbnail.png",
        "vertex_count": 8,
        "face_count": 12,
    }

    assert await store.finish_job(job.id, 0, JobStatus.COMPLETED, {"progress": 1.0}, asset_fields)
    # A second, late ending (here a failure) changes nothing.
    assert not await store.finish_job(job.id, 0, JobStatus.FAILED, {"error": "late"}, {})

    row = await store.get_job(job.id)
    assert (row.status, row.progress, row.error) == ("completed", 1.0, None)
    assert row.completed_at is not None
    asset = await store.get_asset(job.asset_id)
    assert asset.status == "completed"
    assert asset.model_path == f"{job.asset_id}/model.glb"
    assert (asset.vertex_count, asset.face_count) == (8, 12)


async def test_finish_job_of_an_unknown_job_is_false(store):
    assert not await store.finish_job("nope", 0, JobStatus.CANCELLED, {}, {})


async def test_update_job_writes_active_jobs_but_never_finished_ones(store):
    job = await create(store)

    assert await store.update_job(job.id, 0, stage="generating", status="processing", progress=0.3)
    row = await store.get_job(job.id)
    assert (row.stage, row.status, row.progress) == ("generating", "processing", 0.3)

    await store.finish_job(job.id, 0, JobStatus.CANCELLED, {"message": "cancelled"}, {})
    assert not await store.update_job(
        job.id, 0, stage="exporting", status="processing", progress=0.9
    )
    row = await store.get_job(job.id)
    assert (row.stage, row.status, row.progress, row.message) == (
        "generating",
        "cancelled",
        0.3,
        "cancelled",
    )
    assert not await store.update_job("nope", 0, progress=0.5)


async def test_list_assets_pages_newest_first(store):
    ids = [(await create(store, name=f"asset {i}")).asset_id for i in range(5)]
    newest_first = ids[::-1]

    found = await store.library.find(AssetQuery(page=1, page_size=2), None)
    assert [a.id for a in found.items] == newest_first[:2]
    assert (found.total, found.pages) == (5, 3)

    found = await store.library.find(AssetQuery(page=3, page_size=2), None)
    assert [a.id for a in found.items] == newest_first[4:]
    assert (found.total, found.pages) == (5, 3)

    found = await store.library.find(AssetQuery(page=4, page_size=2), None)
    assert list(found.items) == []

    found = await store.library.find(AssetQuery(page=1, page_size=5), None)
    assert [a.id for a in found.items] == newest_first
    assert (found.total, found.pages) == (5, 1)


async def test_list_assets_of_an_empty_library_has_one_empty_page(store):
    found = await store.library.find(AssetQuery(), None)
    assert (list(found.items), found.total, found.pages) == ([], 0, 1)


async def test_a_keys_requests_per_minute_hold_across_ingress_replicas(store):
    """Two replicas (each its own pool of connections) racing on one database admit exactly the
    limit in a minute; the next minute starts afresh, and another key has its own count."""
    other = Store.from_url(store.engine.url.render_as_string(hide_password=False))
    minute = 60 * 29_000_000 + 5.0  # five seconds into a minute of the clock
    try:
        replicas = [store.request_counts, other.request_counts] * 15
        answers = await asyncio.gather(
            *(replica.count("studio-a", 12, now=minute) for replica in replicas),
            return_exceptions=True,
        )
        refused = [a for a in answers if isinstance(a, RateLimited)]
        assert len(refused) == 30 - 12 and answers.count(None) == 12
        assert refused[0].retry_after == 55  # when the next minute starts
        assert "'studio-a'" in refused[0].message and "12 requests per minute" in refused[0].message
        await other.request_counts.count("studio-b", 12, now=minute)
        await store.request_counts.count("studio-a", 12, now=minute + 60)
    finally:
        await other.close()
