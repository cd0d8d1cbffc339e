"""What every doctor check is made of: one line of the report, and safe probes of packages."""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass
from types import ModuleType
from typing import Literal

from sweedle_core.errors import one_line

Status = Literal["ok", "warn", "fail", "info"]
_import = importlib.import_module  # one seam, so tests can make an import fail any way


@dataclass(frozen=True)
class Check:
    """One line of the report. ``required``: generation with the configured backend needs it."""

    name: str
    status: Status
    detail: str
    required: bool = False


def try_import(name: str) -> tuple[ModuleType | None, str]:
    """The module, or None and why: any exception counts (a broken CUDA library raises
    OSError or RuntimeError, not ImportError)."""
    try:
        return _import(name), ""
    except Exception as exc:
        return None, one_line(exc)


def package_version(distribution: str) -> str | None:
    """The installed distribution's version, None when it has no metadata."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
