"""Writing a local file so that readers see the old file or the whole new one.

``private`` files (the service's own data: the store, the database) are readable by the
service's user only (files 0600, the folders it creates 0700); the others (exports into a
user's project folder) follow the umask like any file the user makes.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def _temporary_beside(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def make_folder(folder: Path, private: bool = False) -> None:
    """``folder`` and its missing parents; private ones 0700."""
    if not private:
        folder.mkdir(parents=True, exist_ok=True)
        return
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for part in reversed(missing):
        part.mkdir(mode=0o700, exist_ok=True)


def write_atomic(path: Path, data: bytes, private: bool = False) -> None:
    """Write ``data`` to ``path`` atomically.

    The bytes go to a temporary file in the same folder (same file system), which then replaces
    ``path`` in one rename; a crash leaves at most a stray ``.tmp`` file, never a half file.
    """
    path = Path(path)
    make_folder(path.parent, private)
    tmp_path = _temporary_beside(path)
    # os.open with 0o666 honours the umask (mkstemp would leave the file private, 0o600).
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def copy_atomic(source: Path, path: Path, private: bool = False) -> None:
    """Copy ``source`` to ``path`` atomically, as `write_atomic` writes, without reading the
    whole file into memory."""
    path = Path(path)
    make_folder(path.parent, private)
    tmp_path = _temporary_beside(path)
    try:
        shutil.copyfile(source, tmp_path)
        if private:
            os.chmod(tmp_path, 0o600)
        with open(tmp_path, "rb+") as tmp:
            os.fsync(tmp.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
