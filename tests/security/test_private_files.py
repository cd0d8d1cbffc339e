"""The service's own data (the file store, the SQLite database) is readable by its user only;
exports into a user's project folder follow the umask like the user's other files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sweedle_core.db.engine import migrate
from sweedle_core.storage.atomic import write_atomic
from sweedle_core.storage.local import LocalStorage


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_stored_files_and_their_folders_are_the_services_own(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data" / "storage")
    storage.check()
    storage.put("asset-1/model.glb", b"glTF")
    source = tmp_path / "upload.png"
    source.write_bytes(b"png")
    storage.put_file("asset-1/input.png", source)
    with storage.workspace("asset-2") as folder:
        assert mode(folder) == 0o700

    assert mode(tmp_path / "data") == 0o700 and mode(tmp_path / "data" / "storage") == 0o700
    assert mode(tmp_path / "data" / "storage" / "asset-1") == 0o700
    for name in ("asset-1/model.glb", "asset-1/input.png"):
        assert mode(tmp_path / "data" / "storage" / name) == 0o600, name


def test_the_database_is_the_services_own(tmp_path: Path) -> None:
    database = tmp_path / "db" / "sweedle.db"

    migrate(f"sqlite+aiosqlite:///{database}")

    assert mode(database) == 0o600 and mode(database.parent) == 0o700


def test_exports_into_a_project_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_atomic(tmp_path / "Assets" / "crate.glb", b"glTF")
    finally:
        os.umask(previous)

    assert mode(tmp_path / "Assets" / "crate.glb") == 0o644
