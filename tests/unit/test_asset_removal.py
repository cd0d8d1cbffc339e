"""Deleting an asset: all of it (rows and files) or, when something fails, none of it."""

from __future__ import annotations

import pytest

from sweedle_core.asset_removal import remove_asset
from sweedle_core.db.models import new_id
from sweedle_core.errors import AssetNotFound, JobStillRunning
from sweedle_core.params import GenerationParams, Priority
from sweedle_core.storage import Storage


@pytest.fixture
def storage(tmp_path):
    return Storage(tmp_path / "files").ensure()


async def asset_with_files(store, storage):  # type: ignore[no-untyped-def]
    asset_id = new_id()
    job = await store.create_job(
        name="chair",
        params=GenerationParams(),
        priority=Priority.NORMAL,
        original_filename="x.png",
        input_path=f"{asset_id}/input.png",
        asset_id=asset_id,
    )
    for name in ("input.png", "model.glb", "exports/lod1/model.glb", "exports/unity.zip"):
        storage.write_bytes(f"{asset_id}/{name}", b"x")
    return job, await store.library.get(asset_id, None)


async def test_rows_and_every_file_go_after_the_running_job_stopped(store, storage):
    job, asset = await asset_with_files(store, storage)
    asked: list[str] = []

    async def stop_job(job_id: str) -> bool:
        asked.append(job_id)
        return True

    await remove_asset(asset, store, storage, stop_job)
    assert asked == [job.id]  # the active job was stopped first
    assert list(storage.root.iterdir()) == []
    with pytest.raises(AssetNotFound):
        await store.library.get(asset.id, None)


async def test_a_job_that_will_not_stop_leaves_everything_in_place(store, storage):
    _, asset = await asset_with_files(store, storage)

    async def stuck(_: str) -> bool:
        return False

    with pytest.raises(JobStillRunning):
        await remove_asset(asset, store, storage, stuck)
    assert (storage.asset_dir(asset.id) / "model.glb").is_file()
    assert (await store.library.get(asset.id, None)).id == asset.id


async def test_files_come_back_when_the_rows_cannot_be_deleted(store, storage, monkeypatch):
    _, asset = await asset_with_files(store, storage)

    async def stopped(_: str) -> bool:
        return True

    async def broken(_: str) -> bool:
        raise ConnectionError("database went away")

    monkeypatch.setattr(store.library, "delete", broken)
    with pytest.raises(ConnectionError):
        await remove_asset(asset, store, storage, stopped)
    assert sorted(p.name for p in storage.root.iterdir()) == [asset.id]
    assert (storage.asset_dir(asset.id) / "exports" / "unity.zip").is_file()
