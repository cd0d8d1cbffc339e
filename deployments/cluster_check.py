"""Looking at the Ray cluster for `sweedle_core.cluster`: how many nodes, and whether each sees
the marker the queue wrote into the storage folder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sweedle_core.cluster import cluster_problems, read_marker, relative_paths
from sweedle_core.config import Settings

NODE_ANSWER_S = 30.0


@ray.remote(num_cpus=0)
def _marker_seen(storage_dir: str) -> str | None:
    return read_marker(Path(storage_dir))


def alive_nodes() -> list[str]:
    return [node["NodeID"] for node in ray.nodes() if node["Alive"]]


async def check_cluster(settings: Settings, token: str | None) -> tuple[int, list[str]]:
    """How many nodes are alive, and the cluster's problems with ``settings`` (none on one
    node)."""
    nodes = await asyncio.to_thread(alive_nodes)
    if len(nodes) <= 1 or settings.storage_url:  # no folder to look for on each node
        return len(nodes), cluster_problems(settings, dict.fromkeys(nodes, token), token)
    refs = [
        _marker_seen.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
        ).remote(str(settings.storage_dir))
        for node in nodes
    ]
    answers = await asyncio.gather(
        *(asyncio.wait_for(ref, NODE_ANSWER_S) for ref in refs), return_exceptions=True
    )
    for ref, answer in zip(refs, answers, strict=True):
        if isinstance(answer, BaseException):  # a node that died or cannot run the check
            ray.cancel(ref, force=True)
    seen = {n: a if isinstance(a, str) else None for n, a in zip(nodes, answers, strict=True)}
    return len(nodes), cluster_problems(settings, seen, token)


def refuse_relative_paths(settings: Settings) -> None:
    """On a cluster of several nodes, a relative path means a different place on each: refused
    when the app is built."""
    if not ray.is_initialized() or len(alive_nodes()) <= 1:
        return
    if found := relative_paths(settings):
        raise ValueError(
            f"relative paths are refused on a Ray cluster of several nodes ({', '.join(found)}): "
            "use absolute paths to one shared folder, or better STORAGE_URL=s3://bucket/prefix "
            "and DATABASE_URL=postgresql+asyncpg://..."
        )
