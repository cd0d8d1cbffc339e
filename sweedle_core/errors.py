"""Domain errors.

Raised in the core, mapped to HTTP status codes once, in the ingress. Each keeps only its
message in ``args`` so it pickles unchanged across a Ray hop.
"""

from __future__ import annotations


def unwrapped(exc: BaseException) -> BaseException:
    """The original exception behind a wrapper that keeps it in ``cause`` (Ray's RayTaskError,
    which is how an error raised in another replica or actor arrives)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def one_line(exc: BaseException) -> str:
    """``Type: message`` on one line, for reports that list one problem per line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


class SweedleError(Exception):
    """Base of every error a user may be shown."""

    code = "error"

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class InvalidInput(SweedleError):
    """The request is well formed but a value in it is not acceptable."""

    code = "invalid_input"


class ImageRejected(InvalidInput):
    """The uploaded file is not an image we can use (format, truncation, emptiness)."""

    code = "invalid_image"


class UnsupportedImageFormat(ImageRejected):
    code = "unsupported_image_format"


class ImageTooLarge(ImageRejected):
    """Too many bytes, or too many pixels (Pillow's decompression-bomb guard)."""

    code = "image_too_large"


class NotFound(SweedleError):
    code = "not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class AssetNotFound(NotFound):
    code = "asset_not_found"


class FileMissing(NotFound):
    """The asset exists but the requested file is not (yet) there."""

    code = "file_not_ready"


class Conflict(SweedleError):
    """The request is valid but the resource is in a state that does not allow it."""

    code = "conflict"


class JobFinished(Conflict):
    code = "job_finished"


class Unavailable(SweedleError):
    """A service Sweedle needs is not ready (model loading, queue unreachable)."""

    code = "unavailable"


class StorageUnavailable(Unavailable):
    """The file store (a folder or an S3 bucket) cannot be read or written: the message names
    the store and what it said."""

    code = "storage_unavailable"


class WorkerLost(Unavailable):
    """The replica or node running a job's stage died under it: a fault of the machine, not of
    the job, so the stage runs again elsewhere (up to STAGE_MAX_ATTEMPTS)."""

    code = "worker_lost"


class ShapeLost(SweedleError):
    """The GPU stage's hand-off is gone from the store before the CPU stage could read it: the
    job's GPU stage runs again."""

    code = "shape_lost"


class GenerationFailed(SweedleError):
    """A generator ran but produced no usable mesh."""

    code = "generation_failed"


class JobCancelled(SweedleError):
    """Raised from a progress callback to stop a job that was cancelled."""

    code = "job_cancelled"


class ModelUnavailable(Unavailable):
    """The generation model cannot be loaded (weights or package missing)."""

    code = "model_unavailable"


class FeatureDisabled(SweedleError):
    """A feature this server was not configured for: not here, rather than broken (a 4xx, so a
    client does not retry it as it would a 503)."""

    code = "feature_disabled"


class TextToImageDisabled(FeatureDisabled):
    """Text-to-3d was asked for but no text-to-image model is configured."""

    code = "text_to_image_disabled"


class AssetNotReady(Conflict):
    """An export was asked of an asset whose generation has not completed."""

    code = "asset_not_ready"


class UnsafePath(InvalidInput):
    """A path that would lead out of the folder it must stay in: ``..``, an absolute path
    outside every allowed root, a symbolic link on the way, an archive entry that escapes."""

    code = "unsafe_path"


class FileConflict(Conflict):
    """A file Sweedle would write is already there and is not one Sweedle wrote."""

    code = "file_conflict"


class Unauthorized(SweedleError):
    """No API key, or one that is not known."""

    code = "unauthorized"


class Forbidden(SweedleError):
    """A valid key asked for something outside its scopes."""

    code = "forbidden"


class RateLimited(SweedleError):
    """A key went over its requests per minute or its waiting jobs; ``retry_after`` seconds."""

    code = "rate_limited"

    @property
    def retry_after(self) -> int:
        return int(self.args[1]) if len(self.args) > 1 else 1


class IdempotencyConflict(Conflict):
    """An Idempotency-Key already used for a different request."""

    code = "idempotency_key_reused"


class WebhooksDisabled(InvalidInput):
    """A webhook_url was given but the server has no WEBHOOK_SECRET to sign with."""

    code = "webhooks_disabled"


class InvalidTag(InvalidInput):
    code = "invalid_tag"


class JobStillRunning(Conflict):
    """An asset cannot be deleted yet: its job was cancelled but has not stopped."""

    code = "job_still_running"


class InvalidCursor(InvalidInput):
    """A paging cursor that this server did not give out, or gave out for another order."""

    code = "invalid_cursor"
