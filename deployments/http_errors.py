"""Domain errors to HTTP answers: the one place where a status code is chosen."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from sweedle_core import errors

log = logging.getLogger("ray.serve")

# Most specific first: the first class an error is an instance of decides.
STATUS_CODES: list[tuple[type[errors.SweedleError], int]] = [
    (errors.UnsupportedImageFormat, 415),
    (errors.ImageTooLarge, 413),
    (errors.ImageRejected, 400),
    (errors.UnsafePath, 403),
    (errors.InvalidInput, 422),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Unavailable, 503),
    (errors.SweedleError, 400),
]

ERROR_RESPONSES = {
    code: {"model": None, "description": description}
    for code, description in {
        400: "the upload is not a usable image (truncated, corrupt, empty)",
        404: "no such job or asset, or its file is not ready",
        403: "a project path outside the allowed roots, or through a symlink",
        409: "the job is already finished, the asset not yet ready, or a file not ours in the way",
        413: "the upload has too many bytes or pixels",
        415: "the image format is not PNG, JPEG or WebP",
        422: "a parameter is missing or out of range",
        503: "a service Sweedle needs is not ready",
    }.items()
}


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": code, "detail": detail})


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
    return error_response(_status_of(error), error.code, error.message)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError | ValidationError)
    return error_response(422, "invalid_input", _validation_detail(list(exc.errors())))


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    error = domain_error(exc)
    if error is not None:
        return error_response(_status_of(error), error.code, error.message)
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "internal_error", f"{type(exc).__name__}: {exc}")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.SweedleError, _on_sweedle_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ValidationError, _on_validation_error)
    app.add_exception_handler(Exception, _on_unexpected)
