"""Fetching a rembg stock model the way rembg itself does: its URL, its checksum, its folder.

rembg 2.0.86 downloads a missing model inside ``new_session`` with pooch (a temporary file,
checked against rembg's MD5, then moved into place), and never checks a file already on disk.
Here the same download runs ahead of time, from the command line: where and what is read from
rembg's own ``download_models`` (intercepted before it downloads: ``pooch.retrieve`` is replaced
for the length of that call, in the command's own process), and pooch then fetches the file
with a time limit and a progress bar, checks it, and re-fetches one that fails the check.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from sweedle_core.preprocess.rembg_models import check_stock_model, stock_model_paths

# requests' (connect, read) time limits: an unreachable host fails in seconds, not minutes.
TIMEOUT_S = (10.0, 60.0)


@dataclass(frozen=True)
class RembgDownload:
    """What rembg would fetch for a stock model: the URL, the checksum and the file."""

    model: str
    url: str
    known_hash: str | None  # "md5:<hex>" as rembg states it; None with MODEL_CHECKSUM_DISABLED
    file: Path  # <rembg home>/models/<model>/<model>.onnx, where rembg looks first
    candidates: tuple[Path, ...]  # every file rembg would load, in its order


class _Intercepted(Exception):
    pass


def rembg_download(model: str, mirror: str = "", u2net_home: Path | None = None) -> RembgDownload:
    """rembg's own source for ``model`` (a name in STOCK_MODELS), read without downloading.

    mirror : a base URL that serves rembg's release files; the file name is appended to it.
    u2net_home : the U2NET_HOME setting (rembg's model folder), as the remover applies it.
    """
    check_stock_model(model)
    from rembg.sessions import sessions

    session_class = sessions[model]
    seen: dict[str, Any] = {}

    def record(url: str, known_hash: str | None = None, **kwargs: Any) -> str:
        seen.update(url=url, known_hash=known_hash, **kwargs)
        raise _Intercepted

    home = {"U2NET_HOME": str(u2net_home)} if u2net_home is not None else {}
    with _nothing_on_disk(session_class), mock.patch("pooch.retrieve", record):
        with mock.patch.dict(os.environ, home), contextlib.suppress(_Intercepted):
            session_class.download_models()
    if "url" not in seen:
        raise RuntimeError(f"rembg's {session_class.__name__} did not ask pooch for a file")
    file = Path(seen["path"]) / seen["fname"]
    candidates = stock_model_paths(model, u2net_home)
    if file != candidates[0]:  # e.g. a variant whose download delegates to its base model's
        raise ValueError(
            f"rembg's download for {model!r} fetches {file.name}, not the {candidates[0].name} "
            f"it loads: fetch it with rembg itself (`rembg d {model}`)"
        )
    url = str(seen["url"])
    if mirror:
        url = mirror.rstrip("/") + "/" + url.rsplit("/", 1)[-1]
    return RembgDownload(model, url, seen["known_hash"], file, candidates)


@contextlib.contextmanager
def _nothing_on_disk(session_class: Any) -> Iterator[None]:
    """rembg returns a file it finds before reaching its download; make it find none."""
    with mock.patch.object(session_class, "resolve_existing", classmethod(lambda *a, **k: None)):
        yield


def present_file(download: RembgDownload) -> Path | None:
    """The file rembg would load for this model (its first existing candidate), if any."""
    return next((p for p in download.candidates if p.is_file()), None)


def file_is_intact(download: RembgDownload, path: Path) -> bool:
    """Whether ``path`` has the checksum rembg states (any file passes without one)."""
    if download.known_hash is None:
        return path.stat().st_size > 0
    from pooch.hashes import hash_matches

    return bool(hash_matches(str(path), download.known_hash))


def fetch(download: RembgDownload, progress: bool = True) -> Path:
    """The checked model file, downloaded (or re-downloaded over a corrupt copy) if need be.

    pooch writes a temporary file beside the target and moves it into place only once its
    checksum matches: an interrupted or corrupt download leaves no file rembg would load.
    """
    found = present_file(download)
    if found is not None and file_is_intact(download, found):
        return found
    import pooch

    downloader = pooch.HTTPDownloader(progressbar=progress, timeout=TIMEOUT_S)
    path = pooch.retrieve(
        download.url,
        download.known_hash,
        fname=download.file.name,
        path=download.file.parent,
        downloader=downloader,
    )
    if found is not None and found != Path(path):
        found.unlink()  # the corrupt legacy copy: rembg would otherwise still find it first
    return Path(path)
