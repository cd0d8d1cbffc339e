"""Who is calling: the API key on every request, its scopes and its request rate.

Routers are included with `authorize` (REST) or `authorize_websocket` (the progress feed) as a
dependency; only /health and the API's own documentation are open. What a key may do follows
from the request: reading (GET, the feed) needs `read`, anything else `write`, and routes under
/api/admin need `admin`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request, Security, WebSocket, WebSocketException
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from deployments.http.services import Services
from sweedle_core.access.keys import Caller, presented_key
from sweedle_core.errors import SweedleError, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="an API key as a bearer token")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")
READING = frozenset({"GET", "HEAD"})
# WebSocket close codes for refusals: 4000 + the HTTP status, as many WebSocket APIs do.
WS_CLOSE = {"unauthorized": 4401, "forbidden": 4403, "rate_limited": 4429}


def services_of(request: Request) -> Services:
    return request.app.state.services


def header_key(headers: Mapping[str, str]) -> str | None:
    """The key a request's headers present (`Authorization: Bearer`, else `X-API-Key`)."""
    return presented_key(headers.get("authorization"), headers.get("x-api-key"))


def _scope_needed(method: str, path: str) -> str:
    if path.startswith("/api/admin/"):
        return "admin"
    return "read" if method in READING else "write"


def _route_path(request: Request) -> str:
    """The route's own path (the app may be mounted under a prefix)."""
    route = request.scope.get("route")
    return getattr(route, "path", request.url.path)


async def _admit(services: Services, presented: str | None, scope: str) -> Caller:
    caller = services.keyring.caller(presented)
    caller.require(scope)
    if caller.name is not None and caller.requests_per_minute > 0:
        # This replica's bucket first (no database round trip for a burst it refuses), then
        # the count every replica shares.
        services.limiter.check(caller.name, caller.requests_per_minute)
        await services.store.request_counts.count(caller.name, caller.requests_per_minute)
    return caller


async def authorize(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> Caller:
    """The caller of a REST route; 401 without a known key, 403 outside its scopes, 429 over
    its rate. Kept on `request.state.caller` for the routes."""
    del bearer  # declared for the OpenAPI schema; read from the header below
    presented = presented_key(request.headers.get("authorization"), header)
    caller = await _admit(
        services_of(request), presented, _scope_needed(request.method, _route_path(request))
    )
    request.state.caller = caller
    return caller


async def authorize_websocket(websocket: WebSocket) -> Caller:
    """The caller of the progress feed: the key in a header or as `?api_key=` (browsers cannot
    set headers on a WebSocket). A refusal is sent as an error event, then the socket closes
    with 4401, 4403 or 4429."""
    presented = presented_key(
        websocket.headers.get("authorization"),
        websocket.headers.get("x-api-key"),
        websocket.query_params.get("api_key"),
    )
    try:
        caller = await _admit(websocket.app.state.services, presented, "read")
    except SweedleError as error:
        await websocket.accept()
        await websocket.send_json({"type": "error", "error": error.code, "detail": error.message})
        raise WebSocketException(code=WS_CLOSE.get(error.code, 1008), reason=error.code) from None
    websocket.state.caller = caller
    return caller


async def current_caller(request: Request) -> Caller:
    caller = getattr(request.state, "caller", None)
    if caller is None:  # a route outside the authorised routers asked for its caller
        raise Unauthorized("this route is not behind the API key check")
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
