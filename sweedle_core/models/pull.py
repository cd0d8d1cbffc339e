"""Pulling models: what is missing or damaged is fetched, what is there is checked, and what
cannot be reached is said plainly with what runs instead. Never waits on an unreachable host."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from sweedle_core.errors import one_line
from sweedle_core.models import hub
from sweedle_core.models.catalog import Model

Outcome = Literal["present", "fetched", "failed"]


@dataclass(frozen=True)
class Pulled:
    model: Model
    outcome: Outcome
    detail: str  # where it is, or why it could not be had and what runs instead


def pull(
    models: Sequence[Model],
    progress: bool = True,
    say: Callable[[str], None] = print,
    thorough: bool = False,
) -> list[Pulled]:
    """Make each model present and intact on disk, in order; one failure does not stop the
    rest. ``say`` hears a line before each download (the libraries draw their own progress).
    ``thorough`` reads every file again for its checksum, also those that passed before."""
    pulled = []
    for model in models:
        try:
            pulled.append(_pull_one(model, progress, say, thorough))
        except Exception as exc:  # a misconfigured model, a library missing: say it, go on
            pulled.append(_failed(model, one_line(exc)))
    return pulled


def _pull_one(model: Model, progress: bool, say: Callable[[str], None], thorough: bool) -> Pulled:
    found = model.source.find()
    damaged = model.source.damaged(thorough) if found is not None else []
    if found is not None and not damaged:
        return Pulled(model, "present", str(found))
    url = model.source.url()
    if url is None:  # a local path: nothing can be fetched
        return _failed(model, f"{model.source.describe()} is missing")
    if hub.offline() and url.startswith(hub.endpoint()):
        return _failed(model, "HF_HUB_OFFLINE is set, so nothing is fetched from the hub")
    problem = hub.unreachable(url)
    if problem is not None:
        return _failed(model, f"cannot fetch {model.source.describe()}: {problem}")
    why = f"{len(damaged)} damaged file(s), fetching them again" if damaged else "fetching"
    say(f"{model.name}: {why}: {model.source.describe()}, {model.size}")
    return Pulled(model, "fetched", str(model.source.fetch(progress)))


def _failed(model: Model, why: str) -> Pulled:
    return Pulled(model, "failed", f"{why}; without it: {model.without}")
