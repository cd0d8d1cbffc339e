"""One Ray instance and one running Sweedle app for the whole serve tier (its tests, then the
ones that restart it; it stops when the tier ends)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from ray import serve

from deployments.app import AppArgs, build_app
from tests.app_settings import KEYS, app_settings, projects_of
from tests.serve.client import Sweedle
from tests.serve.gate import POOL_GATE_NAME, get_gate
from tests.stand_ins.s3_server import S3Server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
APP = "sweedle"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The serve tier's tests that restart the cluster run last among its tests, so the others
    share one Ray instance; just before them, those that leave the session's app deployed with
    other settings (a restart deploys it afresh, from `Deployment.settings`, so nothing needs to
    deploy it back). The tier's tests stay where they were among the others: its Ray instance
    (package-scoped) stops when they end, not at the end of the session."""

    def order(item: pytest.Item) -> int:
        if item.get_closest_marker("restarts_cluster") is not None:
            return 2
        return 1 if item.get_closest_marker("redeploys_app") is not None else 0

    places = [i for i, item in enumerate(items) if item.path.is_relative_to(HERE)]
    ordered = sorted((items[i] for i in places), key=order)
    for place, item in zip(places, ordered, strict=True):
        items[place] = item


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Deployment:
    """The running app and how to start it again (same database, same files)."""

    def __init__(self, data_dir: Path, s3: S3Server | None = None) -> None:
        self.port = free_port()
        # The S3 test server's AWS_* variables reach every Ray worker, for the apps that store
        # files there (STORAGE_URL); the others never read them.
        self.s3 = s3
        self.settings = app_settings(data_dir)
        self.projects = projects_of(data_dir)
        self.projects.mkdir(parents=True)
        self.storage_root = data_dir / "storage"
        self.db_path = data_dir / "sweedle.db"
        self.client = Sweedle(f"http://127.0.0.1:{self.port}", KEYS["admin"][0])

    def start_ray(self) -> None:
        ray.init(
            address="local",
            num_cpus=8,
            include_dashboard=False,
            namespace="sweedle",
            runtime_env={
                "env_vars": {"PYTHONPATH": str(ROOT), **(self.s3.env() if self.s3 else {})}
            },
        )
        serve.start(http_options={"host": "127.0.0.1", "port": self.port})

    def deploy(self, generator_replicas: int = 1) -> None:
        args = AppArgs(settings=self.settings, generator_replicas=generator_replicas)
        serve.run(build_app(args), name=APP, route_prefix="/")
        self.wait_for_generators(generator_replicas)

    def wait_for_generators(self, count: int) -> None:
        def enough(status: dict) -> bool:
            ready = ("idle", "generating")
            return sum(g["state"] in ready for g in status["generators"].values()) >= count

        with self.client.feed() as feed:
            if not enough(feed.snapshot):
                feed.wait_for(lambda e: e["type"] == "queue_status" and enough(e), timeout=120)

    def stop(self) -> None:
        """The end of the tier: the cluster goes as a whole (Serve's graceful shutdown of every
        replica would add ~8 s and check nothing; what must end cleanly, its test ends)."""
        self.crash()

    def crash(self) -> None:
        """Stop the whole Ray cluster at once, as `ray stop` or a power cut would: no replica
        shuts down gracefully and no actor survives."""
        ray.shutdown()
        serve.context._set_global_client(None)


@pytest.fixture(scope="package")
def deployment(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Deployment]:
    try:
        s3: S3Server | None = request.getfixturevalue("s3_server")
    except pytest.skip.Exception:
        s3 = None  # the S3 app's tests skip, saying why; the rest run
    deployment = Deployment(tmp_path_factory.mktemp("sweedle"), s3)
    deployment.start_ray()
    deployment.deploy()
    yield deployment
    deployment.stop()


@pytest.fixture
def client(deployment: Deployment) -> Sweedle:
    return deployment.client


@pytest.fixture
def pool_gate(deployment: Deployment) -> Iterator[ray.actor.ActorHandle]:
    """The test gate of the export pool, closed: CPU stages wait at it until the test opens
    it (it stays, open, after the test)."""
    gate = get_gate(POOL_GATE_NAME)
    ray.get(gate.close.remote())
    yield gate
    ray.get(get_gate(POOL_GATE_NAME).open.remote())


@pytest.fixture
def gate(deployment: Deployment) -> Iterator[ray.actor.ActorHandle]:
    """The test gate, closed: generations wait at it until the test opens it."""
    gate = get_gate()
    ray.get(gate.close.remote())
    yield gate
    ray.get(get_gate().open.remote())  # a fresh handle: the cluster may have been restarted
