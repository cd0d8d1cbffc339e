"""Bodies bounded before any work, through the real app (Ray's proxy, the Ingress replica): a
200 MB upload without a key is refused while the Ingress's memory and temp disk stay flat."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import httpx
import psutil

from tests.app_settings import KEYS

MB = 1024 * 1024
# Measured here (2 cores), after a warm-up request: ten 200 MB uploads refused (without a key,
# over the limit with its size said, or without its size) moved the Ingress's RSS by under
# 1 MB and the temp folder by nothing; each answer came within 0.2 s.
RSS_BOUND = 16 * MB
DISK_BOUND = 16 * MB


def ingress_process() -> psutil.Process:
    found = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "Ingress" in " ".join(p.info["cmdline"] or [])
    ]
    assert found, "no Ingress replica process"
    return found[0]


HEAD = b'--b\r\nContent-Disposition: form-data; name="file"; filename="huge.png"\r\n\r\n'


def upload(megabytes: int) -> Iterator[bytes]:
    """A multipart upload of one photo of ``megabytes`` MB, streamed (no Content-Length)."""
    yield HEAD
    chunk = b"\x89" * MB
    for _ in range(megabytes):
        yield chunk


def post(url: str, headers: dict[str, str]) -> int | None:
    """POST the 200 MB upload; the status, or None when the server hung up without one (a
    server that answers early and closes may cut an upload short: that is the point)."""
    try:
        response = httpx.post(
            url,
            content=upload(200),
            headers={"content-type": "multipart/form-data; boundary=b", **headers},
            timeout=120,
        )
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        return None
    return response.status_code


def used_temp_bytes() -> int:
    return shutil.disk_usage(tempfile.gettempdir()).used


def test_huge_uploads_are_refused_while_the_ingress_stays_flat(client) -> None:
    """Without a key (401), with one but over the limit (413, its size said) and without
    saying its size (411): none of the 200 MB is read, however often it is tried."""
    ingress = ingress_process()
    url = f"{client.base_url}/api/generation/image-to-3d"
    key = {"X-API-Key": KEYS["alice"][0]}
    sized = {**key, "Content-Length": str(len(HEAD) + 200 * MB)}
    post(url, {})  # first-request allocations aside
    rss, disk = ingress.memory_info().rss, used_temp_bytes()

    expected = [401, 413, 411] * 3
    answers = [post(url, headers) for _ in range(3) for headers in ({}, sized, key)]

    # None: the server answered and hung up before the client was done sending.
    assert all(got in (want, None) for got, want in zip(answers, expected, strict=True)), answers
    assert answers.count(None) < len(answers) / 2, answers
    grown = ingress.memory_info().rss - rss
    assert grown < RSS_BOUND, f"the Ingress grew by {grown / MB:.0f} MB"
    assert used_temp_bytes() - disk < DISK_BOUND
