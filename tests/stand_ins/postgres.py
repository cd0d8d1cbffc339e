"""A fresh PostgreSQL database for an app under test, on the server TEST_DATABASE_URL names
(CI: 127.0.0.1:5432); the test skips, saying why, without one."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine


def _server_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url:
        pytest.skip("PostgreSQL: TEST_DATABASE_URL is not set")
    return url


def _admin(url: str, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""

    async def run() -> None:
        engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(run())


@contextmanager
def fresh_database(prefix: str = "sweedle_app") -> Iterator[str]:
    """The URL of a new database, dropped afterwards."""
    server = _server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        _admin(server, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # unreachable server: say so plainly
        pytest.skip(f"PostgreSQL at {make_url(server).render_as_string()} is unusable: {exc}")
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
