"""The doctor's look at the file store the settings name: a folder, or an S3 bucket."""

from __future__ import annotations

from sweedle_core.config import Settings
from sweedle_core.doctor.probe import Check
from sweedle_core.errors import one_line
from sweedle_core.storage import build_storage, storage_status


def check_storage(settings: Settings) -> Check:
    """Whether the store can be written to and listed; every job needs it, whatever the
    backend."""
    try:
        status = storage_status(build_storage(settings))
    except Exception as exc:  # a store that cannot even be built (an unreadable setting)
        return Check("storage", "fail", one_line(exc), required=True)
    if status["problem"]:  # it names the store
        return Check("storage", "fail", status["problem"], required=True)
    return Check("storage", "ok", f"{status['backend']}: {status['location']}")
