"""Fixtures of the core tier: a real, migrated SQLite database per test."""

from __future__ import annotations

import shutil

import pytest

from sweedle_core.db.engine import migrate
from sweedle_core.db.store import Store


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory):
    """One migrated database per session; each test gets a copy (migrating takes ~0.1 s)."""
    path = tmp_path_factory.mktemp("schema") / "template.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
async def store(migrated_db, tmp_path):
    path = tmp_path / "sweedle.db"
    shutil.copyfile(migrated_db, path)
    store = Store.from_url(f"sqlite+aiosqlite:///{path}")
    yield store
    await store.close()
