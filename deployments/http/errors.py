"""Domain errors to HTTP answers: the one place where a status code is chosen."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from deployments.http.front import request_id_of
from sweedle_core import errors
from sweedle_core.schemas import ErrorBody

log = logging.getLogger("ray.serve")

# Most specific first: the first class an error is an instance of decides.
STATUS_CODES: list[tuple[type[errors.SweedleError], int]] = [
    (errors.Unauthorized, 401),
    (errors.Forbidden, 403),
    (errors.RateLimited, 429),
    (errors.UnsupportedImageFormat, 415),
    (errors.ImageTooLarge, 413),
    (errors.ImageRejected, 400),
    (errors.UnsafePath, 403),
    (errors.InvalidInput, 422),
    (errors.NotFound, 404),
    (errors.FeatureDisabled, 404),
    (errors.Conflict, 409),
    (errors.Unavailable, 503),
    (errors.SweedleError, 400),
]

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": description}
    for code, description in {
        400: "the upload is not a usable image (truncated, corrupt, empty)",
        401: "no API key, or an unknown one (send Authorization: Bearer <key> or X-API-Key)",
        403: "the key's scopes do not allow this, or a project path outside the allowed roots",
        404: "no such job or asset (or not one of this key's), its file is not ready, or a "
        "feature this server is not configured for (text-to-3d without TEXT_TO_IMAGE_MODEL)",
        409: "the job is already finished, the asset not yet ready, a file not ours in the way, "
        "or an Idempotency-Key used before with another request",
        413: "the upload has too many bytes or pixels",
        415: "the image format is not PNG, JPEG or WebP",
        422: "a parameter is missing or out of range",
        429: "the key's requests per minute or waiting jobs are used up: see Retry-After",
        503: "a service Sweedle needs is not ready",
    }.items()
}


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": code, "detail": detail}, headers=headers
    )


def _answer(error: errors.SweedleError) -> JSONResponse:
    headers = None
    if isinstance(error, errors.RateLimited):
        headers = {"Retry-After": str(error.retry_after)}
    elif isinstance(error, errors.Unauthorized):
        headers = {"WWW-Authenticate": "Bearer"}
    return error_response(_status_of(error), error.code, error.message, headers)


def domain_error(exc: BaseException) -> errors.SweedleError | None:
    """The Sweedle error behind ``exc``, also when it crossed a Ray hop wrapped in another."""
    original = errors.unwrapped(exc)
    return original if isinstance(original, errors.SweedleError) else None


def _status_of(error: errors.SweedleError) -> int:
    return next(status for cls, status in STATUS_CODES if isinstance(error, cls))


def _validation_detail(problems: list[dict]) -> str:
    parts = []
    for problem in problems:
        where = ".".join(
            str(p) for p in problem.get("loc", ()) if p not in ("body", "query", "path")
        )
        parts.append(f"{where}: {problem.get('msg')}" if where else str(problem.get("msg")))
    return "; ".join(parts)


async def _on_sweedle_error(_: Request, exc: Exception) -> JSONResponse:
    error = domain_error(exc)
    assert error is not None
    return _answer(error)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    return error_response(422, "invalid_input", _validation_detail(list(exc.errors())))


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    """FastAPI's and Starlette's own refusals (a body that is not JSON, an unknown path, a
    method not allowed) in the same shape as ours."""
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), exc.headers)


HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A 500 that says no more than that: the exception's text stays in the log, under the
    request's id, which the answer gives for a bug report."""
    error = domain_error(exc)
    if error is not None:
        return _answer(error)
    request_id = request_id_of(request.scope)
    log.exception("unexpected error (request %s)", request_id, exc_info=exc)
    return JSONResponse(
        status_code=500,
        content={
            "error": "internal",
            "detail": "an unexpected error; the server's log has it under this request id",
            "request_id": request_id,
        },
        # This answer goes out around the front layer (Serve's proxy adds its own).
        headers={"X-Request-ID": request_id} if request.app.state.echo_request_id else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.SweedleError, _on_sweedle_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)
