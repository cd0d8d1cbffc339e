"""The one place where Sweedle's deployment graph is bound."""

# No `from __future__ import annotations`: Serve reads build_app's annotation to turn the
# config's `args:` into an AppArgs.

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from ray.serve import Application

from deployments.autoscale import backlog_autoscaling
from deployments.cluster_check import refuse_relative_paths
from deployments.export import Exporter
from deployments.generate import Generator
from deployments.ingress import Ingress
from deployments.job_queue import QueueLink
from deployments.preprocess import Preprocessor
from deployments.text_to_image import TextToImage
from sweedle_core.config import Settings
from sweedle_core.db.engine import SQLITE_PREFIX, sqlite_file


class AppArgs(BaseModel):
    """Builder arguments (`args:` in the Serve config); they override the environment."""

    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings fields by name, e.g. {generator_backend: silhouette}",
    )
    generator_replicas: int | None = Field(
        None, ge=1, description="Generator replicas (one per GPU); unset: the config's value"
    )
    generator_num_gpus: float | None = Field(
        None, ge=0, description="GPUs each Generator replica reserves; unset: the config's value"
    )


def build_app(args: AppArgs) -> Application:
    """The Serve application; `args` is the config's `args:` block, validated."""
    given = Settings(**args.settings)
    refuse_relative_paths(given)
    settings = resolve_paths(given)
    painter = TextToImage.bind(settings)
    preprocessor = Preprocessor.bind(settings, painter)
    exporter = Exporter.bind(settings)
    queue = QueueLink(settings, preprocessor, exporter)
    generator = Generator.options(**_generator_options(args, settings)).bind(settings, queue)
    return Ingress.bind(settings, queue, preprocessor, exporter, generator, painter)


def resolve_paths(settings: Settings) -> Settings:
    """Relative paths are taken from where the app is started, the same in every replica."""
    updates: dict[str, Any] = {"storage_dir": settings.storage_dir.resolve()}
    path = sqlite_file(settings.database_url)
    if path is not None and not Path(path).is_absolute():
        updates["database_url"] = SQLITE_PREFIX + str(Path(path).resolve())
    return settings.model_copy(update=updates)


def _generator_options(args: AppArgs, settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {"graceful_shutdown_timeout_s": settings.generator_shutdown_s}
    if args.generator_replicas is not None:
        options["num_replicas"] = args.generator_replicas
    elif settings.generator_max_replicas > 0:
        options["autoscaling_config"] = backlog_autoscaling(settings)
    if args.generator_num_gpus is not None:
        actor_options = dict(Generator.ray_actor_options or {})
        options["ray_actor_options"] = {**actor_options, "num_gpus": args.generator_num_gpus}
    return options
