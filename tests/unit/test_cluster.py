"""What a cluster of several nodes needs of the settings, said plainly."""

from __future__ import annotations

from pathlib import Path

from sweedle_core.cluster import (
    cluster_problems,
    read_marker,
    relative_paths,
    write_marker,
)
from sweedle_core.config import Settings

POSTGRES = "postgresql+asyncpg://sweedle@db:5432/sweedle"


def test_one_node_needs_nothing(tmp_path: Path) -> None:
    settings = Settings(storage_dir=tmp_path)  # SQLite and a local folder: fine on one machine
    assert cluster_problems(settings, {"node-a": None}, "token") == []


def test_sqlite_on_several_nodes_names_database_url() -> None:
    settings = Settings(database_url="sqlite+aiosqlite:////data/s.db", storage_url="s3://b/p")
    problems = cluster_problems(settings, {"a": None, "b": None}, None)
    assert len(problems) == 1 and "DATABASE_URL" in problems[0] and "PostgreSQL" in problems[0]


def test_a_folder_one_node_cannot_see_names_storage_url(tmp_path: Path) -> None:
    settings = Settings(database_url=POSTGRES, storage_dir=tmp_path)
    token = write_marker(tmp_path)
    assert read_marker(tmp_path) == token
    seen = {"aaaaaaaaaaaaaaaa-head": token, "bbbbbbbbbbbbbbbb-gpu": None}

    problems = cluster_problems(settings, seen, token)

    assert len(problems) == 1
    assert "STORAGE_URL" in problems[0] and "STORAGE_DIR" in problems[0]
    assert "bbbbbbbbbbbb" in problems[0] and "aaaaaaaaaaaa" not in problems[0]


def test_a_shared_folder_or_object_storage_with_postgresql_is_fine(tmp_path: Path) -> None:
    token = write_marker(tmp_path)
    shared = Settings(database_url=POSTGRES, storage_dir=tmp_path)
    assert cluster_problems(shared, {"a": token, "b": token}, token) == []
    s3 = Settings(database_url=POSTGRES, storage_url="s3://assets/sweedle")
    assert cluster_problems(s3, {"a": None, "b": None}, None) == []


def test_relative_paths_are_found() -> None:
    settings = Settings(storage_dir=Path("data/storage"), database_url="sqlite+aiosqlite:///x.db")
    assert relative_paths(settings) == [
        "STORAGE_DIR=data/storage",
        "DATABASE_URL=sqlite+aiosqlite:///x.db",
    ]
    assert relative_paths(Settings(storage_dir=Path("/srv/s"), database_url=POSTGRES)) == []
    assert relative_paths(Settings(storage_url="s3://b", database_url=POSTGRES)) == []


def test_a_missing_marker_reads_as_none(tmp_path: Path) -> None:
    assert read_marker(tmp_path / "elsewhere") is None
