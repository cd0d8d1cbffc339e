"""A real PgBouncer in transaction mode in front of a test database, started by the test on a
free loopback port (Debian's `pgbouncer`, which `make test` installs as root); a skip saying
why where the binary is missing."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

PGBOUNCER = "/usr/sbin/pgbouncer"
START_TIMEOUT_S = 60  # a loaded 2-core machine has taken over 20 s to say it listens


@contextmanager
def pgbouncer(database_url: str, pool_size: int = 2) -> Iterator[str]:
    """The URL of ``database_url``'s database through PgBouncer (transaction pooling, at most
    ``pool_size`` server connections, so transactions really do move between them)."""
    binary = shutil.which("pgbouncer") or (PGBOUNCER if Path(PGBOUNCER).exists() else None)
    if binary is None:
        pytest.skip("PgBouncer is missing: `make test` installs it with apt-get as root")
    target = make_url(database_url)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="sweedle-pgbouncer-") as folder:
        config = Path(folder, "pgbouncer.ini")
        users = Path(folder, "users.txt")
        users.write_text(f'"{target.username}" "{target.password or ""}"\n')
        config.write_text(
            "[databases]\n"
            f"{target.database} = host={target.host} port={target.port or 5432} "
            f"dbname={target.database} user={target.username}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {users}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            "max_client_conn = 200\n"
        )
        os.chmod(folder, 0o755)  # it drops to nobody when started as root
        for path in (config, users):
            path.chmod(0o644)
        command = [binary, *(["-u", "nobody"] if os.geteuid() == 0 else []), str(config)]
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        try:
            _wait_until_listening(process)
            yield target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
        finally:
            process.terminate()
            process.wait(timeout=10)


def _wait_until_listening(process: subprocess.Popen) -> None:
    """Read its log until it says it listens (or fail with what it said)."""
    said: list[str] = []
    assert process.stderr is not None
    while True:
        ready, _, _ = select.select([process.stderr], [], [], START_TIMEOUT_S)
        line = process.stderr.readline() if ready else ""
        if not line:
            process.kill()
            ended = process.wait(timeout=10)
            why = f"it ended ({ended})" if ready else f"silent for {START_TIMEOUT_S} s"
            raise RuntimeError(f"PgBouncer did not start, {why}:\n" + "".join(said))
        said.append(line)
        if "listening on 127.0.0.1" in line:  # bound: connections wait in its backlog
            return


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
