"""The CPU stages of a job, pushed to worker pools: preprocessing before the GPU stage, and
after it the export (the mesh made from the generator's shape, painted or not, and its files).

Each pool has a fixed number of slots; jobs wait for one in priority order. A stage whose worker
dies runs again (`attempts`); a shape lost from the store sends the job back to a generator, as
does a textured mesh that goes to a painter. Owned by one event loop; not thread-safe.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sweedle_core.db.models import BACKGROUND_METHOD_LENGTH
from sweedle_core.errors import GenerationFailed, ShapeLost, unwrapped
from sweedle_core.jobs.attempts import StageAttempts, describe_error
from sweedle_core.jobs.book import JobEntry
from sweedle_core.jobs.holds import ClaimLost
from sweedle_core.jobs.parts import QueueParts
from sweedle_core.jobs.states import JobStage, JobStatus
from sweedle_core.jobs.tickets import ExportTicket, PrepareTicket, Workers
from sweedle_core.storage.layout import painted_key

log = logging.getLogger(__name__)


class CpuStages:
    def __init__(
        self,
        parts: QueueParts,
        workers: Workers,
        attempts: StageAttempts,
        lose: Callable[[JobEntry], None],
    ) -> None:
        """``lose`` drops a job whose claim is no longer this queue's (`JobRoster.lose`)."""
        self._parts = parts
        self.workers = workers
        self._attempts = attempts
        self._lose = lose
        self._preprocessing = 0
        self._holding_exports = False

    # --- preprocessing ------------------------------------------------------------------

    def pump(self) -> None:
        """Send waiting jobs to preprocessing, highest priority first, up to the slot count."""
        while (
            not self._parts.tasks.stopping
            and self._preprocessing < self._parts.settings.preprocess_concurrency
        ):
            entry = self._parts.book.pop(JobStage.QUEUED)
            if entry is None:
                return
            self._preprocessing += 1
            self._parts.ledger.close_stage(entry)
            entry.stage = JobStage.PREPROCESSING
            self._parts.tasks.spawn(self._preprocess(entry))

    async def _preprocess(self, entry: JobEntry) -> None:
        try:
            await self._parts.ledger.enter(
                entry, JobStage.PREPROCESSING, fraction=0.0, message="preparing image"
            )
            try:
                outcome = await self._attempts.run(
                    entry,
                    JobStage.PREPROCESSING,
                    lambda: self.workers.preprocess(PrepareTicket.for_job(entry)),
                )
            except ClaimLost:
                self._lose(entry)
                return
            except Exception as exc:  # any failure of the stage fails the job, not the queue
                if entry.cancel_requested:
                    await self._parts.ledger.cancelled(entry)
                else:
                    await self._parts.ledger.failed(
                        entry, self._attempts.failure("preprocessing", exc)
                    )
                return
            entry.timings["preprocess_s"] = round(outcome.seconds, 4)
            entry.timings["ready_at"] = time.time()
            if entry.cancel_requested:
                await self._parts.ledger.cancelled(entry)
                return
            await self._parts.ledger.enter(
                entry,
                JobStage.WAITING_FOR_GPU,
                fraction=1.0,
                message="waiting for a generator",
                background_method=outcome.background[:BACKGROUND_METHOD_LENGTH],
            )
            await self._parts.gpu.wake()
            await self._parts.gpu.fail_if_no_generator()
        finally:
            self._preprocessing -= 1
            self.pump()

    # --- the export ---------------------------------------------------------------------

    def queue_export(self, entry: JobEntry) -> None:
        self._parts.exports.push(entry)
        self._pump_exports()

    def hold_exports(self) -> None:
        """Queue exports without sending them to the pool until `release_exports` (a rebuild
        puts every resumed job in the lane first, then they go by priority)."""
        self._holding_exports = True

    def release_exports(self) -> None:
        self._holding_exports = False
        self._pump_exports()

    def _pump_exports(self) -> None:
        """Send generated jobs to the CPU pool, highest priority first, up to its slots."""
        if self._holding_exports:
            return
        while not self._parts.tasks.stopping and (entry := self._parts.exports.take()) is not None:
            if self._parts.book.get(entry.id) is not entry or entry.stage is not JobStage.EXPORTING:
                self._parts.exports.done()  # finished (cancelled) while it waited
                continue
            if self._parts.tasks.spawn(self._export(entry)) is None:
                self._parts.exports.done()

    async def _export(self, entry: JobEntry) -> None:
        try:
            await self._run_export(entry)
        finally:
            self._parts.exports.done()
            self._pump_exports()

    async def _run_export(self, entry: JobEntry) -> None:
        paint = self._paint_next(entry)
        entry.message = "making the mesh"
        self._parts.ledger.publish("progress", entry)
        try:
            outcome = await self._attempts.run(
                entry,
                JobStage.EXPORTING,
                lambda: self.workers.export(ExportTicket.for_job(entry, paint=paint)),
            )
        except ClaimLost:
            self._lose(entry)
            return
        except Exception as exc:
            if entry.cancel_requested:
                await self._parts.ledger.cancelled(entry)
            elif not await self._regenerate_lost_shape(entry, exc):
                # The CPU stage is the generation's second half: no surface is its failure.
                failed = unwrapped(exc)
                ours = isinstance(failed, (GenerationFailed, ShapeLost))
                await self._parts.ledger.failed(
                    entry, self._attempts.failure("generation" if ours else "export", exc)
                )
            return
        finish_s = entry.timings.get("finish_s", 0.0) if entry.paint_visits else 0.0
        entry.timings["finish_s"] = round(finish_s + outcome.finish_s, 4)
        if outcome.paint and not entry.cancel_requested:
            entry.paint_visits += 1
            entry.progress_base = entry.progress  # the trip's progress runs on from here
            await self._parts.gpu.requeue(entry, "waiting for a GPU to paint the texture")
            return
        entry.timings["export_s"] = round(outcome.seconds, 4)
        if entry.cancel_requested:
            await self._parts.ledger.cancelled(entry)
            return
        entry.progress = 1.0
        entry.message = "completed"
        asset = {
            "model_path": outcome.model_path,
            "thumbnail_path": outcome.thumbnail_path,
            "vertex_count": outcome.vertex_count,
            "face_count": outcome.face_count,
            "texture_method": outcome.texture,
            "lods": outcome.lods,
            "validation": outcome.validation,
        }
        if outcome.generator is not None:  # what ran, which a fallback makes differ from the
            asset["generator"] = outcome.generator  # backend named at submission
        if not entry.input_path:  # a text-to-3d job's painted image, stored by now
            asset["input_path"] = painted_key(entry.asset_id)

        await self._parts.ledger.finish(
            entry, JobStatus.COMPLETED, "asset_ready", asset_fields=asset
        )

    async def _regenerate_lost_shape(self, entry: JobEntry, exc: BaseException) -> bool:
        """A shape gone from the store sends the job back to a generator (its GPU stage runs
        again, counted as an attempt); True when it did."""
        if not isinstance(unwrapped(exc), ShapeLost):
            return False
        attempt = self._attempts.next_attempt(entry, JobStage.GENERATING)
        if attempt is None:
            return False
        log.warning("job %s: %s", entry.id, describe_error(exc))
        await self._parts.gpu.requeue(
            entry,
            "requeued: its generated shape was lost; attempt "
            f"{attempt} of {self._parts.settings.stage_attempts}",
            retries=dict(entry.retries),
        )
        return True

    def _paint_next(self, entry: JobEntry) -> bool:
        """Whether a textured job's mesh goes to a painter: once at most, and not when every
        generator that said so has none (before any said, it may go; one without a painter
        sends it back unpainted)."""
        wanted = bool(entry.params.get("texture")) and entry.paint_visits == 0
        return wanted and self._parts.generators.can_paint() is not False
