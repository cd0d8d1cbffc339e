"""Deleting an asset: its running job stopped first, then its rows, then every file.

The rows go in one transaction that also records the asset's files as due for removal, so the
asset is gone from the API at once; the files are removed next by a sweep, which also runs when
the queue starts and on every reconcile. If the store fails part-way the record stays for the
next sweep; an upload whose asset's rows were never created is swept the same way. Files an
engine bundle wrote into a project on the server belong to that project and are left there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from sweedle_core.db.models import Asset
from sweedle_core.db.removals import Claim
from sweedle_core.db.store import Store
from sweedle_core.errors import JobStillRunning, SweedleError
from sweedle_core.storage import Storage

log = logging.getLogger(__name__)

StopJob = Callable[[str], Awaitable[bool]]


async def remove_asset(asset: Asset, store: Store, storage: Storage, stop_job: StopJob) -> None:
    """Delete ``asset``; ``stop_job(job_id)`` cancels a job and says whether it has ended."""
    for job_id in await store.library.active_job_ids(asset.id):
        if not await stop_job(job_id):
            raise JobStillRunning(
                f"job {job_id} of asset {asset.id} was cancelled but has not stopped yet; "
                "delete again in a moment"
            )
    await store.library.delete(asset.id)
    if (claim := await store.removals.claim(asset.id)) is not None:
        await _remove(store, storage, claim)


async def sweep_removals(store: Store, storage: Storage) -> int:
    """Remove the files of every due removal; returns how many prefixes were emptied."""
    await asyncio.to_thread(storage.tidy)
    removed = 0
    claims = await store.removals.claim_due()
    for index, claim in enumerate(claims):
        if not await _remove(store, storage, claim):
            for later in claims[index + 1 :]:  # the store is failing: the next sweep goes on
                await store.removals.release(later.prefix)
            break
        removed += 1
    return removed


async def _remove(store: Store, storage: Storage, claim: Claim) -> bool:
    try:
        await asyncio.to_thread(storage.delete_prefix, claim.prefix)
    except SweedleError as exc:
        log.warning("files of %s not removed yet (the sweep tries again): %s", claim.prefix, exc)
        await store.removals.release(claim.prefix)
        return False
    await store.removals.removed(claim)
    return True
