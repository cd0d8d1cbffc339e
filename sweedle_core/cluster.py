"""What a cluster of more than one node needs of the settings: one database every node reaches
(PostgreSQL, not a SQLite file) and one file store every node sees (STORAGE_URL, or a folder
that is the same folder on every node). Said plainly at start and in `/health` instead of
failing job by job.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from sweedle_core.config import Settings
from sweedle_core.db.engine import sqlite_file
from sweedle_core.storage.atomic import write_atomic

MARKER_NAME = ".sweedle-node-marker"


def uses_sqlite(settings: Settings) -> bool:
    return settings.database_url.startswith("sqlite")


def relative_paths(settings: Settings) -> list[str]:
    """The settings that name a relative path (each node would read it from where it runs)."""
    found = []
    if not settings.storage_url and not Path(settings.storage_dir).is_absolute():
        found.append(f"STORAGE_DIR={settings.storage_dir}")
    path = sqlite_file(settings.database_url)
    if path is not None and not Path(path).is_absolute():
        found.append(f"DATABASE_URL={settings.database_url}")
    return found


def write_marker(storage_dir: Path) -> str:
    """Leave a fresh token in the storage folder; every node must read the same one back."""
    token = secrets.token_hex(8)
    write_atomic(Path(storage_dir) / MARKER_NAME, token.encode())
    return token


def read_marker(storage_dir: Path) -> str | None:
    """The token this node sees in the storage folder (None: no marker, another folder)."""
    try:
        return (Path(storage_dir) / MARKER_NAME).read_text().strip()
    except OSError:
        return None


def cluster_problems(
    settings: Settings, seen: Mapping[str, str | None], token: str | None
) -> list[str]:
    """What is wrong for a cluster whose nodes (by id) read ``seen`` tokens of the marker
    ``token`` written at start (a local folder only); none on a single node."""
    if len(seen) <= 1:
        return []
    nodes = f"this Ray cluster has {len(seen)} nodes"
    problems = []
    if uses_sqlite(settings):
        problems.append(
            f"{nodes} but DATABASE_URL is a SQLite file, which each node would open on its own "
            "disk (and SQLite's locking fails over network file systems): set DATABASE_URL to a "
            "PostgreSQL server every node reaches (postgresql+asyncpg://...)"
        )
    if not settings.storage_url:
        blind = sorted(node[:12] for node, seen_token in seen.items() if seen_token != token)
        if blind:
            problems.append(
                f"{nodes} but the storage folder {settings.storage_dir} (STORAGE_DIR) is not the "
                f"same folder on every node: node(s) {', '.join(blind)} do not see the marker "
                "file written there at start. Set STORAGE_URL=s3://bucket/prefix (object "
                "storage), or mount one shared folder at that path on every node"
            )
    return problems
