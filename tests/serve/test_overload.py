"""An Ingress past its slots and its waiting room answers 503 with Retry-After at once, and
what waited is served when a slot frees: no request waits for ever.

The app's own Ingress has 2000 slots; to reach its limits with a few connections, the same
Ingress class is deployed a second time, beside the session app and sharing its deployments and
queue, with 2 slots and room for 1 waiting request."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import pytest
from ray import serve

from deployments.app import resolve_paths
from deployments.ingress import Ingress
from deployments.job_queue import QueueLink
from sweedle_core.config import Settings
from tests.serve.client import Sweedle
from tests.serve.conftest import APP, Deployment

NAME = "overload"


@pytest.fixture(scope="module")
def small(deployment: Deployment) -> Iterator[Sweedle]:
    """The Ingress with 2 slots and 1 waiting place, at /overload."""
    handles = [
        serve.get_deployment_handle(name, app_name=APP)
        for name in ("Preprocessor", "Exporter", "Generator", "TextToImage")
    ]
    settings = resolve_paths(Settings(**deployment.settings))
    queue = QueueLink(settings, handles[0], handles[1])  # opens the session app's queue
    ingress = Ingress.options(max_ongoing_requests=2, max_queued_requests=1)
    serve.run(ingress.bind(settings, queue, *handles), name=NAME, route_prefix=f"/{NAME}")
    yield Sweedle(f"{deployment.client.base_url}/{NAME}", deployment.client.api_key)
    serve.delete(NAME, _blocking=False)  # its replica stops in the background


def test_overload_answers_503_with_retry_after_and_the_waiting_request_is_served(small):
    held = [small.feed(), small.feed()]  # each open feed holds one of the two slots
    try:
        with ThreadPoolExecutor(2) as pool:
            calls = [pool.submit(small.http.get, "/api/assets") for _ in range(2)]
            done, waiting = wait(calls, timeout=60, return_when=FIRST_COMPLETED)

            (refused,) = (call.result() for call in done)
            assert refused.status_code == 503, refused.text
            assert int(refused.headers["retry-after"]) >= 1
            (queued,) = waiting  # the other one waits for a slot, and gets it
            held.pop().close()
            assert queued.result(timeout=60).status_code == 200
    finally:
        for feed in held:
            feed.close()
