"""What Serve costs the asset library: `GET /api/assets` through the Serve ingress and through
plain uvicorn, in one run, on one database of 10,000 completed assets (part of `make bench`).

The same FastAPI app (`create_app`) is served twice: by `serve run configs/cpu.yaml` (the whole
app, on a port of its own) and by `uvicorn bench.library:uvicorn_app --factory`, one worker,
without Ray. uvicorn is measured alone first; then, with the Serve app up, Serve and uvicorn in
turns, so a neighbour's work on the machine weighs on both alike. Each gets a warm-up, then a
fixed mix of searches with a tag filter (a page of 20) from 1 and from 8 keep-alive clients;
every response must be a 200 with the page the seed data predicts. The CPU time each process
spent per request (from /proc) shows where Serve's extra time goes.

    .venv/bin/python -m bench.library [--assets N]
    .venv/bin/python -m bench.library --assets 1000000 --database URL  # seeded before

A million assets take minutes to seed (`bench.library_seed`, or `bench.library_scale`'s run):
``--database`` measures a database filled before, on SQLite or PostgreSQL; the pages are then
checked for a 200 and a full page, their totals not being known to the bench.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import yaml
from fastapi import FastAPI
from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.library_seed import ASSETS, QUERIES, seed  # noqa: E402
from bench.restart_check import ray_stop  # noqa: E402
from bench.run import machine  # noqa: E402
from deployments.http.app import create_app  # noqa: E402
from deployments.http.services import Services  # noqa: E402
from sweedle_core.config import Settings  # noqa: E402

PAGE = 20
ROUNDS = 3  # turns each of Serve and uvicorn take when measured together


def uvicorn_app() -> FastAPI:
    """The app without Ray, for `uvicorn --factory`: only the library routes work in it."""
    return create_app(Services.without_ray(Settings()))


# --- servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server in a process group of its own, its output in ``log``."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.started = time.monotonic()
        self.log = log
        self._output = open(log, "wb")
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"

    def wait_ready(self, ready: Callable[[httpx.Response], bool], path: str, timeout=300) -> float:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    tail = self.log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{self.process.args[:3]} exited; its log ends:\n{tail}")
                try:
                    if ready(client.get(path)):
                        return time.monotonic() - self.started
                except (httpx.HTTPError, KeyError, ValueError):
                    pass
                time.sleep(0.5)  # a benchmark, not a test: polling a server that is starting
        raise TimeoutError(f"{self.process.args[:3]} did not become ready")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)  # Ctrl-C: a graceful shutdown
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self._output.close()


def environment(data: Path, database: str) -> dict[str, str]:
    # A fresh cluster, and no API keys: the routes are measured, not the caller's shell.
    dropped = {"RAY_ADDRESS", "API_KEYS", "ADMIN_API_KEYS", "API_KEYS_FILE"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["DATABASE_URL"] = database
    env["STORAGE_DIR"] = str(data / "storage")
    return env


def serve_app(data: Path, database: str, port: int) -> Server:
    """`serve run` of configs/cpu.yaml with only its HTTP port changed."""
    config = yaml.safe_load((ROOT / "configs" / "cpu.yaml").read_text())
    config["http_options"]["port"] = port
    path = data / "cpu.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    serve = str(Path(sys.executable).parent / "serve")
    env = environment(data, database)
    return Server([serve, "run", str(path)], env, data / "serve.log", port)


def uvicorn_server(data: Path, database: str, port: int) -> Server:
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    command = [uvicorn, "bench.library:uvicorn_app", "--factory", "--port", str(port)]
    return Server(command, environment(data, database), data / "uvicorn.log", port)


# --- CPU time per process -----------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, str]]:
    """Every process: its parent and its command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                found[int(entry.name)] = (parent, (entry / "cmdline").read_text())
        except OSError:
            pass  # it ended meanwhile
    return found


def cluster(root: int) -> dict[str, list[int]]:
    """The processes `serve run` (``root``) started, directly or not: its cluster. The proxy and
    the Ingress replica are named (Ray titles its workers); the rest is "cluster"."""
    table = processes()
    tree, frontier = set(), {root}
    while frontier:
        tree |= frontier
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - tree
    named = {"proxy": "ray::ProxyActor", "ingress": "ray::ServeReplica:sweedle:Ingress"}
    groups = {name: [p for p in tree if table[p][1].startswith(t)] for name, t in named.items()}
    groups["cluster"] = sorted(tree - {p for pids in groups.values() for p in pids})
    return groups


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICK


def machine_busy_s() -> float:
    cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, cpu[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


class CpuMeter:
    """CPU seconds of named groups of processes, and of the whole machine, over a span."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.spent = dict.fromkeys([*groups, "machine"], 0.0)

    def measure(self, work: Callable[[], None]) -> None:
        before = {name: cpu_s(pids) for name, pids in self.groups.items()}
        busy = machine_busy_s()
        work()
        for name, pids in self.groups.items():
            self.spent[name] += cpu_s(pids) - before[name]
        self.spent["machine"] += machine_busy_s() - busy

    def per(self, n: float, scale: float = 1000.0) -> dict[str, float]:
        """Per request (ms, by default); "rest" is every process not named: a neighbour's."""
        spent = {name: scale * s / n for name, s in self.spent.items()}
        spent["rest"] = spent["machine"] - sum(v for k, v in spent.items() if k != "machine")
        return spent


# --- load ---------------------------------------------------------------------------------


def hammer(
    url: str, mix: list[tuple[str, int | None]], clients: int, requests: int, seconds: float
) -> tuple[list[float], float]:
    """``clients`` keep-alive clients cycle through ``mix`` (path, items expected; None: any
    200) until ``requests`` are done or ``seconds`` have passed; returns the latencies (s) and
    the wall time."""
    numbers = count()
    deadline = time.monotonic() + seconds

    def client() -> list[float]:
        latencies = []
        with httpx.Client(base_url=url, timeout=60) as http:
            while (i := next(numbers)) < requests and time.monotonic() < deadline:
                path, items = mix[i % len(mix)]
                start = time.perf_counter()
                response = http.get(path)
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200 or (
                    items is not None and len(response.json()["items"]) != items
                ):
                    raise AssertionError(f"{path}: {response.status_code} {response.text[:300]}")
        return latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [t for f in [pool.submit(client) for _ in range(clients)] for t in f.result()]
    return latencies, time.perf_counter() - start


@dataclass(frozen=True)
class Target:
    url: str
    groups: dict[str, list[int]]  # the processes whose CPU time is reported


def phase(
    targets: dict[str, Target], mix, clients: int, requests: int, seconds: float, rounds: int
) -> dict[str, dict]:
    """Each target gets a warm-up, then the load, in turns: ``rounds`` turns each, sharing
    ``requests`` and ``seconds`` out, so that a neighbour's work or the machine's drift weighs on
    every target alike."""
    for target in targets.values():
        hammer(target.url, mix, clients, 2 * clients + 4, 30)
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    wall = dict.fromkeys(targets, 0.0)
    meters = {name: CpuMeter(target.groups) for name, target in targets.items()}
    for _ in range(rounds):
        for name, target in targets.items():

            def turn(name: str = name, url: str = target.url) -> None:
                times, seconds_taken = hammer(
                    url, mix, clients, requests // rounds, seconds / rounds
                )
                latencies[name] += times
                wall[name] += seconds_taken

            meters[name].measure(turn)
    return {
        name: {
            "clients": clients,
            "requests": len(times),
            "p50_ms": 1000 * statistics.median(times),
            "p99_ms": 1000 * float(np.percentile(times, 99)),
            "requests_per_s": len(times) / wall[name],
            "cpu_ms_per_request": meters[name].per(len(times)),
        }
        for name, times in latencies.items()
    }


def measure(targets: dict[str, Target], mix, concurrency: int, seconds: float) -> dict:
    """The `/docs` floor, one client, then ``concurrency`` clients, for each target."""
    rounds = ROUNDS if len(targets) > 1 else 1
    bare = {name: Target(t.url, {}) for name, t in targets.items()}
    docs = phase(bare, [("/docs", None)], 1, 200, 3, rounds)  # no database: the servers' floor
    single = phase(targets, mix, 1, 200, seconds / 2, rounds)
    concurrent = phase(targets, mix, concurrency, 2000, seconds, rounds)
    figures = {
        name: {
            "docs_p50_ms": docs[name]["p50_ms"],
            "single": single[name],
            "concurrent": concurrent[name],
        }
        for name in targets
    }
    print(json.dumps(figures), flush=True)
    return figures


def idle_cores(groups: dict[str, list[int]], seconds: float = 3.0) -> dict[str, float]:
    """Cores kept busy while no request comes: by the groups, and by the rest (a neighbour's)."""
    meter = CpuMeter(groups)
    meter.measure(lambda: time.sleep(seconds))  # the window measured
    return meter.per(seconds, scale=1.0)


def main(
    assets: int = ASSETS, database: str | None = None, concurrency: int = 8, seconds: float = 15
) -> dict:
    """uvicorn alone; then, with the Serve app up beside it, Serve and uvicorn in turns (so the
    ratio is not a neighbour's doing), and the idle cluster's own CPU. On ``assets`` seeded into
    a new SQLite database, or on ``database``, one `library_seed` filled before (of ``assets``)."""
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        figures: dict = {"machine": machine(), "assets": assets, "concurrency": concurrency}
        if database is None:
            database = f"sqlite+aiosqlite:///{data / 'sweedle.db'}"
            catalogue = seed(database, assets)
            totals = {f"{s}/{t}": catalogue.total(s, t) for s, t in QUERIES}
            assert all(totals.values()), f"a query matches nothing: {totals}"
            figures |= {"seed_s": catalogue.seconds, "query_totals": totals}
        else:  # seeded before: each query matches more than a page (from 10,000 assets on)
            totals = {f"{s}/{t}": None for s, t in QUERIES}
        figures["database"] = make_url(database).get_backend_name()
        mix = [
            (
                f"/api/assets?{urlencode({'page_size': PAGE, 'search': s, 'tags': t})}",
                min(PAGE, totals[f"{s}/{t}"] or PAGE),
            )
            for s, t in QUERIES
        ]
        plain = uvicorn_server(data, database, free_port())
        serve = None
        try:
            plain.wait_ready(lambda r: r.status_code == 200, "/api/assets?page_size=1", 60)
            # The totals the API reports are the ones the seed predicts (where it counts them).
            for (path, _), expected in zip(mix, totals.values(), strict=True):
                page = httpx.get(plain.url + path).json()
                if expected is not None and page["total_kind"] == "exact":
                    assert page["total"] == expected, f"{path}: total {page}, seeded {expected}"
            me = [os.getpid()]
            alone = Target(plain.url, {"uvicorn": [plain.process.pid], "client": me})
            figures["idle_before_ray"] = idle_cores(alone.groups)
            figures["uvicorn"] = measure({"uvicorn": alone}, mix, concurrency, seconds)["uvicorn"]
            serve = serve_app(data, database, free_port())
            figures["serve_startup_s"] = serve.wait_ready(
                lambda r: r.json()["generation"]["state"] == "ready", "/health"
            )
            ray = cluster(serve.process.pid)
            figures["idle_serve_up"] = idle_cores(ray)
            targets = {
                "serve": Target(serve.url, {**ray, "client": me}),
                "uvicorn_beside_ray": Target(plain.url, {**alone.groups, **ray}),
            }
            figures |= measure(targets, mix, concurrency, seconds)
        finally:
            plain.stop()
            if serve is not None:
                serve.stop()
                ray_stop()
    return figures


def render(f: dict) -> str:
    u, b, s = f["uvicorn"], f["uvicorn_beside_ray"], f["serve"]
    keys = ("p50_ms", "p99_ms", "requests_per_s")

    def row(label: str, x: dict) -> str:
        cells = [f"{x[k][m]:.1f}" for k in ("single", "concurrent") for m in keys]
        return f"| {label} | {x['docs_p50_ms']:.1f} | " + " | ".join(cells) + " |"

    def ratio(label: str, y: dict) -> str:
        cells = [f"**{s[k][m] / y[k][m]:.2f}**" for k in ("single", "concurrent") for m in keys]
        floor = s["docs_p50_ms"] / y["docs_p50_ms"]
        return f"| {label} | {floor:.1f} | " + " | ".join(cells) + " |"

    def cpu_row(label: str, x: dict) -> str:
        c = x["concurrent"]["cpu_ms_per_request"]
        if "uvicorn" in c:
            app = f"{c['uvicorn']:.1f}"
            ray = f"{c['proxy'] + c['ingress'] + c['cluster']:.1f} (idle)" if "proxy" in c else "-"
        else:
            app = f"proxy {c['proxy']:.1f} + Ingress replica {c['ingress']:.1f}"
            ray = f"{c['cluster']:.1f}"
        return (
            # "others" can come out a little below 0: /proc counts in clock ticks.
            f"| {label} | {app} | {ray} | {c['client']:.1f} | {max(0.0, c['rest']):.1f} | "
            f"{c['machine']:.1f} |"
        )

    idle = f["idle_serve_up"]
    c = f["concurrency"]
    if "query_totals" in f:
        totals = sorted(f["query_totals"].values())
        data = (
            f"seeded by bulk inserts in {f['seed_s']:.1f} s), cycling through {len(totals)} "
            f"(search, tag) pairs that match {totals[0]} to {totals[-1]} assets"
        )
    else:
        data = f"seeded before), cycling through {len(QUERIES)} (search, tag) pairs"
    return f"""## The asset library through Serve and through plain uvicorn (bench/library.py)

Machine: {f["machine"]}.
`GET /api/assets?page_size=20&search=…&tags=…` on {f["assets"]:,} completed assets ({f["database"]},
{data}; every response checked (a 200 and the page the seed predicts). The same `create_app` served by `serve run configs/cpu.yaml` (ready in
{f["serve_startup_s"]:.0f} s) and by `uvicorn bench.library:uvicorn_app --factory` (one worker, no
Ray): uvicorn first alone, then Serve and uvicorn in turns ({ROUNDS} each) with the Serve app up. Each
after a warm-up; 1 client, then {c} keep-alive clients. Latencies in ms.

| server | `/docs` p50 | 1 client p50 | p99 | requests/s | {c} clients p50 | p99 | requests/s |
| --- | --- | --- | --- | --- | --- | --- | --- |
{row("uvicorn, before Ray started", u)}
{row("uvicorn, in turns with Serve", b)}
{row("Serve, in turns with uvicorn", s)}
{ratio("**Serve / uvicorn** (in turns)", b)}
{ratio("Serve / uvicorn before Ray", u)}

CPU per request at {c} clients, ms ("others": processes that are neither ours nor the
cluster's, e.g. a neighbour's):

| server | the app's process(es) | the rest of the Ray cluster | the load client | others | whole machine |
| --- | --- | --- | --- | --- | --- |
{cpu_row("uvicorn, before Ray started", u)}
{cpu_row("uvicorn, in turns with Serve", b)}
{cpu_row("Serve, in turns with uvicorn", s)}

With no requests coming, the Serve app's cluster keeps
{idle["proxy"] + idle["ingress"] + idle["cluster"]:.2f} cores busy (proxy {idle["proxy"]:.2f},
Ingress replica {idle["ingress"]:.2f}, the rest {idle["cluster"]:.2f}: controller, GCS, raylet,
dashboard, the other replicas); an idle uvicorn {f["idle_before_ray"]["uvicorn"]:.2f}.
"""


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assets", type=int, default=ASSETS)
    parser.add_argument(
        "--database", help="a database bench.library_seed filled with --assets assets before"
    )
    arguments = parser.parse_args()
    result = main(arguments.assets, arguments.database)
    print(json.dumps(result, indent=2))
    print(render(result))
