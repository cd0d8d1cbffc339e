"""The job coordinator: the queue, the dispatcher and the broadcaster, on a real SQLite database.

CPU pools are fakes the tests hold and release; a generator is simulated by calling `claim`,
`report_progress`, `generated` and `generation_failed`. Nothing sleeps: tests wait on the
coordinator's own events (each is announced after its database write) or on the fakes' queues.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

import pytest

from sweedle_core.db.claims import Renewal
from sweedle_core.db.library import JobQuery
from sweedle_core.db.models import new_id
from sweedle_core.db.store import Store
from sweedle_core.errors import (
    GenerationFailed,
    ImageRejected,
    JobFinished,
    JobNotFound,
    ShapeLost,
    StorageUnavailable,
    WorkerLost,
)
from sweedle_core.jobs.coordinator import JobCoordinator
from sweedle_core.jobs.events import Event
from sweedle_core.jobs.tickets import (
    ExportOutcome,
    ExportTicket,
    GenerateTicket,
    PrepareOutcome,
    PrepareTicket,
)
from sweedle_core.params import GenerationParams, Priority
from sweedle_core.storage import LocalStorage
from sweedle_core.storage.layout import shape_key

WAIT_S = 10.0  # safety net only: every wait below ends on an event long before this
PREPROCESS_S = 0.25
EXPORT_S = 0.5


class FakeWorkers:
    """The CPU pools. With ``hold_*`` a call waits until the test releases its job."""

    def __init__(self, *, hold_preprocess: bool = False, hold_export: bool = False) -> None:
        self.hold = {"preprocess": hold_preprocess, "export": hold_export}
        self.preprocess_tickets: list[PrepareTicket] = []
        self.export_tickets: list[ExportTicket] = []
        self.started: dict[str, asyncio.Queue[str]] = {
            "preprocess": asyncio.Queue(),
            "export": asyncio.Queue(),
        }
        self.failures: dict[tuple[str, str], Exception] = {}
        self.preprocessing = 0
        self.most_preprocessing = 0
        self._gates: defaultdict[tuple[str, str], asyncio.Event] = defaultdict(asyncio.Event)

    def release(self, kind: str, job_id: str) -> None:
        self._gates[kind, job_id].set()

    def fail(self, kind: str, job_id: str, exc: Exception) -> None:
        self.failures[kind, job_id] = exc

    async def next_started(self, kind: str) -> str:
        return await asyncio.wait_for(self.started[kind].get(), WAIT_S)

    async def preprocess(self, ticket: PrepareTicket) -> PrepareOutcome:
        self.preprocess_tickets.append(ticket)
        self.preprocessing += 1
        self.most_preprocessing = max(self.most_preprocessing, self.preprocessing)
        try:
            await self._pass("preprocess", ticket.job_id)
        finally:
            self.preprocessing -= 1
        return PrepareOutcome(background="rembg", seconds=PREPROCESS_S)

    async def export(self, ticket: ExportTicket) -> ExportOutcome:
        self.export_tickets.append(ticket)
        await self._pass("export", ticket.job_id)
        return ExportOutcome(
            model_path=f"{ticket.asset_id}/model.{ticket.output_format}",
            thumbnail_path=f"{ticket.asset_id}/thumbnail.png",
            vertex_count=8,
            face_count=12,
            seconds=EXPORT_S,
            texture="image_projection",
        )

    async def _pass(self, kind: str, job_id: str) -> None:
        self.started[kind].put_nowait(job_id)
        if self.hold[kind]:
            await self._gates[kind, job_id].wait()
        if (exc := self.failures.pop((kind, job_id), None)) is not None:
            raise exc


# --- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path / "files")


@pytest.fixture
async def new_coordinator(store, storage):
    """Builds and starts coordinators on the test's database; stops them all at the end."""
    made: list[JobCoordinator] = []

    async def make(workers: FakeWorkers, **options: Any) -> JobCoordinator:
        coordinator = JobCoordinator(store, storage, workers, **options)
        await coordinator.start()
        made.append(coordinator)
        return coordinator

    yield make
    for coordinator in made:
        await coordinator.stop()


async def create(store: Store, priority: Priority = Priority.NORMAL) -> str:
    """Write a job the way the ingress does, without telling the queue."""
    asset_id = new_id()
    job = await store.create_job(
        name="chair",
        params=GenerationParams(),
        priority=priority,
        original_filename="x.png",
        input_path=f"{asset_id}/input.png",
        asset_id=asset_id,
    )
    return job.id


async def submit(
    store: Store, coordinator: JobCoordinator, priority: Priority = Priority.NORMAL
) -> str:
    job_id = await create(store, priority)
    await coordinator.submit(job_id)
    return job_id


async def wait_event(
    coordinator: JobCoordinator,
    match: Callable[[Event], bool],
    after: int = 0,
    timeout: float = WAIT_S,
) -> Event:
    """The first event after ``after`` that ``match`` accepts, waiting for it if need be."""

    async def scan() -> Event:
        cursor = after
        while True:
            for event in await coordinator.events.wait_since(cursor, timeout):
                cursor = event["seq"]
                if match(event):
                    return event

    return await asyncio.wait_for(scan(), timeout)


async def reached(
    coordinator: JobCoordinator, job_id: str, stage: str | None = None, type_: str = "progress"
) -> Event:
    """The job's event; by then the change it announces is in the database too."""
    event = await wait_event(
        coordinator,
        lambda e: (
            e.get("job_id") == job_id
            and e["type"] == type_
            and (stage is None or e["stage"] == stage)
        ),
    )
    await coordinator.flush()  # stage changes are written just behind their announcement
    return event


async def finished(coordinator: JobCoordinator, job_id: str) -> Event:
    """The event that ended the job: asset_ready, job_failed or job_cancelled."""
    ends = {"asset_ready", "job_failed", "job_cancelled"}
    return await wait_event(coordinator, lambda e: e.get("job_id") == job_id and e["type"] in ends)


def events_of(coordinator: JobCoordinator, job_id: str) -> list[Event]:
    return [e for e in coordinator.events.since(0) if e.get("job_id") == job_id]


async def claim(coordinator: JobCoordinator, worker: str = "gpu-0") -> GenerateTicket:
    ticket = await coordinator.claim(worker, timeout=WAIT_S)
    assert ticket is not None
    return ticket


async def generate(coordinator: JobCoordinator, worker: str = "gpu-0") -> GenerateTicket:
    """One generator turn: claim the next job, report progress, hand back the mesh."""
    ticket = await claim(coordinator, worker)
    assert await coordinator.report_progress(ticket.job_id, worker, ticket.claim, 0.5, "denoising")
    await coordinator.generated(ticket.job_id, worker, ticket.claim, seconds=1.5)
    return ticket


# --- the happy path -------------------------------------------------------------------------


async def test_a_job_goes_from_submission_to_a_completed_asset(store, new_coordinator):
    workers = FakeWorkers(hold_preprocess=True)
    coordinator = await new_coordinator(workers)
    job_id = await submit(store, coordinator)
    asset_id = (await store.get_job(job_id)).asset_id

    created = await reached(coordinator, job_id, type_="job_created")
    assert (created["status"], created["stage"], created["progress"]) == ("pending", "queued", 0)

    # Preprocessing: the job's image goes to the CPU pool.
    assert await workers.next_started("preprocess") == job_id
    assert workers.preprocess_tickets == [
        PrepareTicket(
            job_id=job_id,
            asset_id=asset_id,
            input_path=f"{asset_id}/input.png",
            prepared_path=f"{asset_id}/prepared.png",
            remove_background=True,
            seed=1234,
            claim=(await store.get_job(job_id)).claim,  # the run's own claim
        )
    ]
    await coordinator.flush()  # stage changes are written behind the work
    row = await store.get_job(job_id)
    assert (row.status, row.stage) == ("processing", "preprocessing")

    workers.release("preprocess", job_id)
    await reached(coordinator, job_id, "waiting_for_gpu")
    await coordinator.flush()
    row = await store.get_job(job_id)
    assert (row.status, row.stage, row.background_method) == ("pending", "waiting_for_gpu", "rembg")

    # A generator takes it.
    ticket = await coordinator.claim("gpu-0", timeout=WAIT_S)
    assert ticket == GenerateTicket(
        job_id=job_id,
        asset_id=asset_id,
        prepared_path=f"{asset_id}/prepared.png",
        shape_path=f"{asset_id}/shape.npz",
        params=GenerationParams().model_dump(mode="json"),
        attempt=1,
        claim=ticket.claim,
    )
    await coordinator.flush()  # the claim is written just after the generator gets its ticket
    row = await store.get_job(job_id)
    assert (row.status, row.stage, row.worker, row.attempts) == (
        "processing",
        "generating",
        "gpu-0",
        1,
    )
    assert row.started_at is not None

    assert await coordinator.report_progress(job_id, "gpu-0", ticket.claim, 0.5, "denoising")
    assert coordinator.heartbeat(job_id, "gpu-0", ticket.claim)
    await coordinator.flush()  # progress is written behind the generator's back
    progressed = await store.get_job(job_id)
    assert progressed.progress > row.progress
    assert progressed.message == "denoising"

    # The mesh goes to the export pool, and the asset is ready.
    await coordinator.generated(job_id, "gpu-0", ticket.claim, seconds=1.5)
    ready = await reached(coordinator, job_id, type_="asset_ready")
    assert workers.export_tickets == [
        ExportTicket(
            job_id=job_id,
            asset_id=asset_id,
            shape_path=f"{asset_id}/shape.npz",
            prepared_path=f"{asset_id}/prepared.png",
            raw_mesh_path=f"{asset_id}/raw_mesh.npz",
            params=GenerationParams().model_dump(mode="json"),
            output_format="glb",
            claim=ticket.claim + 1,  # each stage's run has a claim of its own
        )
    ]
    asset_fields = {
        "model_path": f"{asset_id}/model.glb",
        "thumbnail_path": f"{asset_id}/thumbnail.png",
        "vertex_count": 8,
        "face_count": 12,
        "texture_method": "image_projection",
        "lods": [],
    }
    assert ready["asset"] == asset_fields
    assert (ready["status"], ready["progress"]) == ("completed", 1.0)

    row = await store.get_job(job_id)
    assert (row.status, row.progress, row.error) == ("completed", 1.0, None)
    assert row.completed_at is not None
    assert (
        row.timings.items()
        >= {
            "preprocess_s": PREPROCESS_S,
            "generate_s": 1.5,
            "export_s": EXPORT_S,
        }.items()
    )
    stages = ("queued", "preprocessing", "waiting_for_gpu", "generating", "exporting")
    assert {f"{stage}_wall_s" for stage in stages} <= row.timings.keys()
    asset = await store.get_asset(asset_id)
    assert asset.status == "completed"
    assert {key: getattr(asset, key) for key in asset_fields} == asset_fields

    # What a subscriber saw, in order.
    events = events_of(coordinator, job_id)
    types = [e["type"] for e in events]
    assert types[0] == "job_created"
    assert types[-1] == "asset_ready"
    assert set(types[1:-1]) == {"progress"}
    progress = [e["progress"] for e in events]
    assert progress == sorted(progress)
    seen_stages = [e["stage"] for e in events]
    assert list(dict.fromkeys(seen_stages)) == list(stages)
    assert coordinator.jobs() == []
    assert coordinator.status()["active_jobs"] == 0


async def test_a_client_reading_with_another_epoch_reads_from_the_start(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers())
    job_id = await submit(store, coordinator)
    await reached(coordinator, job_id, "waiting_for_gpu")
    last = coordinator.events.last_seq

    same = await coordinator.read_events(coordinator.events.epoch, last, timeout=0)
    other = await coordinator.read_events("an-old-epoch", last, timeout=0)

    assert (same["epoch"], same["events"]) == (coordinator.events.epoch, [])
    assert other["epoch"] == coordinator.events.epoch
    assert [e["seq"] for e in other["events"]] == list(range(1, last + 1))


# --- order and concurrency ------------------------------------------------------------------


async def test_generators_take_the_high_priority_job_first_then_fifo(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers())
    low = await submit(store, coordinator, Priority.LOW)
    normal = [await submit(store, coordinator) for _ in range(3)]
    high = await submit(store, coordinator, Priority.HIGH)
    for job_id in (low, *normal, high):
        await reached(coordinator, job_id, "waiting_for_gpu")

    assert coordinator.status()["queue_depth"] == {"high": 1, "normal": 3, "low": 1}
    assert [job["job_id"] for job in coordinator.jobs()] == [high, *normal, low]

    claimed = [(await claim(coordinator, f"gpu-{i}")).job_id for i in range(5)]

    assert claimed == [high, *normal, low]
    assert await coordinator.claim("gpu-5", timeout=0) is None


async def test_preprocessing_runs_at_most_the_configured_number_of_jobs(store, new_coordinator):
    workers = FakeWorkers(hold_preprocess=True)
    coordinator = await new_coordinator(workers, preprocess_concurrency=2)
    job_ids = [await submit(store, coordinator) for _ in range(5)]

    first_two = [await workers.next_started("preprocess") for _ in range(2)]
    assert first_two == job_ids[:2]
    assert coordinator.status()["by_stage"]["preprocessing"] == 2
    assert coordinator.status()["by_stage"]["queued"] == 3

    # Each finished preprocessing frees its slot for the next job, in submission order.
    for job_id in first_two:
        workers.release("preprocess", job_id)
    order = list(first_two)
    for _ in range(3):
        job_id = await workers.next_started("preprocess")
        order.append(job_id)
        assert workers.preprocessing <= 2
        workers.release("preprocess", job_id)
    for job_id in job_ids:
        await reached(coordinator, job_id, "waiting_for_gpu")

    assert order == job_ids
    assert workers.most_preprocessing == 2


async def test_a_generator_gets_its_next_job_while_cpu_work_goes_on(store, new_coordinator):
    """Generators never wait on exports: a second job is claimable while the first exports."""
    workers = FakeWorkers(hold_export=True)
    coordinator = await new_coordinator(workers)
    first, second = await submit(store, coordinator), await submit(store, coordinator)

    assert (await generate(coordinator)).job_id == first
    assert await workers.next_started("export") == first
    assert (await generate(coordinator)).job_id == second

    workers.release("export", first)
    workers.release("export", second)
    assert (await finished(coordinator, first))["type"] == "asset_ready"
    assert (await finished(coordinator, second))["type"] == "asset_ready"


# --- claims ---------------------------------------------------------------------------------


async def test_a_claim_with_nothing_to_do_times_out_with_none(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers())

    assert await coordinator.claim("gpu-0", timeout=0.01) is None
    assert coordinator.status()["generators"]["gpu-0"]["state"] == "idle"


async def test_a_waiting_claim_wakes_when_a_job_becomes_ready(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers())
    waiting = asyncio.create_task(coordinator.claim("gpu-0", timeout=30))

    job_id = await submit(store, coordinator)
    ticket = await asyncio.wait_for(waiting, WAIT_S)

    assert ticket is not None and ticket.job_id == job_id
    generator = coordinator.status()["generators"]["gpu-0"]
    assert (generator["state"], generator["job_id"]) == ("generating", job_id)


async def test_a_generator_being_stopped_ends_its_claim_at_once_and_takes_no_job(
    store, new_coordinator
):
    """Its shutdown need not wait out the claim; the job waits for another generator."""
    coordinator = await new_coordinator(FakeWorkers())
    waiting = asyncio.create_task(coordinator.claim("gpu-0", timeout=30))
    await asyncio.sleep(0)  # the claim is waiting

    await coordinator.leave("gpu-0")
    assert await asyncio.wait_for(waiting, WAIT_S) is None
    job_id = await submit(store, coordinator)
    await reached(coordinator, job_id, "waiting_for_gpu")
    assert await coordinator.claim("gpu-0", timeout=0.05) is None  # a late claim takes none

    assert (await claim(coordinator, "gpu-1")).job_id == job_id


async def test_a_generator_that_went_silent_loses_its_job_to_another(store, new_coordinator):
    workers = FakeWorkers()
    coordinator = await new_coordinator(workers, lease_s=0.05)
    job_id = await submit(store, coordinator)
    silent = await claim(coordinator, "gpu-0")
    cursor = coordinator.events.last_seq

    # gpu-0 says nothing more; the watchdog puts the job back once the lease runs out.
    requeued = await wait_event(
        coordinator, lambda e: e.get("job_id") == job_id and e["type"] == "progress", cursor
    )
    assert requeued["stage"] == "waiting_for_gpu"
    assert "went silent" in requeued["message"]
    await coordinator.flush()  # the stage change is written just behind its announcement
    row = await store.get_job(job_id)
    assert (row.status, row.stage) == ("pending", "waiting_for_gpu")

    coordinator.lease_s = 60.0  # gpu-1 is not silent, however slow this machine is
    ticket = await claim(coordinator, "gpu-1")
    assert (ticket.job_id, ticket.attempt) == (job_id, 2)
    # gpu-0 coming back late is told to stop, and its result is ignored.
    assert not await coordinator.report_progress(job_id, "gpu-0", silent.claim, 0.9, "late")
    await coordinator.generated(job_id, "gpu-0", silent.claim, seconds=9.0)
    await coordinator.flush()
    assert (await store.get_job(job_id)).worker == "gpu-1"
    # The database itself refuses a write made under gpu-0's claim.
    assert not await store.update_job(job_id, silent.claim, message="late", progress=0.9)

    await coordinator.generated(job_id, "gpu-1", ticket.claim, seconds=1.0)
    assert (await finished(coordinator, job_id))["type"] == "asset_ready"
    row = await store.get_job(job_id)
    assert (row.worker, row.timings["generate_s"], row.message) == ("gpu-1", 1.0, "completed")
    assert [t.job_id for t in workers.export_tickets] == [job_id], "exported once"


# --- cancellation ---------------------------------------------------------------------------


async def test_cancelling_a_job_waiting_for_a_generator_ends_it_at_once(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers())
    job_id = await submit(store, coordinator)
    await reached(coordinator, job_id, "waiting_for_gpu")

    view = await coordinator.cancel(job_id)

    assert view["status"] == "cancelled"
    row = await store.get_job(job_id)
    assert row.status == "cancelled"
    assert (await store.get_asset(row.asset_id)).status == "cancelled"
    assert (await finished(coordinator, job_id))["type"] == "job_cancelled"
    assert await coordinator.claim("gpu-0", timeout=0) is None
    assert coordinator.jobs() == []


async def test_a_cancelled_queued_job_is_never_preprocessed(store, new_coordinator):
    workers = FakeWorkers(hold_preprocess=True)
    coordinator = await new_coordinator(workers, preprocess_concurrency=1)
    running = await submit(store, coordinator)
    queued = await submit(store, coordinator)
    assert await workers.next_started("preprocess") == running

    assert (await coordinator.cancel(queued))["status"] == "cancelled"
    assert (await store.get_job(queued)).status == "cancelled"

    later = await submit(store, coordinator)
    workers.release("preprocess", running)
    assert await workers.next_started("preprocess") == later
    assert [t.job_id for t in workers.preprocess_tickets] == [running, later]


async def test_a_job_cancelled_while_preprocessing_ends_when_preprocessing_does(
    store, new_coordinator
):
    workers = FakeWorkers(hold_preprocess=True)
    coordinator = await new_coordinator(workers)
    job_id = await submit(store, coordinator)
    await workers.next_started("preprocess")

    view = await coordinator.cancel(job_id)
    assert (view["status"], view["cancel_requested"]) == ("processing", True)

    workers.release("preprocess", job_id)
    assert (await finished(coordinator, job_id))["type"] == "job_cancelled"
    assert (await store.get_job(job_id)).status == "cancelled"
    assert "waiting_for_gpu" not in {e["stage"] for e in events_of(coordinator, job_id)}


async def test_cancelling_a_generating_job_stops_its_generator(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers())
    job_id = await submit(store, coordinator)
    run = (await claim(coordinator, "gpu-0")).claim
    assert await coordinator.report_progress(job_id, "gpu-0", run, 0.2, "denoising")

    view = await coordinator.cancel(job_id)
    assert (view["status"], view["cancel_requested"]) == ("processing", True)
    assert (await store.get_job(job_id)).status == "processing"  # the generator decides when

    assert not await coordinator.report_progress(job_id, "gpu-0", run, 0.4, "denoising")
    assert not coordinator.heartbeat(job_id, "gpu-0", run)
    await coordinator.generation_failed(job_id, "gpu-0", run, "cancelled", cancelled=True)

    assert (await finished(coordinator, job_id))["type"] == "job_cancelled"
    row = await store.get_job(job_id)
    assert (row.status, row.error) == ("cancelled", None)
    assert coordinator.status()["generators"]["gpu-0"]["state"] == "idle"


async def test_a_mesh_delivered_after_a_cancel_is_not_exported(store, new_coordinator):
    workers = FakeWorkers()
    coordinator = await new_coordinator(workers)
    job_id = await submit(store, coordinator)
    run = (await claim(coordinator)).claim
    await coordinator.cancel(job_id)

    await coordinator.generated(job_id, "gpu-0", run, seconds=1.0)

    assert (await finished(coordinator, job_id))["type"] == "job_cancelled"
    assert workers.export_tickets == []


async def test_cancelling_a_finished_job_is_refused(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers())
    job_id = await submit(store, coordinator)
    await generate(coordinator)
    await finished(coordinator, job_id)

    with pytest.raises(JobFinished):
        await coordinator.cancel(job_id)
    assert (await store.get_job(job_id)).status == "completed"


async def test_cancelling_or_submitting_an_unknown_job_raises_not_found(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers())

    with pytest.raises(JobNotFound):
        await coordinator.cancel("no-such-job")
    with pytest.raises(JobNotFound):
        await coordinator.submit("no-such-job")


async def test_submitting_twice_queues_the_job_once(store, new_coordinator):
    workers = FakeWorkers()
    coordinator = await new_coordinator(workers)
    job_id = await submit(store, coordinator)
    await coordinator.submit(job_id)
    await generate(coordinator)
    await finished(coordinator, job_id)

    again = await coordinator.submit(job_id)  # a finished job stays finished

    assert again["status"] == "completed"
    assert [e["type"] for e in events_of(coordinator, job_id)].count("job_created") == 1
    assert len(workers.preprocess_tickets) == 1


# --- failures -------------------------------------------------------------------------------


async def test_a_failed_preprocessing_fails_its_job_and_the_queue_goes_on(store, new_coordinator):
    workers = FakeWorkers(hold_preprocess=True)
    coordinator = await new_coordinator(workers, preprocess_concurrency=1)
    bad = await submit(store, coordinator)
    good = await submit(store, coordinator)
    workers.fail("preprocess", bad, ValueError("cannot decode\nbad pixels"))
    assert await workers.next_started("preprocess") == bad

    workers.release("preprocess", bad)
    failed = await finished(coordinator, bad)
    assert await workers.next_started("preprocess") == good
    workers.release("preprocess", good)
    await reached(coordinator, good, "waiting_for_gpu")

    message = "preprocessing failed: ValueError: bad pixels"
    assert (failed["type"], failed["status"], failed["error"]) == ("job_failed", "failed", message)
    row = await store.get_job(bad)
    assert (row.status, row.error) == ("failed", message)
    assert (await store.get_asset(row.asset_id)).status == "failed"
    assert (await claim(coordinator)).job_id == good


async def test_a_user_facing_error_is_reported_by_its_message(store, new_coordinator):
    workers = FakeWorkers(hold_preprocess=True)
    coordinator = await new_coordinator(workers)
    job_id = await submit(store, coordinator)
    workers.fail("preprocess", job_id, ImageRejected("the image is empty"))
    workers.release("preprocess", job_id)

    await finished(coordinator, job_id)

    assert (await store.get_job(job_id)).error == "preprocessing failed: the image is empty"


async def test_a_failed_generation_fails_the_job_with_its_error(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers())
    job_id = await submit(store, coordinator)
    run = (await claim(coordinator)).claim

    await coordinator.generation_failed(job_id, "gpu-0", run, "CUDA out of memory", False)

    failed = await finished(coordinator, job_id)
    assert (failed["type"], failed["error"]) == ("job_failed", "CUDA out of memory")
    row = await store.get_job(job_id)
    assert (row.status, row.error) == ("failed", "CUDA out of memory")
    # A repeated report changes nothing.
    await coordinator.generation_failed(job_id, "gpu-0", run, "again", cancelled=False)
    assert (await store.get_job(job_id)).error == "CUDA out of memory"


async def test_a_failed_export_fails_the_job(store, new_coordinator):
    workers = FakeWorkers(hold_export=True)
    coordinator = await new_coordinator(workers)
    job_id = await submit(store, coordinator)
    await generate(coordinator)
    workers.fail("export", job_id, RuntimeError("mesh has no faces"))
    workers.release("export", job_id)

    failed = await finished(coordinator, job_id)

    assert failed["type"] == "job_failed"
    row = await store.get_job(job_id)
    assert (row.status, row.error) == ("failed", "export failed: RuntimeError: mesh has no faces")


# --- restart --------------------------------------------------------------------------------


async def test_a_restarted_queue_finishes_every_job_exactly_once(store, new_coordinator):
    old_workers = FakeWorkers(hold_preprocess=True)
    old = await new_coordinator(old_workers, preprocess_concurrency=1)
    generating = await submit(store, old)
    waiting = await submit(store, old)
    for job_id in (generating, waiting):
        assert await old_workers.next_started("preprocess") == job_id
        old_workers.release("preprocess", job_id)
        await reached(old, job_id, "waiting_for_gpu")
    old_run = await claim(old, "gpu-old")
    assert old_run.job_id == generating
    assert await old.report_progress(generating, "gpu-old", old_run.claim, 0.5, "denoising")
    preprocessing = await submit(store, old)
    assert await old_workers.next_started("preprocess") == preprocessing
    queued = await submit(store, old)  # the only preprocessing slot is taken
    all_jobs = {generating, waiting, preprocessing, queued}
    await old.flush()
    stages = {job_id: (await store.get_job(job_id)).stage for job_id in all_jobs}
    assert stages == {
        generating: "generating",
        waiting: "waiting_for_gpu",
        preprocessing: "preprocessing",
        queued: "queued",
    }

    await old.stop()
    new_workers = FakeWorkers()
    new = await new_coordinator(new_workers, preprocess_concurrency=1)

    # Every job is back; work that was in flight waits to be redone.
    assert {job["job_id"] for job in new.jobs()} == all_jobs
    row = await store.get_job(generating)
    assert (row.status, row.stage) == ("pending", "waiting_for_gpu")

    ticket = await claim(new, "gpu-new")
    assert (ticket.job_id, ticket.attempt) == (generating, 2)
    # The old generator's late reports for a job now run by another are ignored.
    assert not await new.report_progress(generating, "gpu-old", old_run.claim, 0.9, "late")
    await new.generated(generating, "gpu-old", old_run.claim, seconds=3.0)
    await new.generation_failed(generating, "gpu-old", old_run.claim, "lost", cancelled=False)
    await new.flush()
    row = await store.get_job(generating)
    assert (row.status, row.stage, row.worker) == ("processing", "generating", "gpu-new")

    await new.generated(generating, "gpu-new", ticket.claim, seconds=1.0)
    for _ in range(3):
        await generate(new, "gpu-new")
    for job_id in all_jobs:
        assert (await finished(new, job_id))["type"] == "asset_ready"

    ready = Counter(e["job_id"] for e in new.events.since(0) if e["type"] == "asset_ready")
    assert ready == dict.fromkeys(all_jobs, 1)
    assert Counter(t.job_id for t in new_workers.export_tickets) == dict.fromkeys(all_jobs, 1)
    assert sorted(t.job_id for t in new_workers.preprocess_tickets) == sorted(
        [preprocessing, queued]
    )
    history = await store.library.jobs(JobQuery(), None)  # every job, as GET /jobs lists them
    assert {row.id: row.status for row in history.items} == dict.fromkeys(all_jobs, "completed")
    assert new.jobs() == []


async def test_a_generator_that_outlived_the_restart_keeps_its_job(store, new_coordinator):
    old = await new_coordinator(FakeWorkers())
    first, second = await submit(store, old), await submit(store, old)
    await reached(old, second, "waiting_for_gpu")
    old_run = await claim(old, "gpu-old")
    assert old_run.job_id == first
    await old.stop()
    new = await new_coordinator(FakeWorkers())

    # gpu-old reports before any other generator claimed its job: it goes on with it.
    assert await new.report_progress(first, "gpu-old", old_run.claim, 0.7, "denoising")
    new_run = await claim(new, "gpu-new")
    assert new_run.job_id == second
    await new.generated(first, "gpu-old", old_run.claim, seconds=1.0)
    await new.generated(second, "gpu-new", new_run.claim, seconds=1.0)

    assert (await finished(new, first))["type"] == "asset_ready"
    assert (await finished(new, second))["type"] == "asset_ready"


async def test_an_export_interrupted_by_a_restart_is_redone(store, storage, new_coordinator):
    old_workers = FakeWorkers(hold_export=True)
    old = await new_coordinator(old_workers)
    job_id = await submit(store, old)
    ticket = await generate(old)
    storage.put(ticket.shape_path, b"the generator's shape")
    assert await old_workers.next_started("export") == job_id
    await old.stop()

    new_workers = FakeWorkers()
    new = await new_coordinator(new_workers)

    assert (await finished(new, job_id))["type"] == "asset_ready"
    assert [t.job_id for t in new_workers.export_tickets] == [job_id]
    assert (await store.get_job(job_id)).status == "completed"


async def test_an_export_without_its_mesh_after_a_restart_is_generated_again(
    store, new_coordinator
):
    old_workers = FakeWorkers(hold_export=True)
    old = await new_coordinator(old_workers)
    job_id = await submit(store, old)
    await generate(old)  # no raw mesh file is written: it was lost with the old node
    await old_workers.next_started("export")
    await old.stop()

    new = await new_coordinator(FakeWorkers())

    row = await store.get_job(job_id)
    assert (row.status, row.stage) == ("pending", "waiting_for_gpu")
    assert (await generate(new)).job_id == job_id
    assert (await finished(new, job_id))["type"] == "asset_ready"


# --- the CPU pool: bounded, in priority order, and a lost shape --------------------------------


async def test_generated_jobs_wait_for_the_pool_and_a_high_one_overtakes_normal_ones(
    store, new_coordinator
):
    workers = FakeWorkers(hold_export=True)
    coordinator = await new_coordinator(workers, export_concurrency=1)
    busy = await submit(store, coordinator)
    await generate(coordinator)
    assert await workers.next_started("export") == busy  # holds the only slot
    normal = [await submit(store, coordinator) for _ in range(2)]
    for _ in normal:
        await generate(coordinator)
    high = await submit(store, coordinator, Priority.HIGH)
    await generate(coordinator)
    for job_id in (*normal, high):
        event = await reached(coordinator, job_id, "exporting")
        assert event["message"] == "waiting for a CPU worker"
    assert coordinator.status()["waiting_for_export"] == 3
    assert workers.started["export"].empty(), "one slot: nothing else was sent to the pool"

    order = []
    for _ in range(3):
        workers.release("export", order[-1] if order else busy)
        order.append(await workers.next_started("export"))
    workers.release("export", order[-1])

    assert order == [high, *normal]
    for job_id in (busy, high, *normal):
        assert (await finished(coordinator, job_id))["type"] == "asset_ready"


async def test_at_start_the_pool_takes_resumed_jobs_highest_priority_first(
    store, storage, new_coordinator
):
    old_workers = FakeWorkers(hold_export=True)
    old = await new_coordinator(old_workers, export_concurrency=3)
    jobs = [await submit(store, old, p) for p in (Priority.LOW, Priority.NORMAL, Priority.HIGH)]
    for _ in jobs:
        ticket = await generate(old)
        storage.put(ticket.shape_path, b"a shape")
    for _ in jobs:
        await old_workers.next_started("export")
    await old.stop()

    new_workers = FakeWorkers(hold_export=True)
    await new_coordinator(new_workers, export_concurrency=1)

    assert await new_workers.next_started("export") == jobs[2], "HIGH first, not the oldest"


async def test_cancelling_a_job_waiting_for_the_pool_ends_it_at_once(store, new_coordinator):
    workers = FakeWorkers(hold_export=True)
    coordinator = await new_coordinator(workers, export_concurrency=1)
    busy = await submit(store, coordinator)
    await generate(coordinator)
    await workers.next_started("export")
    waiting = await submit(store, coordinator)
    await generate(coordinator)
    await reached(coordinator, waiting, "exporting")

    view = await coordinator.cancel(waiting)

    assert view["status"] == "cancelled"
    assert (await finished(coordinator, waiting))["type"] == "job_cancelled"
    workers.release("export", busy)
    assert (await finished(coordinator, busy))["type"] == "asset_ready"
    assert [t.job_id for t in workers.export_tickets] == [busy], "the cancelled one never ran"


async def test_a_shape_lost_before_the_cpu_stage_sends_the_job_back_to_a_generator(
    store, new_coordinator
):
    workers = FakeWorkers()
    coordinator = await new_coordinator(workers)
    job_id = await submit(store, coordinator)
    workers.fail("export", job_id, ShapeLost("the generated shape is gone from the store"))
    await generate(coordinator)

    event = await wait_event(coordinator, lambda e: "shape was lost" in e.get("message", ""))
    assert (event["job_id"], event["stage"]) == (job_id, "waiting_for_gpu")
    assert "attempt 2 of 3" in event["message"]
    assert (await generate(coordinator)).job_id == job_id  # the GPU stage runs again
    assert (await finished(coordinator, job_id))["type"] == "asset_ready"
    row = await store.get_job(job_id)
    assert (row.status, row.attempts) == ("completed", 2)


async def test_a_shape_lost_every_time_fails_the_job_saying_so(store, new_coordinator):
    workers = FakeWorkers()
    coordinator = await new_coordinator(workers, stage_attempts=2)
    job_id = await submit(store, coordinator)
    workers.fail("export", job_id, ShapeLost("the generated shape is gone from the store"))
    await generate(coordinator)
    await wait_event(coordinator, lambda e: "shape was lost" in e.get("message", ""))
    workers.fail("export", job_id, ShapeLost("the generated shape is gone from the store"))
    await generate(coordinator)

    event = await finished(coordinator, job_id)
    assert event["type"] == "job_failed"
    assert event["error"].startswith("generation failed: the generated shape is gone")


# --- known bugs (each flips to a pass when its fix lands) -----------------------------------


async def test_a_stopped_queue_dispatches_no_more_work(store, new_coordinator):
    old_workers = FakeWorkers(hold_preprocess=True)
    old = await new_coordinator(old_workers, preprocess_concurrency=1)
    first = await submit(store, old)
    assert await old_workers.next_started("preprocess") == first
    second = await submit(store, old)  # waits for the only preprocessing slot

    await old.stop()
    # A new queue on the same database does the work; the stopped one must stay quiet.
    new = await new_coordinator(FakeWorkers(), preprocess_concurrency=1)
    for _ in range(2):
        await generate(new)
    for job_id in (first, second):
        assert (await finished(new, job_id))["type"] == "asset_ready"

    assert [t.job_id for t in old_workers.preprocess_tickets] == [first]


async def test_a_job_finishing_during_a_reconcile_pass_is_not_run_again(
    store, new_coordinator, monkeypatch
):
    coordinator = await new_coordinator(FakeWorkers(), reconcile_s=0.01)
    finish_job, adopt = store.finish_job, store.claims.adopt
    finishing, reconciled, proceed = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_finish_job(*args, **kwargs):
        finishing.set()
        await proceed.wait()
        return await finish_job(*args, **kwargs)

    async def adopt_while_finishing(*args, **kwargs):
        if kwargs.get("job_id") is None:  # a reconcile pass, not a submit
            await finishing.wait()
            rows = await adopt(*args, **kwargs)  # the job is still active: its end is not written
            reconciled.set()
            return rows
        return await adopt(*args, **kwargs)

    monkeypatch.setattr(store, "finish_job", slow_finish_job)
    monkeypatch.setattr(store.claims, "adopt", adopt_while_finishing)
    job_id = await submit(store, coordinator)
    await generate(coordinator)
    await asyncio.wait_for(reconciled.wait(), WAIT_S)
    proceed.set()

    assert (await finished(coordinator, job_id))["type"] == "asset_ready"
    assert (await store.get_job(job_id)).status == "completed"
    assert coordinator.jobs() == []
    assert await coordinator.claim("gpu-1", timeout=0) is None


async def test_a_job_submitted_during_a_reconcile_pass_is_queued_once(
    store, new_coordinator, monkeypatch
):
    workers = FakeWorkers()
    coordinator = await new_coordinator(workers, reconcile_s=0.01)
    adopt = store.claims.adopt
    looking_up, reconciled, proceed = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def adopt_while_submitting(*args, **kwargs):
        if kwargs.get("job_id") is not None:  # the submit: held until a reconcile pass ran
            looking_up.set()
            await proceed.wait()
            return await adopt(*args, **kwargs)
        await looking_up.wait()
        rows = await adopt(*args, **kwargs)  # the reconcile adopts the job nobody holds yet
        reconciled.set()
        return rows

    monkeypatch.setattr(store.claims, "adopt", adopt_while_submitting)
    job_id = await create(store)
    submitting = asyncio.create_task(coordinator.submit(job_id))
    await asyncio.wait_for(reconciled.wait(), WAIT_S)
    proceed.set()
    await asyncio.wait_for(submitting, WAIT_S)
    await generate(coordinator)

    assert (await finished(coordinator, job_id))["type"] == "asset_ready"
    assert [e["type"] for e in events_of(coordinator, job_id)].count("job_created") == 1
    assert [t.job_id for t in workers.preprocess_tickets] == [job_id]


async def test_a_cancelled_job_whose_generator_went_silent_ends_cancelled(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers(), lease_s=0.2)
    job_id = await submit(store, coordinator)
    await claim(coordinator, "gpu-0")
    cursor = coordinator.events.last_seq
    await coordinator.cancel(job_id)

    # gpu-0 goes silent: the job ends cancelled, or goes back in line still to be cancelled.
    outcome = await wait_event(
        coordinator,
        lambda e: (
            e.get("job_id") == job_id
            and (
                e["type"] == "job_cancelled"
                or (e["stage"] == "waiting_for_gpu" and e["cancel_requested"])
            )
        ),
        cursor,
    )

    assert outcome["type"] == "job_cancelled"
    assert await coordinator.claim("gpu-1", timeout=0) is None


async def test_a_cancel_asked_before_a_restart_is_kept(store, new_coordinator):
    old = await new_coordinator(FakeWorkers())
    job_id = await submit(store, old)
    await claim(old, "gpu-old")
    await old.cancel(job_id)
    await old.stop()

    new = await new_coordinator(FakeWorkers())

    assert (await store.get_job(job_id)).status == "cancelled"
    assert await new.claim("gpu-new", timeout=0) is None


async def test_the_watchdog_outlives_a_database_error(store, new_coordinator, monkeypatch):
    coordinator = await new_coordinator(FakeWorkers(), lease_s=0.05, reconcile_s=0.01)
    # The watchdog's task: once it has ended, nothing will ever requeue a job.
    watchdog = [t for t in coordinator._tasks if "watchdog" in t.get_coro().__qualname__]
    renew = store.claims.renew
    failed = asyncio.Event()

    async def renew_failing_once(*args, **kwargs):
        if not failed.is_set():
            failed.set()
            raise ConnectionError("the database went away for a moment")
        return await renew(*args, **kwargs)

    monkeypatch.setattr(store.claims, "renew", renew_failing_once)
    await asyncio.wait_for(failed.wait(), WAIT_S)
    job_id = await submit(store, coordinator)
    await claim(coordinator, "gpu-0")
    cursor = coordinator.events.last_seq

    # gpu-0 goes silent: the job is put back, unless the watchdog is gone.
    requeued = asyncio.create_task(
        wait_event(
            coordinator,
            lambda e: e.get("job_id") == job_id and e["stage"] == "waiting_for_gpu",
            cursor,
        )
    )
    done, _ = await asyncio.wait(
        [requeued, *watchdog], timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED
    )
    requeued.cancel()

    assert requeued in done
    assert "went silent" in requeued.result()["message"]


# --- generators that cannot run, and preparation progress ---------------------------------


async def test_waiting_jobs_fail_with_the_reason_when_every_generator_is_unavailable(
    store, new_coordinator
):
    coordinator = await new_coordinator(FakeWorkers())
    await coordinator.generator_state("gpu-0", "loading", "loading hunyuan3d")
    early = await submit(store, coordinator)
    await reached(coordinator, early, stage="waiting_for_gpu")
    assert coordinator.book.get(early) is not None, "a loading generator may still take it"

    reason = "Hunyuan3D weights not found in /models/tiny/hunyuan3d-dit-v2-0"
    await coordinator.generator_state("gpu-0", "unavailable", reason)
    failed = await finished(coordinator, early)
    assert failed["type"] == "job_failed"
    assert failed["error"] == f"generation unavailable: {reason}"

    late = await submit(store, coordinator)  # later jobs fail as soon as they are prepared
    assert (await finished(coordinator, late))["error"] == failed["error"]
    assert (await store.get_job(late)).error == failed["error"]


async def test_one_working_generator_keeps_jobs_waiting_beside_an_unavailable_one(
    store, new_coordinator
):
    coordinator = await new_coordinator(FakeWorkers())
    await coordinator.generator_state("gpu-0", "unavailable", "no weights")
    await coordinator.generator_state("gpu-1", "idle", "hunyuan3d ready")
    job_id = await submit(store, coordinator)
    await reached(coordinator, job_id, stage="waiting_for_gpu")

    assert (await claim(coordinator, "gpu-1")).job_id == job_id


async def test_preparation_reports_progress_and_a_cancel_stops_it(store, new_coordinator):
    workers = FakeWorkers(hold_preprocess=True)
    coordinator = await new_coordinator(workers)
    job_id = await submit(store, coordinator)
    assert await workers.next_started("preprocess") == job_id
    run = workers.preprocess_tickets[-1].claim

    assert coordinator.stage_progress(job_id, run, 0.5, "painting step 2/4")
    event = await wait_event(coordinator, lambda e: e.get("message") == "painting step 2/4")
    assert (event["job_id"], event["stage"]) == (job_id, "preprocessing")
    assert 0 < event["progress"] <= 0.1

    await coordinator.cancel(job_id)
    assert not coordinator.stage_progress(job_id, run, 0.75, "painting step 3/4")
    workers.fail("preprocess", job_id, RuntimeError("JobCancelled: cancelled"))
    workers.release("preprocess", job_id)
    assert (await finished(coordinator, job_id))["type"] == "job_cancelled"
    assert not coordinator.stage_progress(new_id(), run, 0.5, "unknown job")


async def test_a_report_that_overtook_a_newer_one_is_dropped(store, new_coordinator):
    coordinator = await new_coordinator(FakeWorkers())
    job_id = await submit(store, coordinator)
    ticket = await claim(coordinator)

    run = ticket.claim
    assert await coordinator.report_progress(ticket.job_id, "gpu-0", run, 0.6, "step 2", seq=2)
    assert await coordinator.report_progress(ticket.job_id, "gpu-0", run, 0.3, "step 1", seq=1)

    shown = [e["message"] for e in events_of(coordinator, job_id) if e["type"] == "progress"]
    assert shown[-1] == "step 2" and "step 1" not in shown
    assert coordinator.book.get(job_id).message == "step 2"


async def test_progress_writes_are_coalesced_and_state_changes_always_written(
    store, new_coordinator, monkeypatch
):
    coordinator = await new_coordinator(FakeWorkers(), progress_write_s=60.0)
    job_id = await submit(store, coordinator)
    ticket = await claim(coordinator)
    await coordinator.flush()
    update_job, written = store.update_job, []

    async def counted(job_id, claim, **fields):
        written.append(fields)
        return await update_job(job_id, claim, **fields)

    monkeypatch.setattr(store, "update_job", counted)
    for step in range(1, 21):
        run = (ticket.job_id, "gpu-0", ticket.claim, step / 20, f"step {step}")
        assert await coordinator.report_progress(*run, seq=step)
    await coordinator.flush()  # writes the progress held back

    assert [f["message"] for f in written] == ["step 1", "step 20"]
    assert (await store.get_job(job_id)).message == "step 20"
    shown = [e["message"] for e in events_of(coordinator, job_id) if e["type"] == "progress"]
    assert shown[-20:] == [f"step {n}" for n in range(1, 21)], "the feed still sees every step"

    # Progress held back never lands after the state change that followed it.
    assert await coordinator.report_progress(ticket.job_id, "gpu-0", ticket.claim, 1.0, "last")
    await coordinator.generated(ticket.job_id, "gpu-0", ticket.claim, seconds=1.0)
    assert (await finished(coordinator, job_id))["type"] == "asset_ready"
    await coordinator.flush()
    assert "last" not in [f.get("message") for f in written]
    assert (await store.get_job(job_id)).status == "completed"


# --- stopping a job before its asset is deleted ---------------------------------------------


async def test_cancel_and_wait_ends_a_waiting_job_at_once_and_a_running_one_when_it_stops(
    store, new_coordinator
):
    coordinator = await new_coordinator(FakeWorkers())
    running = await submit(store, coordinator)
    run = (await claim(coordinator, "gpu-0")).claim
    waiting = await submit(store, coordinator)
    await reached(coordinator, waiting, "waiting_for_gpu")

    assert await coordinator.cancel_and_wait(waiting, timeout=WAIT_S)
    assert (await store.get_job(waiting)).status == "cancelled"
    # The generator has not heard of the cancel yet: the job has not ended within the wait.
    assert not await coordinator.cancel_and_wait(running, timeout=0.05)

    stopping = asyncio.ensure_future(coordinator.cancel_and_wait(running, timeout=WAIT_S))
    assert not await coordinator.report_progress(running, "gpu-0", run, 0.4, "denoising")
    await coordinator.generation_failed(running, "gpu-0", run, "cancelled", cancelled=True)
    assert await stopping
    assert (await store.get_job(running)).status == "cancelled"
    assert await coordinator.cancel_and_wait(running, timeout=0.05)  # already over: true


# --- claims in the database: two queues on one database ------------------------------------

# Long enough that a queue renewing every LEASE_S / 4 never misses one on a loaded machine.
LEASE_S = 2.0


def cut_off(queue: JobCoordinator, monkeypatch) -> Callable[[], None]:
    """A partition between ``queue`` and the database: its lease renewals and its adoptions no
    longer reach it (it believes it still holds its jobs). Returns what heals it."""
    renew, adopt_free = queue._holds.renew, queue._holds.adopt_free

    async def renewal_lost(job_ids):
        return Renewal(held=set(job_ids))

    async def adoption_lost():
        return []

    monkeypatch.setattr(queue._holds, "renew", renewal_lost)
    monkeypatch.setattr(queue._holds, "adopt_free", adoption_lost)

    def heal() -> None:
        monkeypatch.setattr(queue._holds, "renew", renew)
        monkeypatch.setattr(queue._holds, "adopt_free", adopt_free)

    return heal


async def test_two_queues_on_one_database_run_each_job_once_and_take_over_a_silent_ones_jobs(
    store, new_coordinator, monkeypatch
):
    blue_workers, green_workers = FakeWorkers(), FakeWorkers()
    blue = await new_coordinator(blue_workers, holder="blue", lease_s=LEASE_S, reconcile_s=0.05)
    blue_jobs = [await submit(store, blue) for _ in range(4)]
    for job_id in blue_jobs:
        await reached(blue, job_id, "waiting_for_gpu")
    stale = await claim(blue, "blue-gpu")  # blue's generator holds one of them

    # Green starts while blue has a backlog: it adopts none of blue's jobs, now or later.
    green = await new_coordinator(green_workers, holder="green", lease_s=LEASE_S, reconcile_s=0.05)
    green_jobs = [await submit(store, green) for _ in range(2)]
    assert {job["job_id"] for job in green.jobs()} == set(green_jobs)
    await wait_event(green, lambda e: e["type"] == "queue_status")  # a reconcile pass or more
    for job_id in blue_jobs:  # a submit of a job blue holds, through green, leaves it there
        assert (await green.submit(job_id))["job_id"] == job_id
    assert {job["job_id"] for job in green.jobs()} == set(green_jobs)

    # Blue goes silent (a partition: its lease renewals stop reaching the database); green
    # takes its jobs over once their leases run out, and runs them.
    heal = cut_off(blue, monkeypatch)
    for job_id in blue_jobs:
        await reached(green, job_id, "waiting_for_gpu", type_="job_created")

    # Blue's generator, still running, is refused: its report, and its finished shape.
    assert not await store.update_job(stale.job_id, stale.claim, progress=0.5)
    await blue.report_progress(stale.job_id, "blue-gpu", stale.claim, 0.9, "late")
    await blue.generated(stale.job_id, "blue-gpu", stale.claim, seconds=9.0)
    for _ in range(len(blue_jobs) + len(green_jobs)):
        await generate(green, "green-gpu")
    everything = [*blue_jobs, *green_jobs]
    for job_id in everything:
        assert (await finished(green, job_id))["type"] == "asset_ready"

    rows = {job_id: await store.get_job(job_id) for job_id in everything}
    assert {row.status for row in rows.values()} == {"completed"}
    assert {row.worker for row in rows.values()} == {"green-gpu"}
    assert rows[stale.job_id].timings["generate_s"] == 1.5  # green's run, not blue's late one
    exported = Counter(t.job_id for t in green_workers.export_tickets)
    assert exported == dict.fromkeys(everything, 1) and blue_workers.export_tickets == []
    ready = [
        e["job_id"] for q in (blue, green) for e in q.events.since(0) if e["type"] == "asset_ready"
    ]
    assert Counter(ready) == dict.fromkeys(everything, 1), "a job was announced twice"
    # The partition heals: blue's next renewal finds the jobs are green's, and lets them go.
    cursor = blue.events.last_seq
    heal()
    await wait_event(blue, lambda e: e["type"] == "queue_status" and not e["active_jobs"], cursor)
    assert blue.jobs() == []


async def test_a_queue_that_lost_a_job_mid_export_leaves_its_shape_to_the_new_holder(
    store, storage, new_coordinator, monkeypatch
):
    blue_workers = FakeWorkers(hold_export=True)
    blue = await new_coordinator(blue_workers, holder="blue", lease_s=LEASE_S, reconcile_s=0.05)
    job_id = await submit(store, blue)
    await generate(blue, "blue-gpu")
    assert await blue_workers.next_started("export") == job_id
    asset_id = (await store.get_job(job_id)).asset_id
    storage.put(shape_key(asset_id), b"the generated shape")

    heal = cut_off(blue, monkeypatch)
    green_workers = FakeWorkers(hold_export=True)
    green = await new_coordinator(green_workers, holder="green", lease_s=LEASE_S, reconcile_s=0.05)
    assert await green_workers.next_started("export") == job_id  # the shape is there: no GPU
    heal()  # blue learns it lost the job...
    cursor = blue.events.last_seq
    await wait_event(blue, lambda e: e["type"] == "queue_status" and not e["active_jobs"], cursor)
    blue_workers.fail("export", job_id, RuntimeError("JobCancelled: cancelled"))
    blue_workers.release("export", job_id)  # ...and its export worker stops, failing
    await blue.flush()

    assert storage.exists(shape_key(asset_id)), "the old holder removed the new one's shape"
    green_workers.release("export", job_id)
    assert (await finished(green, job_id))["type"] == "asset_ready"
    assert not [e for e in blue.events.since(cursor) if e.get("job_id") == job_id]


async def test_concurrent_claims_of_one_job_are_won_by_exactly_one(store):
    job_id = await create(store)
    rounds = await asyncio.gather(
        *(store.claims.adopt(f"queue-{n}", 60.0, job_id=job_id) for n in range(8))
    )
    assert sum(len(rows) for rows in rounds) == 1
    held = await store.get_job(job_id)
    assert held.claim == 1
    # The winner's next claim is taken once; a second try under the same claim is refused.
    takes = await asyncio.gather(*(store.claims.take(job_id, 1, 60.0) for _ in range(4)))
    assert sorted(takes, key=lambda t: t is None) == [2, None, None, None]


# --- lost workers ---------------------------------------------------------------------------


async def test_an_export_whose_worker_died_runs_again_and_the_job_completes_once(
    store, new_coordinator
):
    workers = FakeWorkers()
    coordinator = await new_coordinator(workers, retry_backoff_s=0.01)
    job_id = await submit(store, coordinator)
    workers.fail("export", job_id, WorkerLost("ActorDiedError: the replica died"))
    await generate(coordinator)

    assert (await finished(coordinator, job_id))["type"] == "asset_ready"
    assert [t.job_id for t in workers.export_tickets] == [job_id, job_id]
    ends = [e for e in events_of(coordinator, job_id) if e["type"] == "asset_ready"]
    assert len(ends) == 1
    retried = [e for e in events_of(coordinator, job_id) if "worker died" in e.get("message", "")]
    assert retried and "attempt 2 of 3" in retried[0]["message"]
    row = await store.get_job(job_id)
    assert (row.status, row.retries) == ("completed", {"exporting": 1})


async def test_a_stage_that_keeps_losing_its_worker_fails_saying_so(store, new_coordinator):
    class DyingWorkers(FakeWorkers):
        async def preprocess(self, ticket: PrepareTicket) -> PrepareOutcome:
            self.preprocess_tickets.append(ticket)
            raise WorkerLost("NodeDiedError: node 1a2b died")

    workers = DyingWorkers()
    coordinator = await new_coordinator(workers, stage_attempts=2, retry_backoff_s=0.01)
    job_id = await submit(store, coordinator)

    end = await finished(coordinator, job_id)
    assert end["type"] == "job_failed"
    assert len(workers.preprocess_tickets) == 2
    row = await store.get_job(job_id)
    assert row.error.startswith("preprocessing failed: its worker died in each of 2 attempts")
    assert "NodeDiedError" in row.error and row.retries == {"preprocessing": 1}


async def test_a_stage_that_fails_by_its_own_error_is_not_run_again(store, new_coordinator):
    workers = FakeWorkers()
    coordinator = await new_coordinator(workers)
    job_id = await submit(store, coordinator)
    # The CPU stage (in the export pool) finding no surface is the generation's failure.
    workers.fail("export", job_id, GenerationFailed("the generated mesh has no faces"))
    await generate(coordinator)

    assert (await finished(coordinator, job_id))["type"] == "job_failed"
    assert len(workers.export_tickets) == 1
    row = await store.get_job(job_id)
    assert row.error == "generation failed: the generated mesh has no faces" and row.retries == {}


async def test_a_job_whose_generator_keeps_going_silent_fails_after_its_attempts(
    store, new_coordinator
):
    coordinator = await new_coordinator(FakeWorkers(), lease_s=0.05, stage_attempts=2)
    job_id = await submit(store, coordinator)
    await claim(coordinator, "gpu-dies-1")  # and never reports again
    requeued = await wait_event(coordinator, lambda e: "went silent" in e.get("message", ""))
    assert requeued["job_id"] == job_id and "attempt 2 of 2" in requeued["message"]
    await claim(coordinator, "gpu-dies-2")

    end = await finished(coordinator, job_id)
    assert end["type"] == "job_failed"
    row = await store.get_job(job_id)
    assert "went silent in each of 2 attempts" in row.error


async def test_a_store_outage_in_a_stage_fails_the_job_saying_so(store, new_coordinator):
    workers = FakeWorkers()
    coordinator = await new_coordinator(workers)
    job_id = await submit(store, coordinator)
    outage = StorageUnavailable(
        "cannot write a1/model.glb in s3://assets (STORAGE_URL): the endpoint is not reachable"
    )
    workers.fail("export", job_id, outage)
    await generate(coordinator)

    assert (await finished(coordinator, job_id))["type"] == "job_failed"
    row = await store.get_job(job_id)
    assert row.error == f"export failed: {outage.message}" and row.retries == {}


# --- the paint path -----------------------------------------------------------------------------


class PaintingWorkers(FakeWorkers):
    """The CPU pool of a box whose generators paint: a textured job's first CPU stage stores
    the unwrapped mesh and hands the job back for painting (when its ticket says to)."""

    async def export(self, ticket: ExportTicket) -> ExportOutcome:
        if ticket.paint:
            self.export_tickets.append(ticket)
            await self._pass("export", ticket.job_id)
            return ExportOutcome.to_paint(seconds=0.25)
        return await super().export(ticket)


async def textured(store: Store, coordinator: JobCoordinator) -> str:
    asset_id = new_id()
    job = await store.create_job(
        name="chair",
        params=GenerationParams(texture=True),
        priority=Priority.NORMAL,
        original_filename="x.png",
        input_path=f"{asset_id}/input.png",
        asset_id=asset_id,
    )
    await coordinator.submit(job.id)
    return job.id


async def test_a_textured_job_goes_back_to_a_gpu_to_be_painted_then_completes_once(
    store, new_coordinator
):
    workers = PaintingWorkers()
    coordinator = await new_coordinator(workers)
    await coordinator.generator_state("gpu-0", "idle", "ready", {"painter": "hunyuan3d-paint"})
    job_id = await textured(store, coordinator)

    await generate(coordinator)  # the shape
    painting = await reached(coordinator, job_id, "waiting_for_gpu", type_="progress")
    while "paint" not in painting["message"]:
        painting = await wait_event(
            coordinator,
            lambda e: e.get("job_id") == job_id and e.get("stage") == "waiting_for_gpu",
            after=painting["seq"],
        )
    assert (await generate(coordinator)).job_id == job_id  # the painting

    assert (await finished(coordinator, job_id))["type"] == "asset_ready"
    assert [t.paint for t in workers.export_tickets] == [True, False]
    stages = [e["stage"] for e in events_of(coordinator, job_id) if e["type"] == "progress"]
    gpu_visits = [s for i, s in enumerate(stages) if s == "generating" and stages[i - 1] != s]
    assert len(gpu_visits) == 2
    progress = [e["progress"] for e in events_of(coordinator, job_id) if "progress" in e]
    assert progress == sorted(progress), "the trip back to a GPU never moves progress back"
    row = await store.get_job(job_id)
    assert row.status == "completed" and "paint_s" in row.timings
    assert len([e for e in events_of(coordinator, job_id) if e["type"] == "asset_ready"]) == 1


async def test_without_a_painter_a_textured_job_is_not_sent_back(store, new_coordinator):
    workers = PaintingWorkers()
    coordinator = await new_coordinator(workers)
    await coordinator.generator_state("gpu-0", "idle", "ready", {"painter": None})
    job_id = await textured(store, coordinator)

    await generate(coordinator)

    assert (await finished(coordinator, job_id))["type"] == "asset_ready"
    assert [t.paint for t in workers.export_tickets] == [False]


async def test_a_job_is_sent_to_be_painted_once_at_most(store, new_coordinator):
    """Before any generator said whether it paints (a queue just restarted), a textured job
    may go back to a GPU once; one that comes back unpainted is finished from the photo."""
    workers = PaintingWorkers()
    coordinator = await new_coordinator(workers)
    job_id = await textured(store, coordinator)

    await generate(coordinator)
    await generate(coordinator)  # a replica without a painter: nothing painted

    assert (await finished(coordinator, job_id))["type"] == "asset_ready"
    assert [t.paint for t in workers.export_tickets] == [True, False]


async def test_a_job_cancelled_while_waiting_to_be_painted_leaves_nothing_behind(
    store, storage, new_coordinator
):
    workers = PaintingWorkers()
    coordinator = await new_coordinator(workers)
    await coordinator.generator_state("gpu-0", "idle", "ready", {"painter": "hunyuan3d-paint"})
    job_id = await textured(store, coordinator)
    asset_id = (await store.get_job(job_id)).asset_id
    await generate(coordinator)
    await wait_event(coordinator, lambda e: "paint the texture" in e.get("message", ""))
    storage.put(shape_key(asset_id), b"the unwrapped mesh, waiting")  # as the pool left it

    await coordinator.cancel(job_id)

    assert (await finished(coordinator, job_id))["type"] == "job_cancelled"
    assert not storage.exists(shape_key(asset_id))
