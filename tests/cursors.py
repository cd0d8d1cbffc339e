"""Paging cursors as a client could edit them."""

from __future__ import annotations

import base64
import json
from typing import Any


def forged(cursor: str, keys: list[Any]) -> str:
    """``cursor`` with its sort keys replaced: what a client editing one sends."""
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    text = json.dumps({**data, "k": keys}).encode()
    return base64.urlsafe_b64encode(text).rstrip(b"=").decode()
