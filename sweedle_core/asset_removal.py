"""Deleting an asset: its running job stopped first, then its rows and every file, or nothing.

An asset's files (upload, prepared image, meshes, LODs, formats, thumbnails, engine bundle zips)
all live in its folder. The folder is moved aside in one rename, the rows are deleted, then the
moved folder is removed; if the rows cannot be deleted the folder is put back. Files an engine
bundle wrote into a project on the server belong to that project and are left there.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable

from sweedle_core.db.models import Asset
from sweedle_core.db.store import Store
from sweedle_core.errors import JobStillRunning
from sweedle_core.storage import Storage

StopJob = Callable[[str], Awaitable[bool]]


async def remove_asset(asset: Asset, store: Store, storage: Storage, stop_job: StopJob) -> None:
    """Delete ``asset``; ``stop_job(job_id)`` cancels a job and says whether it has ended."""
    for job_id in await store.library.active_job_ids(asset.id):
        if not await stop_job(job_id):
            raise JobStillRunning(
                f"job {job_id} of asset {asset.id} was cancelled but has not stopped yet; "
                "delete again in a moment"
            )
    trash = await asyncio.to_thread(storage.trash_asset, asset.id)
    try:
        await store.library.delete(asset.id)
    except BaseException:
        if trash is not None:
            await asyncio.to_thread(storage.restore_asset, asset.id, trash)
        raise
    if trash is not None:
        await asyncio.to_thread(shutil.rmtree, trash, True)
