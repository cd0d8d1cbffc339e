"""A local stand-in for the model servers Sweedle pulls from: the Hugging Face hub's download
API (as huggingface_hub 2.x, transformers and diffusers use it) and a plain file server (a
mirror of rembg's release files). Loopback only; the tests point ``HF_ENDPOINT`` and
``REMBG_DOWNLOAD_URL`` at it.

Hub routes, for each repository served from a folder at one commit:

- ``GET /api/models/<repo>[/revision/<rev>]``: ``{id, sha, siblings}``;
- ``GET /api/models/<repo>/tree/<rev>[/<path>]``: the file list (with LFS sha256 for weights);
- ``HEAD|GET /<repo>/resolve/<rev>/<path>``: the file, with ``X-Repo-Commit`` and an ``ETag``
  that is the sha256 for LFS files (weights) and the git blob id for the rest, as the hub sends;
  ``Range`` requests are honoured;
- 404 with ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound) otherwise.

Plain files: ``GET /files/<name>``. Faults: ``cut(glob, times)`` makes the next ``times`` GETs of
matching paths send half the body and close the connection; ``requests`` logs every request.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".onnx", ".pt", ".pth")


@dataclass(frozen=True)
class RepoFile:
    path: Path
    size: int
    git_oid: str  # the git blob id (of the LFS pointer for LFS files)
    sha256: str | None  # LFS files only

    @property
    def etag(self) -> str:
        return self.sha256 or self.git_oid


def describe(folder: Path) -> dict[str, RepoFile]:
    """Every file under ``folder`` by its repository path, hashed as the hub hashes it."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        sha256 = None
        if path.name.endswith(LFS_SUFFIXES):
            sha256 = hashlib.sha256(data).hexdigest()
            data = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\n".encode()
            data += f"size {path.stat().st_size}\n".encode()
        git_oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        files[path.relative_to(folder).as_posix()] = RepoFile(
            path, path.stat().st_size, git_oid, sha256
        )
    return files


class Repo:
    def __init__(self, folder: Path) -> None:
        self.files = describe(folder)
        digest = json.dumps({p: f.etag for p, f in self.files.items()}, sort_keys=True)
        self.commit = hashlib.sha1(digest.encode()).hexdigest()


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, repos: dict[str, Path], files: Path | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.repos = {repo_id: Repo(folder) for repo_id, folder in repos.items()}
        self.file_root = files
        self.requests: list[tuple[str, str]] = []
        self._cuts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> ModelServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def cut(self, glob: str, times: int = 1) -> None:
        """The next ``times`` GETs of paths matching ``glob`` break off half-way."""
        with self._lock:
            self._cuts[glob] = times

    def should_cut(self, path: str) -> bool:
        with self._lock:
            for glob, left in self._cuts.items():
                if left > 0 and fnmatch.fnmatch(path, glob):
                    self._cuts[glob] = left - 1
                    return True
        return False

    def downloads(self, suffix: str) -> int:
        """How many GETs asked for a file whose path ends with ``suffix``."""
        return sum(1 for method, path in self.requests if method == "GET" and path.endswith(suffix))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ModelServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        self.server.requests.append((self.command, url.path))
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if parts[0] == "files" and self.server.file_root is not None:
            return self._file(self.server.file_root / "/".join(parts[1:]), url.path)
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            return self._api("/".join(parts[2:4]), parts[4:], parse_qs(url.query))
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), url.path)
        self._error(404, "RepoNotFound", "Repository not found")

    do_HEAD = do_GET

    def _repo(self, repo_id: str, revision: str) -> Repo | None:
        repo = self.server.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
        elif revision not in ("main", repo.commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        else:
            return repo
        return None

    def _api(self, repo_id: str, rest: list[str], query: dict[str, list[str]]) -> None:
        if rest[:1] == ["tree"] and len(rest) >= 2:
            repo = self._repo(repo_id, rest[1])
            if repo is not None:
                self._json(self._tree(repo, "/".join(rest[2:])))
            return
        revision = rest[1] if rest[:1] == ["revision"] and len(rest) == 2 else "main"
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        siblings = [{"rfilename": path} for path in repo.files]
        self._json({"id": repo_id, "modelId": repo_id, "sha": repo.commit, "siblings": siblings,
                    "private": False, "gated": False, "disabled": False, "tags": []})  # fmt: skip

    def _tree(self, repo: Repo, prefix: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        folders: set[str] = set()
        for path, file in repo.files.items():
            if prefix and not path.startswith(prefix.rstrip("/") + "/"):
                continue
            parts = path.split("/")
            folders.update("/".join(parts[:i]) for i in range(1, len(parts)))
            entry: dict[str, Any] = {
                "type": "file",
                "path": path,
                "size": file.size,
                "oid": file.git_oid,
            }
            if file.sha256:
                entry["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": 128}
            entries.append(entry)
        directories = [{"type": "directory", "path": f, "oid": "0" * 40} for f in sorted(folders)]
        return directories + entries

    def _resolve(self, repo_id: str, revision: str, path: str, url_path: str) -> None:
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        file = repo.files.get(path)
        if file is None:
            extra = {"X-Repo-Commit": repo.commit}
            return self._error(404, "EntryNotFound", "Entry not found", extra)
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{file.etag}"'}
        if file.sha256:
            headers |= {"X-Linked-Etag": f'"{file.etag}"', "X-Linked-Size": str(file.size)}
        self._send_file(file.path, headers, url_path)

    def _file(self, path: Path, url_path: str) -> None:
        if not path.is_file():
            return self._error(404, "EntryNotFound", "Not found")
        self._send_file(path, {}, url_path)

    def _send_file(self, path: Path, headers: dict[str, str], url_path: str) -> None:
        data = path.read_bytes()
        status, start = 200, 0
        asked = self.headers.get("Range", "")
        if asked.startswith("bytes=") and asked[6:].split("-")[0].isdigit():
            start = int(asked[6:].split("-")[0])
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        cut = self.command == "GET" and self.server.should_cut(url_path)
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(body)),
                            "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}.items():  # fmt: skip
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.write(body[: len(body) // 2] if cut else body)
        if cut:
            self.wfile.flush()
            self.close_connection = True

    def _json(self, value: Any) -> None:
        body = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(
        self, status: int, code: str, message: str, extra: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        for name, value in {"X-Error-Code": code, "X-Error-Message": message,
                            "Content-Type": "application/json", "Content-Length": str(len(body)),
                            **(extra or {})}.items():  # fmt: skip
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
