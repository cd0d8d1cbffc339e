"""Real Ray nodes on one machine, each with its own ports; a worker node in a mount namespace of
its own, where empty private folders cover the given paths (so nothing can pass through them).

Needs root and `unshare -m` (mount namespaces); `namespaces_unavailable()` says why not.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

import psutil

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 120.0
# A cluster on loopback only: Ray would pick the machine's address; these two let several
# nodes share one host and skip token set-up for a cluster nothing else can reach.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1", "RAY_AUTH_MODE": "disabled"}
PORT_FLAGS = (
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
)
WORKER_PORTS = 60  # each node's range of worker ports


def namespaces_unavailable() -> str | None:
    """Why a node cannot get a private mount namespace here, or None when it can."""
    if os.geteuid() != 0:
        return "mount namespaces need root"
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"unshare -m is not allowed here: {probe.stderr.strip()}"
    return None


def free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_range(size: int) -> int:
    """The first of ``size`` consecutive ports that are free now."""
    for start in range(21000, 40000, size):
        try:
            with ExitStack() as stack:
                for port in range(start, start + size):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
    raise RuntimeError("no free range of worker ports")


class RayNode:
    """One `ray start --block` and the node it runs; stopped as a whole with `stop`."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, manager_port: int):
        self.manager_port = manager_port
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:  # the node is up once ray start says so
            self._log_file.write(line)
            if "Ray runtime started" in line:
                break
        else:
            self._log_file.close()
            raise RuntimeError(f"ray start failed: {log.read_text()[-3000:]}")
        # Drained from here on, so that a full pipe never blocks the node.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._log_file.write(line)
            self._log_file.flush()

    def raylet(self) -> psutil.Process:
        flag = f"--node_manager_port={self.manager_port}"
        for proc in psutil.process_iter(["name", "cmdline"]):
            if "raylet" in (proc.info["name"] or "") and flag in (proc.info["cmdline"] or []):
                return proc
        raise RuntimeError(f"no raylet with {flag}")

    def kill_raylet(self) -> None:
        """The node dies as a crashed machine would: its raylet gets SIGKILL."""
        self.raylet().send_signal(signal.SIGKILL)

    def processes(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        for proc in self.processes():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait(timeout=30)


def _node_flags(resources: dict[str, float], cpus: int, gpus: int) -> tuple[list[str], int]:
    ports = free_ports(len(PORT_FLAGS))
    first = free_range(WORKER_PORTS)
    flags = [
        "--node-ip-address=127.0.0.1",
        f"--num-cpus={cpus}",
        f"--num-gpus={gpus}",
        f"--resources={json.dumps(resources)}",
        "--disable-usage-stats",
        f"--min-worker-port={first}",
        f"--max-worker-port={first + WORKER_PORTS - 1}",
        *(f"{flag}={port}" for flag, port in zip(PORT_FLAGS, ports, strict=True)),
        "--block",
    ]
    return flags, ports[0]


def start_head(
    temp_dir: Path, resources: dict[str, float], cpus: int, env: dict[str, str], log: Path
) -> tuple[RayNode, str]:
    """The head node and its address."""
    gcs, client = free_ports(2)
    flags, manager_port = _node_flags(resources, cpus, 0)
    command = [
        RAY, "start", "--head", f"--port={gcs}", f"--ray-client-server-port={client}",
        "--include-dashboard=false", f"--temp-dir={temp_dir}", *flags,
    ]  # fmt: skip
    return RayNode(command, {**env, **RAY_ENV}, log, manager_port), f"127.0.0.1:{gcs}"


def start_worker(
    address: str,
    resources: dict[str, float],
    cpus: int,
    gpus: int,
    private: Iterable[Path],
    env: dict[str, str],
    log: Path,
) -> RayNode:
    """A worker node in its own mount namespace, with an empty tmpfs over each ``private``
    folder."""
    flags, manager_port = _node_flags(resources, cpus, gpus)
    mounts = " && ".join(f"mount -t tmpfs sweedle-private {shlex.quote(str(p))}" for p in private)
    start = shlex.join([RAY, "start", f"--address={address}", *flags])
    command = ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{mounts} && exec {start}"]
    return RayNode(command, {**env, **RAY_ENV}, log, manager_port)
