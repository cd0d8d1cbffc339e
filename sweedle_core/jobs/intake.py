"""Taking a job in: the rules a submission meets before the queue hears of it.

An Idempotency-Key replays the job its first request made (and refuses another request under
it); a key's waiting-jobs limit is checked; an upload is stored and the asset's rows created
all or nothing: the upload is recorded for removal before its file is written, and the
transaction that creates the rows drops that record, so a file whose rows never came is swept
(`asset_removal`) and a row never names a file that was not stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from sweedle_core.access.keys import PRIORITY, Caller
from sweedle_core.access.limits import waiting_jobs_exceeded
from sweedle_core.db.models import GenerationJob, new_id
from sweedle_core.db.removals import UPLOAD_GRACE, UploadSwept
from sweedle_core.db.store import Store
from sweedle_core.errors import IdempotencyConflict, InvalidInput, StorageUnavailable
from sweedle_core.idempotency import Idempotency, IdempotencyTaken
from sweedle_core.params import VIEWS, GenerationParams, Priority
from sweedle_core.storage import Storage
from sweedle_core.storage.layout import input_key, view_input_key


@dataclass(frozen=True)
class NewJob:
    """What a submission asks for, once its options are settled."""

    name: str
    params: GenerationParams
    priority: Priority
    caller: Caller
    webhook_url: str | None = None
    original_filename: str | None = None
    prompt: str | None = None  # a text-to-3d job: its image is painted later
    root_path: str = ""  # the path the request came in under (its webhook's links start so)


@dataclass(frozen=True)
class Taken:
    """The job a submission made, or (``replayed``) the one its Idempotency-Key made before."""

    job: GenerationJob
    replayed: bool = False


class Intake:
    def __init__(
        self,
        store: Store,
        storage: Storage,
        generator: str,
        idempotency_ttl: timedelta,
        storage_timeout: timedelta = timedelta(minutes=1),
    ) -> None:
        self.store = store
        self.storage = storage
        self.generator = generator  # the backend named on every new asset
        self.idempotency_ttl = idempotency_ttl
        # An upload is swept only once it cannot still be on its way to the store.
        self.upload_grace = max(UPLOAD_GRACE, 4 * storage_timeout)

    async def replay(self, once: Idempotency | None) -> Taken | None:
        """The first job of an Idempotency-Key, if the key was used before with this request;
        `IdempotencyConflict` if it was used with another one."""
        if once is None:
            return None
        found = await self.store.idempotent_job(once.record_id, self.idempotency_ttl)
        if found is None:
            return None
        request_hash, job = found
        if request_hash != once.request_hash:
            raise IdempotencyConflict(
                "this Idempotency-Key was used for a different request (another file or other "
                f"options) which made job {job.id}; use a new key for a new request"
            )
        return Taken(job, replayed=True)

    async def admit(self, caller: Caller, priority: Priority) -> None:
        """Refuses a submission the key may not make: priority high without the ``priority``
        scope (`Forbidden`: it would jump everyone's queue), or one over the key's limit of
        waiting jobs (`RateLimited`)."""
        if priority is Priority.HIGH:
            caller.require(PRIORITY)
        await self.check_waiting(caller)

    async def check_waiting(self, caller: Caller) -> None:
        """`RateLimited` when the key's waiting jobs are at its limit: the early answer,
        before any upload is stored. The job's own insert checks again in the same
        transaction (`Store.create_job`), so racing submissions cannot all pass."""
        if caller.max_waiting_jobs:
            waiting = await self.store.library.waiting_jobs(caller.owner)
            waiting_jobs_exceeded(waiting, caller.max_waiting_jobs)

    async def take_image(
        self, new: NewJob, data: bytes, image_format: str, once: Idempotency | None
    ) -> Taken:
        """Store the upload and create its asset and job, all or nothing."""
        return await self.take_views(new, {"front": (data, image_format)}, once)

    async def take_views(
        self, new: NewJob, uploads: Mapping[str, tuple[bytes, str]], once: Idempotency | None
    ) -> Taken:
        """A submission of one photo or several: ``uploads`` maps each view (``front``
        required) to its bytes and image format. Every photo is stored, then the asset and job
        are created, all or nothing."""
        unknown = sorted(set(uploads) - set(VIEWS))
        if unknown or "front" not in uploads:
            raise InvalidInput(
                f"views are {', '.join(VIEWS)}, front required; got {', '.join(uploads)}"
            )
        asset_id = new_id()
        keys = {
            view: input_key(asset_id, fmt)
            if view == "front"
            else view_input_key(asset_id, view, fmt)
            for view, (_, fmt) in uploads.items()
        }
        await self.store.removals.expect_upload(asset_id, self.upload_grace)  # if no rows come
        await asyncio.gather(
            *(
                asyncio.to_thread(self.storage.put, keys[v], data)
                for v, (data, _) in uploads.items()
            )
        )
        views = {view: key for view, key in keys.items() if view != "front"}
        try:
            job = await self._create(
                new, asset_id, keys["front"], once, upload_recorded=True, views=views
            )
        except IdempotencyTaken:
            return await self._replay_raced(once)  # its files: swept after the grace
        except UploadSwept:
            raise StorageUnavailable(
                "the upload took longer than its grace to be recorded and was removed; send it "
                "again"
            ) from None
        return Taken(job)

    async def take_text(self, new: NewJob, once: Idempotency | None) -> Taken:
        """Create a text-to-3d job's asset and job; its image is painted when it is prepared
        (and the asset names it when the job completes)."""
        try:
            job = await self._create(new, new_id(), None, once)
        except IdempotencyTaken:
            return await self._replay_raced(once)
        return Taken(job)

    async def _create(
        self,
        new: NewJob,
        asset_id: str,
        input_path: str | None,
        once: Idempotency | None,
        upload_recorded: bool = False,
        views: dict[str, str] | None = None,
    ) -> GenerationJob:
        return await self.store.create_job(
            name=new.name,
            params=new.params,
            priority=new.priority,
            original_filename=new.original_filename,
            input_path=input_path,
            input_views=views,
            asset_id=asset_id,
            generator=self.generator,
            prompt=new.prompt,
            owner=new.caller.owner,
            webhook_url=new.webhook_url,
            root_path=new.root_path,
            idempotency=once,
            upload_recorded=upload_recorded,
            max_waiting=new.caller.max_waiting_jobs,
        )

    async def _replay_raced(self, once: Idempotency | None) -> Taken:
        """A request with the same key was recorded while this one was being taken in."""
        assert once is not None
        replayed = await self.replay(once)
        if replayed is None:
            raise IdempotencyConflict("this Idempotency-Key is being used; try again")
        return replayed
