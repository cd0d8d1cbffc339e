"""The job book: which waiting job runs next, and what the queue reports about its depth."""

from __future__ import annotations

from sweedle_core.jobs.book import JobBook, JobEntry
from sweedle_core.jobs.states import JobStage
from sweedle_core.params import Priority


def entry(job_id: str, priority: Priority = Priority.NORMAL, created_at: float = 0.0) -> JobEntry:
    return JobEntry(
        id=job_id,
        asset_id=f"asset-{job_id}",
        priority=priority,
        created_at=created_at,
        params={},
        input_path=f"asset-{job_id}/input.png",
    )


def drain(book: JobBook, stage: JobStage = JobStage.QUEUED) -> list[str]:
    order = []
    while (next_entry := book.pop(stage)) is not None:
        next_entry.stage = JobStage.PREPROCESSING  # what the dispatcher does with a popped job
        order.append(next_entry.id)
    return order


def test_high_runs_before_normal_before_low_and_fifo_within_a_priority():
    book = JobBook()
    book.add(entry("low-1", Priority.LOW, created_at=1))
    book.add(entry("normal-1", Priority.NORMAL, created_at=2))
    book.add(entry("high-1", Priority.HIGH, created_at=3))
    book.add(entry("normal-2", Priority.NORMAL, created_at=4))
    book.add(entry("low-2", Priority.LOW, created_at=5))
    book.add(entry("high-2", Priority.HIGH, created_at=6))

    assert drain(book) == ["high-1", "high-2", "normal-1", "normal-2", "low-1", "low-2"]


def test_fifo_follows_creation_time_not_the_order_of_adding():
    book = JobBook()
    book.add(entry("later", created_at=20))
    book.add(entry("earlier", created_at=10))

    assert drain(book) == ["earlier", "later"]


def test_jobs_created_at_the_same_moment_run_in_the_order_they_were_added():
    book = JobBook()
    for name in ("a", "b", "c"):
        book.add(entry(name, created_at=5))

    assert drain(book) == ["a", "b", "c"]


def test_a_removed_job_is_skipped():
    book = JobBook()
    book.add(entry("gone", created_at=1))
    book.add(entry("kept", created_at=2))

    assert book.remove("gone") is not None
    assert book.remove("gone") is None  # removing twice is harmless
    assert "gone" not in book
    assert drain(book) == ["kept"]
    assert book.pop(JobStage.QUEUED) is None


def test_each_waiting_stage_has_its_own_line():
    book = JobBook()
    first, second = entry("first", created_at=1), entry("second", created_at=2)
    book.add(first)
    book.add(second)

    # "second" moves on to wait for a GPU without being popped from the first line.
    book.move(second, JobStage.WAITING_FOR_GPU)

    assert book.pop(JobStage.WAITING_FOR_GPU) is second
    assert book.pop(JobStage.WAITING_FOR_GPU) is None
    assert book.pop(JobStage.QUEUED) is first
    assert book.pop(JobStage.QUEUED) is None  # the stale "second" item is skipped


def test_a_requeued_job_keeps_its_place_by_priority_and_age():
    book = JobBook()
    old, young = entry("old", created_at=1), entry("young", created_at=2)
    book.add(old)
    book.add(young)
    book.move(young, JobStage.WAITING_FOR_GPU)
    drain(book)
    book.move(old, JobStage.WAITING_FOR_GPU)  # e.g. put back after its generator went silent

    assert drain(book, JobStage.WAITING_FOR_GPU) == ["old", "young"]


def test_depth_counts_waiting_jobs_per_priority():
    book = JobBook()
    assert book.depth() == {"high": 0, "normal": 0, "low": 0}

    book.add(entry("h", Priority.HIGH))
    book.add(entry("n1", Priority.NORMAL))
    book.add(entry("n2", Priority.NORMAL))
    gpu = entry("n3", Priority.NORMAL)
    book.add(gpu)
    book.move(gpu, JobStage.WAITING_FOR_GPU)
    running = entry("l", Priority.LOW)
    book.add(running)
    running.stage = JobStage.GENERATING  # running jobs are not waiting

    assert book.depth() == {"high": 1, "normal": 3, "low": 0}
    assert book.waiting(JobStage.QUEUED) == 3
    assert book.waiting(JobStage.WAITING_FOR_GPU) == 1
    assert book.by_stage() == {
        "queued": 3,
        "preprocessing": 0,
        "waiting_for_gpu": 1,
        "generating": 1,
        "exporting": 0,
    }
    assert len(book) == 5

    book.remove("n1")
    assert book.depth() == {"high": 1, "normal": 2, "low": 0}


def test_in_order_lists_running_jobs_first_then_the_waiting_ones_in_run_order():
    book = JobBook()
    book.add(entry("queued-low", Priority.LOW, created_at=1))
    book.add(entry("queued-high", Priority.HIGH, created_at=2))
    exporting = entry("exporting", created_at=3)
    book.add(exporting)
    exporting.stage = JobStage.EXPORTING
    gpu = entry("gpu", created_at=4)
    book.add(gpu)
    book.move(gpu, JobStage.WAITING_FOR_GPU)

    assert [e.id for e in book.in_order()] == ["exporting", "gpu", "queued-high", "queued-low"]
