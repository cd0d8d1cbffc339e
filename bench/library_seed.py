"""The library benchmark's data: completed assets (10,000 by default, up to a million), seeded
straight into the database in batches.

Names like "oak chair 0421", "stone lantern", "low-poly tree"; two or three tags each from a
vocabulary of 30; image and text sources; vertex counts from 2,000 to 200,000; creation times
over a year; each asset with its completed generation job. Seeded from a fixed random seed, so
every run has the same library and each query's total is known beforehand.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert

from sweedle_core.db.engine import make_engine, migrate
from sweedle_core.db.models import Asset, GenerationJob, Tag, asset_tags
from sweedle_core.params import GenerationParams

ASSETS = 10_000
# Names are "[style] [material] object [number]": "oak chair 0421", "stone lantern", "low-poly tree";
# each asset is tagged with its object's category, its style, and its material's tag or an extra.
CATEGORIES = {
    "furniture": "chair table stool shelf bench",
    "lighting": "lantern lamp torch",
    "nature": "tree bush flower",
    "vehicle": "cart boat",
    "weapon": "sword shield axe",
    "building": "house tower",
    "prop": "barrel",
    "decor": "statue",
}
KINDS = {
    "wood": "oak pine bamboo",
    "stone": "stone marble",
    "metal": "iron brass copper",
    "glass": "glass",
    "ceramic": "clay",
}
OBJECTS = {o: category for category, names in CATEGORIES.items() for o in names.split()}
MATERIALS = {m: kind for kind, names in KINDS.items() for m in names.split()}
STYLES = (
    "low-poly stylized realistic medieval sci-fi fantasy rustic modern hand-painted game-ready"
).split()
EXTRAS = "draft hero background outdoor indoor kitchen garden".split()
# The API keys assets belong to: most to the studio's, a tenth spread over ten others (about
# one in a hundred each), as with keys each caller's pages hold its own assets only.
STUDIO, KEYS = "studio", [f"key-{i}" for i in range(10)]
# 8 categories + 5 materials + 10 styles + 7 extras: a vocabulary of 30 tags.
VOCABULARY = sorted({*OBJECTS.values(), *MATERIALS.values(), *STYLES, *EXTRAS})
# (search, tag): each matches tens to hundreds of the 10,000 assets.
QUERIES = [("chair", "rustic"), ("stone", "lighting"), ("tree", "low-poly"), ("oak", "furniture")]


BATCH = 5_000  # assets generated and written at a time: memory stays flat at a million


@dataclass
class Catalogue:
    """What was seeded: the total each of `QUERIES` must answer, counted as the rows were made
    (the rows themselves are not kept)."""

    totals: dict[tuple[str, str], int] = field(default_factory=lambda: dict.fromkeys(QUERIES, 0))
    seconds: float = 0.0

    def count(self, name: str, tags: list[str]) -> None:
        for search, tag in QUERIES:
            s = search.lower()
            if tag in tags and (s in name.lower() or any(s in t for t in tags)):
                self.totals[search, tag] += 1

    def total(self, search: str, tag: str) -> int:
        return self.totals[search, tag]


def _asset(rng: random.Random, now: datetime, job_params: dict) -> tuple[dict, list[str]]:
    material = rng.choice(list(MATERIALS)) if rng.random() < 0.8 else None
    obj = rng.choice(list(OBJECTS))
    style = rng.choice(STYLES)
    words = [style] * (rng.random() < 0.2) + [material] * bool(material) + [obj]
    name = " ".join(words) + (f" {rng.randrange(10_000):04d}" if rng.random() < 0.5 else "")
    tags = [OBJECTS[obj], style]  # two or three tags
    if material and rng.random() < 0.6:
        tags.append(MATERIALS[material])
    elif rng.random() < 0.5:
        tags.append(rng.choice(EXTRAS))
    created = now - timedelta(seconds=rng.uniform(0, 365 * 86_400))
    vertices = rng.randint(2_000, 200_000)
    asset_id = f"{rng.getrandbits(128):032x}"
    text = rng.random() < 0.15
    row = {
        "id": asset_id,
        "name": name,
        "source_type": "text" if text else "image",
        "status": "completed",
        "original_filename": None if text else f"{obj}_{rng.randrange(1000)}.jpg",
        "input_path": f"{asset_id}/input.png",
        "model_path": f"{asset_id}/model.glb",
        "model_format": "glb",
        "thumbnail_path": f"{asset_id}/thumbnail.png",
        "vertex_count": vertices,
        "face_count": 2 * vertices,
        "generator": "silhouette",
        "texture_method": "image_projection",
        "prompt": f"a {name}" if text else None,
        "lods": [
            {
                "index": i,
                "level": level,
                "faces": int(2 * vertices * level),
                "vertices": int(vertices * level),
                "file": f"lods/lod{i}.glb",
            }
            for i, level in enumerate((1.0, 0.5, 0.25, 0.1))
        ],
        "validation": {"ok": True, "issues": []},
        "generation_params": job_params,
        "metadata_": {},
        "owner": STUDIO if rng.random() < 0.9 else rng.choice(KEYS),
        "created_at": created,
        "updated_at": created + timedelta(seconds=8),
    }
    return row, list(dict.fromkeys(tags))


def seed(url: str, assets: int = ASSETS, rng_seed: int = 11) -> Catalogue:
    """A migrated database of ``assets`` completed assets, each with its tags and its completed
    job, written by bulk inserts (executemany) of `BATCH` assets at a time rather than one API
    call each. Triggers and indexes the migrations made are filled as the rows go in."""
    start = time.perf_counter()
    migrate(url)
    rng = random.Random(rng_seed)
    now = datetime.now(timezone.utc)
    params = GenerationParams().model_dump()
    tag_ids = {name: i for i, name in enumerate(VOCABULARY, start=1)}
    catalogue = Catalogue()

    async def write() -> None:
        engine = make_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    insert(Tag),
                    [{"id": i, "name": n, "created_at": now} for n, i in tag_ids.items()],
                )
            for first in range(0, assets, BATCH):
                made = [_asset(rng, now, params) for _ in range(min(BATCH, assets - first))]
                for row, tags in made:
                    catalogue.count(row["name"], tags)
                async with engine.begin() as connection:
                    await connection.execute(insert(Asset), [row for row, _ in made])
                    await connection.execute(
                        insert(GenerationJob), [_job(rng, row, params) for row, _ in made]
                    )
                    await connection.execute(
                        insert(asset_tags),
                        [
                            {"asset_id": row["id"], "tag_id": tag_ids[t]}
                            for row, tags in made
                            for t in tags
                        ],
                    )
        finally:
            await engine.dispose()

    asyncio.run(write())
    catalogue.seconds = time.perf_counter() - start
    return catalogue


def _job(rng: random.Random, asset: dict, params: dict) -> dict:
    """The completed generation job that made ``asset``."""
    return {
        "id": f"{rng.getrandbits(128):032x}",
        "asset_id": asset["id"],
        "status": "completed",
        "stage": "exporting",
        "progress": 1.0,
        "message": "completed",
        "priority": "normal",
        "params": params,
        "timings": {"generate_s": 0.5, "export_s": 2.4},
        "attempts": 1,
        "worker": "bench",
        "created_at": asset["created_at"],
        "started_at": asset["created_at"] + timedelta(seconds=1),
        "completed_at": asset["updated_at"],
        "updated_at": asset["updated_at"],
    }
