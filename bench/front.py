"""The cost of the layer in front of every route (`deployments/http/front.py`), per request.

The library query of bench/library.py (``GET /api/assets?search=...&tags=...``, with a key, as
the Studio sends it) goes through the front layer, in process, into an app that answers at
once; and the same requests into that app alone. The difference is the layer's own cost: the
Host and Origin checks, the key's digest compared against every key, the body bound. Keys on
(20 of them, the comparison's worst case), as on a network. ``python -m bench.front``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from deployments.http.front import Front  # noqa: E402
from deployments.http.services import Services  # noqa: E402
from sweedle_core.config import Settings  # noqa: E402

KEYS = [f"swd_bench_key_{i:02d}_0123456789abcdef" for i in range(20)]
REQUESTS = 20_000
PATH = "/api/assets"
QUERY = b"search=crate&tags=wood&page=1&page_size=20"


async def answer(scope: dict, receive: Any, send: Any) -> None:
    """An app that answers at once: what is left is the layer's own time."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def scope() -> dict[str, Any]:
    headers = {
        "host": "127.0.0.1:8000",
        "x-api-key": KEYS[-1],
        "accept": "application/json",
        "user-agent": "bench",
    }
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": QUERY,
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def timings(app: Any, count: int) -> list[float]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        await app(scope(), receive, send)
        seconds.append(time.perf_counter() - start)
    return seconds


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main(requests: int = REQUESTS) -> dict[str, float]:
    settings = Settings(database_url="sqlite+aiosqlite://", api_keys=SecretStr(",".join(KEYS)))
    front = Front(answer, Services.without_ray(settings))
    asyncio.run(timings(front, 1000))  # warm up
    bare = asyncio.run(timings(answer, requests))
    layered = asyncio.run(timings(front, requests))
    figures = {
        "requests": requests,
        "keys": len(KEYS),
        "without_p50_us": percentile(bare, 0.5) * 1e6,
        "with_p50_us": percentile(layered, 0.5) * 1e6,
        "with_p99_us": percentile(layered, 0.99) * 1e6,
        "added_p50_us": (statistics.median(layered) - statistics.median(bare)) * 1e6,
        "added_p99_us": (percentile(layered, 0.99) - percentile(bare, 0.99)) * 1e6,
    }
    return figures


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))


def render(f: dict[str, Any]) -> str:
    return f"""## The layer in front of every route (bench/front.py)

The library query (`GET /api/assets?search=crate&tags=wood`, with a key) through the front
layer in process, {f["requests"]:,} times, against the same requests into an app that answers at
once: the layer's own cost (Host and Origin checks, the key's digest compared in constant time
with each of {f["keys"]} keys, the body bound). Goal: under 1 ms at p50.

| | p50 | p99 |
| --- | --- | --- |
| the layer's added time per request | {f["added_p50_us"]:.1f} µs | {f["added_p99_us"]:.1f} µs |
| with the layer (the answering app included) | {f["with_p50_us"]:.1f} µs | {f["with_p99_us"]:.1f} µs |

Goal met: {"yes" if f["added_p50_us"] < 1000 else "NO"}. Measured with the rest of the bench on
the same 2 cores; the key comparison grows with the number of keys (SHA-256 of the presented
key once, then one constant-time comparison per key), about a microsecond per key here.
"""
