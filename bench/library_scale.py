"""The asset library's queries as the library grows: 10,000 to 1,000,000 assets, on SQLite and
on PostgreSQL, in process (the SQL and the ORM, without HTTP: `bench/library.py` measures the
app around them).

For each size a fresh database is seeded (`library_seed`, in batches) and each kind of page is
asked for 30 times (the first 5 as warm-up): the plain first page, sorted by name, by vertex
count, page 2000 (by OFFSET, and after the cursor page 1999 gave), a search, a tag, a search
with a tag filter (`library_seed.QUERIES`), some of them as a key sees them (its own assets:
the studio's, nine in ten, or a small key's, one in a hundred), and the first page of the job
history. PostgreSQL
is the server at ``BENCH_POSTGRES_URL`` (default: the local one, trust auth); a database of
its own is made there and dropped after; without a server, only SQLite is measured.

    .venv/bin/python -m bench.library_scale [--assets 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.library_seed import KEYS, QUERIES, STUDIO, seed  # noqa: E402
from sweedle_core.db.library import AssetQuery, JobQuery  # noqa: E402
from sweedle_core.db.store import Store  # noqa: E402

SIZES = (10_000, 100_000)  # `make bench`; a million with --assets (about 10 minutes more)
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/")
DATABASE = "sweedle_library_scale"
ASKS, WARM_UP = 30, 5
PAGES: dict[str, Callable[[int], AssetQuery]] = {
    "plain page": lambda i: AssetQuery(),
    "by name": lambda i: AssetQuery(sort_by="name", sort_order="asc"),
    "by vertex count": lambda i: AssetQuery(sort_by="vertex_count"),
    "page 2000": lambda i: AssetQuery(page=2000),
    "page 2000 by cursor": lambda i: AssetQuery(cursor=CURSORS["page 2000"]),
    "search": lambda i: AssetQuery(search=QUERIES[i % len(QUERIES)][0]),
    "tag": lambda i: AssetQuery(tags=(QUERIES[i % len(QUERIES)][1],)),
    "search + tag": lambda i: AssetQuery(
        search=QUERIES[i % len(QUERIES)][0], tags=(QUERIES[i % len(QUERIES)][1],)
    ),
    "search + tag by name": lambda i: AssetQuery(
        search=QUERIES[i % len(QUERIES)][0],
        tags=(QUERIES[i % len(QUERIES)][1],),
        sort_by="name",
        sort_order="asc",
    ),
}
# Pages asked for with a key's access (``sees``): its own assets only.
KEYED: dict[str, tuple[str, Callable[[int], AssetQuery]]] = {
    "search + tag, the studio's key": (STUDIO, PAGES["search + tag"]),
    "search + tag, a small key's": (KEYS[3], PAGES["search + tag"]),
    "search, a small key's": (KEYS[3], PAGES["search"]),
}
CURSORS: dict[str, str | None] = {}  # the cursor the page before gives, found before timing


async def timings(store: Store) -> dict[str, dict[str, float]]:
    async def ask(call: Callable[[int], Any]) -> dict[str, float]:
        times = []
        for i in range(ASKS):
            start = time.perf_counter()
            await call(i)
            times.append((time.perf_counter() - start) * 1000)
        kept = sorted(times[WARM_UP:])
        return {"p50_ms": statistics.median(kept), "p99_ms": kept[-1]}

    CURSORS["page 2000"] = (await store.library.find(AssetQuery(page=1999), None)).next_cursor
    figures = {
        label: await ask(lambda i, q=query: store.library.find(q(i), None))  # type: ignore[misc]
        for label, query in PAGES.items()
    }
    for label, (sees, query) in KEYED.items():
        figures[label] = await ask(lambda i, q=query, s=sees: store.library.find(q(i), s))  # type: ignore[misc]
    figures["job history"] = await ask(lambda i: store.library.jobs(JobQuery(), None))
    return figures


def measure(url: str, assets: int) -> dict[str, Any]:
    """Seed ``assets`` into the empty database at ``url``, then time its pages."""
    catalogue = seed(url, assets)

    async def run() -> dict[str, Any]:
        store = Store.from_url(url)
        try:
            if store.engine.dialect.name == "postgresql":
                # What autovacuum does soon after a bulk load: statistics, and the visibility
                # map that lets a count read the index alone.
                vacuum = store.engine.execution_options(isolation_level="AUTOCOMMIT")
                async with vacuum.connect() as connection:
                    await connection.execute(text("VACUUM ANALYZE"))
            return await timings(store)
        finally:
            await store.close()

    return {"seed_s": catalogue.seconds, "pages": asyncio.run(run())}


def on_postgres(assets: int) -> dict[str, Any] | None:
    """`measure` on a database of its own on the PostgreSQL server; None without a server."""
    server = make_url(POSTGRES)

    async def admin(statement: str) -> None:
        engine = create_async_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as connection:
                await connection.execute(text(statement))
        finally:
            await engine.dispose()

    try:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {DATABASE}"))
    except (OSError, DBAPIError) as exc:
        print(f"no PostgreSQL at {server.render_as_string()}: {exc}", file=sys.stderr)
        return None
    asyncio.run(admin(f"CREATE DATABASE {DATABASE}"))
    try:
        return measure(server.set(database=DATABASE).render_as_string(False), assets)
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {DATABASE}"))


def main(sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for assets in sizes:
        with tempfile.TemporaryDirectory() as folder:
            sqlite = measure(f"sqlite+aiosqlite:///{folder}/library.db", assets)
        figures[str(assets)] = {"sqlite": sqlite, "postgresql": on_postgres(assets)}
        print(json.dumps({assets: figures[str(assets)]}, indent=2), flush=True)
    return figures


def render(f: dict[str, Any]) -> str:
    sizes = list(f)
    backends = [b for b in ("sqlite", "postgresql") if all(f[n][b] for n in sizes)]
    head = " | ".join(f"{int(n):,} {b}" for b in backends for n in sizes)
    rows = []
    for page in [*PAGES, *KEYED, "job history"]:
        cells = " | ".join(
            f"{f[n][b]['pages'][page]['p50_ms']:.1f} / {f[n][b]['pages'][page]['p99_ms']:.0f}"
            for b in backends
            for n in sizes
        )
        rows.append(f"| {page} | {cells} |")
    seeds = ", ".join(f"{int(n):,} {b} {f[n][b]['seed_s']:.0f} s" for b in backends for n in sizes)
    table = "\n".join(rows)
    from bench.run import machine  # bench.run imports the other benches: not at the top

    return f"""## The library's queries as it grows (bench/library_scale.py)

Machine: {machine()}.
A page of 20 from the library in process (SQL and ORM, no HTTP), p50 / p99 in ms over 25 asks
after 5 of warm-up, on databases the bench seeds in batches ({seeds}). PostgreSQL is vacuumed
and analysed after the load, as autovacuum would soon do.

| page | {head} |
| --- | {" | ".join("---" for _ in backends for _ in sizes)} |
{table}
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, nargs="+", default=list(SIZES))
    result = main(tuple(parser.parse_args().assets))
    print(render(result))
