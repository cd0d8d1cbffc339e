"""Where an asset's files live: one folder per asset under the storage root.

Paths stored in the database are relative to the root, so the root can move (a shared volume on
a cluster) without rewriting rows. Every write is atomic: a crash leaves no half-written file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

INPUT_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


class Storage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def ensure(self) -> Storage:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    # Relative names of an asset's files.
    @staticmethod
    def input_name(asset_id: str, image_format: str) -> str:
        return f"{asset_id}/input.{INPUT_EXTENSIONS[image_format]}"

    @staticmethod
    def prepared_name(asset_id: str) -> str:
        return f"{asset_id}/prepared.png"

    @staticmethod
    def raw_mesh_name(asset_id: str) -> str:
        return f"{asset_id}/raw_mesh.npz"

    def asset_dir(self, asset_id: str) -> Path:
        return self.path(asset_id)

    def path(self, relative: str) -> Path:
        """The absolute path of a stored file; refuses names that would leave the root."""
        candidate = (self.root / relative).resolve()
        if not candidate.is_relative_to(self.root):
            raise ValueError(f"stored path {relative!r} leaves the storage root")
        return candidate

    def relative(self, path: Path) -> str:
        return Path(path).resolve().relative_to(self.root).as_posix()

    def write_bytes(self, relative: str, data: bytes) -> Path:
        target = self.path(relative)
        write_atomic(target, data)
        return target

    def remove_asset(self, asset_id: str) -> None:
        shutil.rmtree(self.asset_dir(asset_id), ignore_errors=True)

    def trash_asset(self, asset_id: str) -> Path | None:
        """Move an asset's folder aside in one rename (None: it has none), so that a deletion
        either removes every file or, put back with `restore_asset`, none."""
        folder = self.asset_dir(asset_id)
        if not folder.exists():
            return None
        trash = self.root / f".trash-{asset_id}-{uuid.uuid4().hex[:8]}"
        os.replace(folder, trash)
        return trash

    def restore_asset(self, asset_id: str, trash: Path) -> None:
        os.replace(trash, self.asset_dir(asset_id))


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    The bytes go to a temporary file in the same folder (same file system), which then replaces
    ``path`` in one rename; a crash leaves at most a stray ``.tmp`` file, never a half file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    # os.open with 0o666 honours the umask (mkstemp would leave the file private, 0o600).
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
