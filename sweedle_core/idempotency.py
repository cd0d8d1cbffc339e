"""Idempotency-Key: what identifies a key and the request it was first used with.

A key belongs to the API key that sent it (two keys may use the same Idempotency-Key without
meeting), and a request is the bytes that define it: the upload and every option.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple


class Idempotency(NamedTuple):
    """An Idempotency-Key as stored: ``record_id`` names the key of one owner, ``request_hash``
    the request it was first used with."""

    record_id: str
    request_hash: str


class IdempotencyTaken(Exception):
    """Another request recorded the same Idempotency-Key first (the caller reads it again)."""


def idempotency(owner: str | None, key: str, *request_parts: bytes) -> Idempotency:
    record = hashlib.sha256(f"{owner or ''}\x00{key}".encode()).hexdigest()
    digest = hashlib.sha256()
    for part in request_parts:
        # Length-prefixed, so that moving bytes from one part to the next changes the hash.
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return Idempotency(record, digest.hexdigest())
