"""Writing files into a folder on the server named by a client, without ever leaving it.

The folder must lie under one of the configured allowed roots, and nothing below the root may be
a symbolic link: every folder is opened relative to its parent's descriptor with ``O_NOFOLLOW``
(so a link planted before or during the write is refused, not followed), and every file is
written under a temporary name in its own folder and renamed into place (so a planted link or
hard link at the file's name is replaced, never written through). Paths inside the folder come
from bundles and are checked too. POSIX only: it needs ``dir_fd``.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sweedle_core.errors import FileConflict, InvalidInput, SweedleError, UnsafePath

MAX_COMPONENT_BYTES = 255
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def checked_relative_path(path: str) -> tuple[str, ...]:
    """The components of ``path``, a relative POSIX path that stays inside its folder.

    Raises ``UnsafePath`` for an absolute path, ``..``, ``.`` or empty components, backslashes,
    drive letters (``:``), NUL and other control characters, and over-long components.
    """
    if not isinstance(path, str) or not path:
        raise UnsafePath("an empty file path")
    if path.startswith("/"):
        raise UnsafePath(f"the file path {path!r} is absolute")
    if any(ch in path for ch in "\\:") or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise UnsafePath(
            f"the file path {path!r} contains a backslash, a colon or a control character"
        )
    parts = tuple(path.split("/"))
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePath(f"the file path {path!r} escapes its folder or has empty parts")
    if any(len(part.encode("utf-8")) > MAX_COMPONENT_BYTES for part in parts):
        raise UnsafePath(f"the file path {path!r} has a part longer than {MAX_COMPONENT_BYTES}")
    return parts


@dataclass(frozen=True)
class Target:
    """A folder we may write into: an allowed root (resolved) and the components below it."""

    root: Path
    parts: tuple[str, ...]

    @property
    def path(self) -> Path:
        return self.root.joinpath(*self.parts)


def resolve_target(project_path: str | os.PathLike[str], allowed_roots: Sequence[Path]) -> Target:
    """The existing folder ``project_path`` names, checked to lie under one of ``allowed_roots``.

    A relative ``project_path`` is taken inside the first root. Raises ``UnsafePath`` when no root
    is configured, the path has ``..``, lies outside every root or resolves outside its root, or
    a component below the root is a symbolic link; ``InvalidInput`` when the folder is missing.
    """
    roots = [_checked_root(root) for root in allowed_roots]
    if not roots:
        raise UnsafePath("writing into project folders is disabled: no allowed root is configured")
    raw = os.fspath(project_path)
    if not raw or "\0" in raw:
        raise UnsafePath("the project path is empty or contains a NUL character")
    path = Path(raw)
    if ".." in path.parts:
        raise UnsafePath(f"the project path {raw!r} contains '..'")
    if not path.is_absolute():
        path = roots[0][1] / path
    for given, resolved in roots:
        # Compare with the root as configured and as resolved (/tmp vs /private/tmp).
        for base in (given, resolved):
            if path.is_relative_to(base):
                target = Target(resolved, path.relative_to(base).parts)
                real = Path(os.path.realpath(target.path))
                if not real.is_relative_to(resolved):
                    raise UnsafePath(f"the project path {raw!r} resolves outside its allowed root")
                with _project_dir(target, display=raw):
                    pass  # opened without following links, so it exists and is a folder
                return target
    raise UnsafePath(f"the project path {raw!r} is outside every allowed root")


def read_existing(target: Target, path: str, max_bytes: int) -> bytes | None:
    """The bytes of ``path`` inside ``target``, or None when there is no such file.

    Raises ``UnsafePath`` if a link is on the way, ``FileConflict`` if it is not a regular file,
    ``InvalidInput`` if it holds more than ``max_bytes``.
    """
    *folders, name = checked_relative_path(path)
    with ExitStack() as stack, _project_dir(target) as project_fd:
        folder_fd = _walk(stack, project_fd, folders, path, create=False)
        if folder_fd is None or _lstat(folder_fd, name) is None:
            return None
        data = _read_regular(folder_fd, name, path, max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidInput(f"{path} in the project is larger than {max_bytes} bytes")
    return data


def write_files(
    target: Target,
    files: Mapping[str, bytes],
    *,
    replaceable: Collection[str] = (),
    keep_existing: Collection[str] = (),
) -> list[Path]:
    """Write ``files`` (relative POSIX path -> bytes) into ``target``; their paths on disk.

    An existing file with the same bytes is left untouched (no new timestamp, so engines do not
    reimport it). One with other bytes is replaced only if its path is in ``replaceable``, left as
    it is if in ``keep_existing`` (and then not returned), and otherwise refused with
    ``FileConflict``. Every path and every existing file is checked before anything is written.
    """
    plan = {path: checked_relative_path(path) for path in files}
    folders_needed = {"/".join(parts[:i]) for parts in plan.values() for i in range(1, len(parts))}
    if clash := sorted(folders_needed & plan.keys()):
        raise InvalidInput(f"{clash[0]} is both a file and a folder of other files")
    to_write: list[str] = []
    in_place: list[str] = []
    with ExitStack() as stack, _project_dir(target) as project_fd:
        opened = _Folders(stack, project_fd)
        for path, (*folders, name) in plan.items():
            folder_fd = opened.get(tuple(folders), path, create=False)
            existing = None if folder_fd is None else _lstat(folder_fd, name)
            if existing is None:
                to_write.append(path)
                in_place.append(path)
                continue
            assert folder_fd is not None
            _check_regular(existing, path)
            data = files[path]
            if existing.st_size == len(data) and (
                _read_regular(folder_fd, name, path, len(data) + 1) == data
            ):
                in_place.append(path)
            elif path in replaceable:
                to_write.append(path)
                in_place.append(path)
            elif path not in keep_existing:
                raise FileConflict(
                    f"{path} already exists in the project and was not written by Sweedle; "
                    "move it away or export under another name"
                )
    with ExitStack() as stack, _project_dir(target) as project_fd:
        opened = _Folders(stack, project_fd)
        for path in to_write:
            *folders, name = plan[path]
            folder_fd = opened.get(tuple(folders), path, create=True)
            assert folder_fd is not None
            _replace(folder_fd, name, files[path])
    return [target.path.joinpath(*plan[path]) for path in in_place]


def _checked_root(root: Path) -> tuple[Path, Path]:
    """(root as configured, root resolved). A bad root is a server misconfiguration."""
    given = Path(root)
    if not given.is_absolute() or not given.is_dir():
        raise ValueError(f"allowed root {root} must be an absolute path to an existing folder")
    return given, given.resolve(strict=True)


@contextmanager
def _project_dir(target: Target, display: str | None = None) -> Iterator[int]:
    """A descriptor of the target folder, reached from the root one component at a time."""
    with ExitStack() as stack:
        root_fd = os.open(target.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack.callback(os.close, root_fd)
        shown = display or str(target.path)
        fd = _walk(stack, root_fd, list(target.parts), shown, create=False)
        if fd is None:
            raise InvalidInput(f"the project folder {shown} does not exist")
        yield fd


def _walk(
    stack: ExitStack, fd: int, folders: Sequence[str], shown: str, *, create: bool
) -> int | None:
    """The descriptor of ``folders`` below ``fd``, made if ``create``; None if one is missing."""
    for name in folders:
        child = _open_dir(fd, name, shown, create=create)
        if child is None:
            return None
        stack.callback(os.close, child)
        fd = child
    return fd


class _Folders:
    """Descriptors of folders below the project folder, each opened once (a big archive would
    otherwise run out of descriptors)."""

    def __init__(self, stack: ExitStack, project_fd: int) -> None:
        self._stack = stack
        self._fds: dict[tuple[str, ...], int] = {(): project_fd}

    def get(self, folders: tuple[str, ...], shown: str, *, create: bool) -> int | None:
        if folders in self._fds:
            return self._fds[folders]
        parent = self.get(folders[:-1], shown, create=create)
        if parent is None:
            return None
        fd = _open_dir(parent, folders[-1], shown, create=create)
        if fd is not None:
            self._stack.callback(os.close, fd)
            self._fds[folders] = fd
        return fd


def _open_dir(parent_fd: int, name: str, shown: str, *, create: bool) -> int | None:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except FileNotFoundError:
        if not create:
            return None
    except OSError as exc:  # ELOOP: a link; ENOTDIR: a file
        raise _not_a_folder(parent_fd, name, shown) from exc
    try:
        os.mkdir(name, 0o777, dir_fd=parent_fd)  # the umask decides, as for any new folder
    except FileExistsError:
        pass  # made meanwhile by someone else: opened and checked like any other below
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        raise _not_a_folder(parent_fd, name, shown) from exc


def _not_a_folder(parent_fd: int, name: str, shown: str) -> SweedleError:
    info = _lstat(parent_fd, name)
    if info is not None and stat.S_ISLNK(info.st_mode):
        return UnsafePath(
            f"{name!r} on the way to {shown} is a symbolic link; links are not followed"
        )
    return FileConflict(f"{name!r} on the way to {shown} is in the way: it is not a folder")


def _lstat(folder_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _check_regular(info: os.stat_result, path: str) -> None:
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePath(f"{path} in the project is a symbolic link; links are not followed")
    if not stat.S_ISREG(info.st_mode):
        raise FileConflict(f"{path} in the project is in the way: it is not a regular file")


def _read_regular(folder_fd: int, name: str, path: str, limit: int) -> bytes:
    try:
        fd = os.open(name, _FILE_READ_FLAGS | os.O_NONBLOCK, dir_fd=folder_fd)
    except OSError:
        info = _lstat(folder_fd, name)
        if info is not None:
            _check_regular(info, path)  # a link or folder swapped in meanwhile: say so
        raise
    with os.fdopen(fd, "rb") as file:
        _check_regular(os.fstat(file.fileno()), path)  # not a FIFO swapped in meanwhile
        return file.read(limit)


def _replace(folder_fd: int, name: str, data: bytes) -> None:
    """Write ``name`` in the folder as a temporary file renamed over it (atomic, link-safe)."""
    tmp = f".sweedle-{secrets.token_hex(8)}.tmp"  # hidden: Unity and Godot skip dot files
    fd = os.open(tmp, _TMP_WRITE_FLAGS, 0o666, dir_fd=folder_fd)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=folder_fd)
        except FileNotFoundError:
            pass
        raise
