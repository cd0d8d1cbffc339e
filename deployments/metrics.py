"""Ray metrics: they show on the Ray dashboard and its Prometheus endpoint."""

from __future__ import annotations

from ray.util import metrics

_STAGE_BOUNDARIES = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600]


class RayQueueMetrics:
    """The queue's figures: depth per priority, jobs by status, stage durations."""

    def __init__(self) -> None:
        self.depth = metrics.Gauge(
            "sweedle_queue_depth",
            description="Jobs waiting (queued or waiting for a generator), per priority.",
            tag_keys=("priority",),
        )
        self.active = metrics.Gauge(
            "sweedle_jobs_active",
            description="Active jobs per status (pending, processing).",
            tag_keys=("status",),
        )
        self.finished = metrics.Counter(
            "sweedle_jobs_finished",
            description="Jobs that reached a final status, per status.",
            tag_keys=("status",),
        )
        self.stage = metrics.Histogram(
            "sweedle_stage_seconds",
            description="Wall time jobs spent in each stage.",
            boundaries=_STAGE_BOUNDARIES,
            tag_keys=("stage",),
        )

    def record_queue(self, depth: dict[str, int], active: dict[str, int]) -> None:
        for priority, count in depth.items():
            self.depth.set(count, tags={"priority": priority})
        for status, count in active.items():
            self.active.set(count, tags={"status": status})

    def record_stage(self, stage: str, seconds: float) -> None:
        self.stage.observe(seconds, tags={"stage": stage})

    def record_finished(self, status: str) -> None:
        self.finished.inc(1, tags={"status": status})


class GeneratorMetrics:
    """A generator replica's time: busy (a job from claim to hand-off) and in the GPU stage
    proper. The GPU seconds' rate is the GPU's duty cycle; busy minus GPU is what the replica
    spends around it (reading the image, storing the shape)."""

    def __init__(self, worker: str) -> None:
        self.tags = {"worker": worker}
        self.busy = metrics.Counter(
            "sweedle_generator_busy_seconds",
            description="Seconds a generator replica spent on jobs (claim to hand-off).",
            tag_keys=("worker",),
        )
        self.gpu = metrics.Counter(
            "sweedle_generator_gpu_seconds",
            description="Seconds a generator replica spent in the GPU stage (generate_shape).",
            tag_keys=("worker",),
        )
        self.jobs = metrics.Counter(
            "sweedle_generator_jobs",
            description="Generations run by a generator replica.",
            tag_keys=("worker",),
        )

    def record(self, seconds: float, gpu_seconds: float) -> None:
        self.busy.inc(seconds, tags=self.tags)
        if gpu_seconds > 0:
            self.gpu.inc(gpu_seconds, tags=self.tags)
        self.jobs.inc(1, tags=self.tags)
