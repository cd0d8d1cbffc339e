"""Deleting an asset: its rows at once, every file then or, when the store fails, by the sweep;
and an upload whose rows never came is swept too. Nothing is orphaned for ever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from sweedle_core.asset_removal import remove_asset, sweep_removals
from sweedle_core.db.models import StorageRemoval, new_id, utcnow
from sweedle_core.db.removals import UploadSwept
from sweedle_core.errors import AssetNotFound, JobStillRunning, StorageUnavailable
from sweedle_core.params import GenerationParams, Priority
from sweedle_core.storage import LocalStorage

FILES = ("input.png", "model.glb", "exports/lod1/model.glb", "exports/unity.zip")


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "files")


async def create_rows(store, asset_id: str, upload_recorded: bool = False):  # type: ignore[no-untyped-def]
    """The asset's and its job's rows, as the intake creates them for an upload."""
    return await store.create_job(
        name="chair",
        params=GenerationParams(),
        priority=Priority.NORMAL,
        original_filename="x.png",
        input_path=f"{asset_id}/input.png",
        asset_id=asset_id,
        upload_recorded=upload_recorded,
    )


async def asset_with_files(store, storage):  # type: ignore[no-untyped-def]
    asset_id = new_id()
    job = await create_rows(store, asset_id)
    for name in FILES:
        storage.put(f"{asset_id}/{name}", b"x")
    return job, await store.library.get(asset_id, None)


async def stopped(_: str) -> bool:
    return True


async def test_rows_and_every_file_go_after_the_running_job_stopped(store, storage):
    job, asset = await asset_with_files(store, storage)
    asked: list[str] = []

    async def stop_job(job_id: str) -> bool:
        asked.append(job_id)
        return True

    await remove_asset(asset, store, storage, stop_job)
    assert asked == [job.id]  # the active job was stopped first
    assert storage.list(asset.id) == []
    assert [p for p in storage.root.iterdir() if not p.name.startswith(".")] == []
    with pytest.raises(AssetNotFound):
        await store.library.get(asset.id, None)
    assert await store.removals.pending() == [asset.id]  # looked at once more, later
    assert await sweep_removals(store, storage) == 0  # not due again yet


async def test_a_job_that_will_not_stop_leaves_everything_in_place(store, storage):
    _, asset = await asset_with_files(store, storage)

    async def stuck(_: str) -> bool:
        return False

    with pytest.raises(JobStillRunning):
        await remove_asset(asset, store, storage, stuck)
    assert storage.list(asset.id) == sorted(f"{asset.id}/{name}" for name in FILES)
    assert (await store.library.get(asset.id, None)).id == asset.id


async def test_files_stay_with_their_rows_when_the_rows_cannot_be_deleted(
    store, storage, monkeypatch
):
    _, asset = await asset_with_files(store, storage)

    async def broken(_: str) -> bool:
        raise ConnectionError("database went away")

    monkeypatch.setattr(store.library, "delete", broken)
    with pytest.raises(ConnectionError):
        await remove_asset(asset, store, storage, stopped)
    assert storage.list(asset.id) == sorted(f"{asset.id}/{name}" for name in FILES)


async def test_a_store_outage_leaves_the_asset_gone_and_the_sweep_removes_its_files(
    store, storage, monkeypatch
):
    _, asset = await asset_with_files(store, storage)
    real_delete = storage.delete_prefix

    def down(prefix: str) -> None:
        raise StorageUnavailable("the store is down")

    monkeypatch.setattr(storage, "delete_prefix", down)
    await remove_asset(asset, store, storage, stopped)  # the user's delete succeeds
    with pytest.raises(AssetNotFound):
        await store.library.get(asset.id, None)
    assert await sweep_removals(store, storage) == 0  # still down: kept for the next sweep
    assert len(storage.list(asset.id)) == len(FILES)

    monkeypatch.setattr(storage, "delete_prefix", real_delete)
    assert await sweep_removals(store, storage) == 1
    assert storage.list(asset.id) == []


async def test_an_upload_whose_rows_never_came_is_swept_after_its_grace(store, storage):
    abandoned, taken_in = new_id(), new_id()
    for prefix in (abandoned, taken_in):
        await store.removals.expect_upload(prefix, timedelta(0))
        storage.put(f"{prefix}/input.png", b"x")
    # The second upload's rows were created: its file is the asset's.
    await create_rows(store, taken_in, upload_recorded=True)
    assert await sweep_removals(store, storage) == 1
    assert storage.list(abandoned) == []
    assert storage.list(taken_in) == [f"{taken_in}/input.png"]


async def test_an_upload_a_sweep_claimed_cannot_become_an_asset(store, storage):
    prefix = new_id()
    await store.removals.expect_upload(prefix, timedelta(0))  # its grace ran out
    storage.put(f"{prefix}/input.png", b"x")
    claim = await store.removals.claim(prefix)  # a sweeper has it, between its look and delete
    assert claim is not None

    with pytest.raises(UploadSwept):
        await create_rows(store, prefix, upload_recorded=True)
    with pytest.raises(AssetNotFound):  # no row names the file the sweeper removes
        await store.library.get(prefix, None)


async def test_a_second_look_removes_what_a_late_write_left(store, storage):
    _, asset = await asset_with_files(store, storage)
    await remove_asset(asset, store, storage, stopped)
    storage.put(f"{asset.id}/exports/thumbnail_512.png", b"an export that was under way")

    async with store.sessions.begin() as session:  # ten minutes later
        await session.execute(
            update(StorageRemoval).values(not_before=utcnow() - timedelta(seconds=1))
        )
    assert await sweep_removals(store, storage) == 1
    assert storage.list(asset.id) == []
    assert await store.removals.pending() == []  # two looks: forgotten


async def test_an_upload_still_being_taken_in_is_not_swept(store, storage):
    prefix = new_id()
    await store.removals.expect_upload(prefix)  # the default grace: minutes
    storage.put(f"{prefix}/input.png", b"x")
    assert await sweep_removals(store, storage) == 0
    assert storage.list(prefix) == [f"{prefix}/input.png"]
