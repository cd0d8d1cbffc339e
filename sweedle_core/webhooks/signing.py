"""The webhook signature: HMAC-SHA256 over a timestamp and the body (Stripe's scheme).

Every webhook request carries the header::

    X-Sweedle-Signature: t=<timestamp>,v1=<signature>

- ``timestamp`` is the time of the attempt, in whole seconds since the Unix epoch (UTC). Each
  retry is signed afresh, so it carries its own timestamp.
- ``signature`` is the lowercase hex HMAC-SHA256, keyed with the server's ``WEBHOOK_SECRET``
  (its UTF-8 bytes), of the bytes ``<timestamp>.<body>``: the timestamp in decimal ASCII, one
  ``.``, then the raw request body exactly as received (before any JSON parsing).

To check a request, a receiver:

1. splits the header on ``,`` and each part on the first ``=``; takes ``t`` and every ``v1``
   (unknown keys are ignored, so new schemes can be added beside ``v1``);
2. rejects the request if ``t`` is more than the tolerance (300 s by default) away from its own
   clock, in either direction: the timestamp is inside the signed bytes, so a captured request
   cannot be replayed once it is stale, nor its timestamp changed;
3. computes the HMAC as above and compares it with each ``v1`` in constant time
   (``hmac.compare_digest``); one match accepts the request.

A receiver should also drop a request whose ``X-Sweedle-Delivery`` id it has already handled:
delivery is at least once, so the same delivery may arrive more than once.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Sweedle-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300.0


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Sweedle-Signature`` value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    return f"t={int(timestamp)},{SCHEME}={_digest(secret, body, int(timestamp))}"


def _parse(header: str) -> tuple[int, list[str]] | None:
    """The timestamp and the v1 signatures of a header; None when it is malformed."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return None
        if key == "t":
            # Digits only: int() would also take "+5", " 5" or "1_000".
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return None
            timestamp = int(value)
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when ``header`` signs ``body`` under ``secret`` with a timestamp within
    ``tolerance_s`` of ``now`` (default: the current time). Never raises: any malformed input is
    simply not a valid signature.
    """
    try:
        parsed = _parse(header)
        if parsed is None:
            return False
        timestamp, signatures = parsed
        now = time.time() if now is None else now
        if abs(now - timestamp) > tolerance_s:
            return False
        expected = _digest(secret, bytes(body), timestamp).encode()
        # Every candidate is compared, so the time taken says nothing about which one matched.
        matches = [hmac.compare_digest(expected, s.encode()) for s in signatures if s.isascii()]
        return any(matches)
    except Exception:  # a receiver's check must answer, not crash, on hostile input
        return False
