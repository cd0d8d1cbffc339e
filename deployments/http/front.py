"""The layer in front of every route, before FastAPI reads anything of a request.

Every request gets an id (the client's ``X-Request-ID`` when it sends a plain one, else a new
one), sent back in ``X-Request-ID`` and logged with any unexpected error; behind Ray Serve's
proxy, which gives every request such an id and sends it back itself, the proxy's is used.

Then, in order:

1. the ``Host`` header must name this server, and a browser ``Origin`` must be allowed to
   change things (`sweedle_core.access.exposure`);
2. an ``/api/`` request must carry a valid key when keys are on (FastAPI reads a body before it
   runs a route's dependencies: without this, a caller with no key could make the server read
   a 200 MB upload just to be told 401);
3. the body is bounded: multipart bodies (photo uploads) at every view's ``MAX_UPLOAD_MB``,
   anything else at ``MAX_REQUEST_KB``. A ``Content-Length`` over the limit is a 413 at once;
   an upload without one is a 411 (behind Serve's proxy a streamed body reaches the replica
   whether or not it is read); any other body streamed past the limit is cut off with a 413.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deployments.http.auth import header_key
from deployments.http.services import Services
from sweedle_core.errors import Unauthorized
from sweedle_core.params import VIEWS

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REQUEST_ID = "x-request-id"
_SCOPE_KEY = "sweedle.request_id"
_PLAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A multipart body's form fields and part headers, beyond its files.
MULTIPART_MARGIN = 256 * 1024


class Front:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: ASGIApp, services: Services, echo_request_id: bool = True) -> None:
        """``echo_request_id=False`` behind a proxy that answers with the id itself."""
        self.app = app
        self.services = services
        self.echo_request_id = echo_request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = _given_id(headers.get(REQUEST_ID)) or uuid.uuid4().hex
        scope[_SCOPE_KEY] = request_id
        if self.echo_request_id:
            send = _with_id(send, request_id)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _refuse(scope, receive, send, *refusal)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        limit = self.body_limit(headers)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _refuse(scope, receive, send, *_too_large(limit))
            return
        if not length and _multipart(headers):
            # Behind Serve's proxy a streamed body is shipped to the replica whether or not it
            # is read: an upload must say its size, so one that is too large is refused unread.
            await _refuse(scope, receive, send, *LENGTH_REQUIRED)
            return
        await _Bounded(self.app, limit)(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str, str] | None:
        exposure = self.services.exposure
        host = headers.get("host")
        if not exposure.allows_host(host):
            return (
                400,
                "host_not_allowed",
                f"this server does not answer to the name {host!r} (ALLOWED_HOSTS lists the "
                "names it answers to besides its own)",
            )
        origin = headers.get("origin")
        changing = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
        if origin is not None and changing and not exposure.allows_origin(origin, host):
            return (
                403,
                "origin_not_allowed",
                f"requests from pages at {origin} may not change anything here or follow the "
                "progress feed (CORS_ORIGINS lists the origins that may)",
            )
        path: str = scope["path"]
        if scope["type"] == "http" and path.startswith("/api/") and scope["method"] != "OPTIONS":
            try:  # the key only: its scopes and rate are the route's check
                self.services.keyring.caller(header_key(headers))
            except Unauthorized as exc:
                return 401, exc.code, exc.message
        return None

    def body_limit(self, headers: Headers) -> int:
        """The most bytes a request's body may have."""
        settings = self.services.settings
        if _multipart(headers):
            return settings.max_upload_bytes * len(VIEWS) + MULTIPART_MARGIN
        return settings.max_request_kb * 1024


class _Bounded:
    """Runs the app with a ``receive`` that cuts the body off past ``limit`` bytes: the client
    gets a 413 and the app sees the client gone (its own answer is dropped)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False
        cut = False

        async def bounded_receive() -> Message:
            nonlocal received, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    cut = True
                    if not started:
                        await _too_large_response(self.limit)(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut:
                return  # the 413 went out instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, bounded_receive, guarded_send)


LENGTH_REQUIRED = (
    411,
    "length_required",
    "a photo upload must say its size (Content-Length), as browsers, curl and HTTP libraries "
    "do when they send a form or a file",
)


def _multipart(headers: Headers) -> bool:
    return headers.get("content-type", "").lower().startswith("multipart/form-data")


def request_id_of(scope: Scope) -> str:
    """The id the front layer gave this request ("-" for one that did not pass through it)."""
    return str(scope.get(_SCOPE_KEY, "-"))


def _given_id(value: str | None) -> str | None:
    """A client's request id, if it is short and plain enough to log and echo."""
    return value if value is not None and _PLAIN_ID.fullmatch(value) else None


def _with_id(send: Send, request_id: str) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [
                (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
            ]
            message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
        await send(message)

    return sending


def _too_large(limit: int) -> tuple[int, str, str]:
    size = f"{limit / (1024 * 1024):.1f} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return (
        413,
        "payload_too_large",
        f"the request body is over {size}, the most this server reads for it (photos: "
        "MAX_UPLOAD_MB per view; other bodies: MAX_REQUEST_KB)",
    )


def _too_large_response(limit: int) -> JSONResponse:
    status, code, detail = _too_large(limit)
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, code: str, detail: str
) -> None:
    """Answer ``status`` with the API's error body; a WebSocket is accepted only to be told
    why, then closed with 4000 + the status (as the feed's own refusals are)."""
    body: dict[str, Any] = {"error": code, "detail": detail}
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps({"type": "error", **body})})
        await send({"type": "websocket.close", "code": 4000 + status})
        return
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)
