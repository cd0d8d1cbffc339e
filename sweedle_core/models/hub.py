"""Models on the Hugging Face hub: finding them in the local cache, fetching them with the
hub library's own download code, and checking what the cache holds.

Files land in huggingface_hub's cache (``HF_HOME``, ``HF_HUB_CACHE``), where transformers,
diffusers and hy3dgen look for them. A download goes to ``blobs/<etag>.incomplete`` and is
resumed from there; a file enters a snapshot only once complete. The cache names each file by
its hub checksum (the sha256 of a large, LFS-stored file; the git blob id of a small one), so a
file corrupted on disk is found without asking the hub, and fetched again. Checking reads every
byte (seconds per gigabyte), so a file that passed is remembered by its size and modification
time and not read again until one of them changes, or a thorough check is asked for.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from sweedle_core.config import env_flag
from sweedle_core.storage.atomic import write_atomic

_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_SHA256, _GIT_SHA1 = 64, 40  # hex lengths of the two checksums the hub uses as file etags
# How long the hub's host may take to accept a connection before pulling gives up: an offline
# machine fails in seconds instead of retrying for minutes.
PROBE_TIMEOUT_S = 5.0


def is_local_path(name: str) -> bool:
    """Whether ``name`` names a folder rather than a hub id: an existing folder, or a name that
    can only be a path (hub ids are ``name`` or ``org/name``)."""
    return (
        os.path.isdir(os.path.expanduser(name))
        or os.path.isabs(os.path.expanduser(name))
        or name.startswith((".", "~"))
        or "\\" in name
        or name.count("/") > 1
    )


def offline() -> bool:
    """Whether the hub may not be asked (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE)."""
    # huggingface_hub reads these once, at import; reading them here honours a later change.
    if any(env_flag(name) for name in _OFFLINE_VARIABLES):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False  # not offline: fetching then says huggingface_hub is missing
    return bool(constants.HF_HUB_OFFLINE)


def endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def unreachable(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the host of ``url`` cannot be reached right now (no name, refused, silent), or None.

    One TCP connection with a time limit: the download libraries retry with backoff, which
    offline costs minutes before the first error. Behind a proxy (``HTTPS_PROXY`` and the like,
    which the libraries follow) the proxy is what must answer.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            reason = f"no answer within {timeout_s:g} s"
        return f"{host}:{port} is not reachable ({reason})"


def cached_snapshot(repo_id: str, marker: str) -> Path | None:
    """The cached snapshot folder of ``repo_id``'s ``main`` that holds the file ``marker``
    (a path inside the repository), or None; never asks the hub.

    Only some files of a repository are fetched (one weights format of several), so the
    snapshot is found through one file it must hold, not by the hub's "complete" test.
    """
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, marker)
    except Exception:  # a malformed id, no huggingface_hub: not here
        return None
    if not isinstance(found, str):
        return None
    root = Path(found)
    for _ in Path(marker).parts:
        root = root.parent
    return root


def download_snapshot(repo_id: str, patterns: Sequence[str] | None, progress: bool = True) -> Path:
    """Fetch the files of ``repo_id`` matching ``patterns`` into the cache (resuming a partial
    download); returns the snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    (enable_progress_bars if progress else disable_progress_bars)()
    folder = snapshot_download(repo_id, allow_patterns=list(patterns) if patterns else None)
    return Path(folder)


def repo_files(repo_id: str) -> list[str]:
    """Every file of the repository's ``main``, as the hub lists it."""
    from huggingface_hub import HfApi

    return list(HfApi().list_repo_files(repo_id))


def complete(repo_id: str, patterns: Sequence[str]) -> bool:
    """Whether the cache holds every file of ``repo_id``'s ``main`` that ``patterns`` match,
    as the hub listed them when they were fetched (the library's own test)."""
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id, allow_patterns=list(patterns), local_files_only=True)
    except Exception:  # not cached, incomplete, a malformed id: not complete
        return False
    return True


def damaged_files(
    snapshot: Path, patterns: Sequence[str] = ("*",), thorough: bool = False
) -> list[Path]:
    """Files of a cached snapshot matching ``patterns`` whose content no longer matches the
    checksum they are stored under (cut short, overwritten, bit rot), and links that point at
    nothing. Files that passed before and have not changed since are not read again, unless
    ``thorough``."""
    checked = _Checked.load()
    damaged = []
    for link in sorted(p for p in snapshot.rglob("*") if p.is_symlink() or p.is_file()):
        if not any(link.relative_to(snapshot).match(pattern) for pattern in patterns):
            continue
        if not link.exists():
            damaged.append(link)
            continue
        blob = link.resolve()
        if not thorough and checked.passed(blob):
            continue
        if _matches(blob, blob.name):
            checked.remember(blob)
        else:
            damaged.append(link)
    checked.save()
    return damaged


class _Checked:
    """Blobs that passed their checksum, by path, with the size and time they had then."""

    def __init__(self, path: Path, seen: dict[str, list[int]]) -> None:
        self.path, self.seen, self.changed = path, seen, False

    @classmethod
    def load(cls) -> _Checked:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        path = Path(base) / "sweedle" / "checked-models.json"
        try:
            seen = json.loads(path.read_text())
        except (OSError, ValueError):
            seen = {}
        return cls(path, seen if isinstance(seen, dict) else {})

    def passed(self, blob: Path) -> bool:
        stat = blob.stat()
        return self.seen.get(str(blob)) == [stat.st_size, stat.st_mtime_ns]

    def remember(self, blob: Path) -> None:
        stat = blob.stat()
        self.seen[str(blob)] = [stat.st_size, stat.st_mtime_ns]
        self.changed = True

    def save(self) -> None:
        if self.changed:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, json.dumps(self.seen).encode())


def forget(files: Sequence[Path]) -> None:
    """Remove damaged files from the cache (the link and its blob), so the next download
    fetches them again."""
    for link in files:
        blob = link.resolve() if link.is_symlink() else None
        link.unlink(missing_ok=True)
        if blob is not None and blob.exists():
            blob.unlink()


def _matches(blob: Path, name: str) -> bool:
    from huggingface_hub.utils.sha import git_hash, sha_fileobj

    if len(name) == _SHA256 and _is_hex(name):
        with blob.open("rb") as stream:
            return sha_fileobj(stream).hex() == name
    if len(name) == _GIT_SHA1 and _is_hex(name):
        return git_hash(blob.read_bytes()) == name
    return blob.stat().st_size > 0  # a file the cache names otherwise (a local copy): not empty


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)
