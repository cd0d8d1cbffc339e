"""Webhooks: signatures, the payload, the delivery rows, and delivery to a real receiver."""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import delete

from sweedle_core.db.models import Asset, new_id, utcnow
from sweedle_core.db.store import Store
from sweedle_core.db.webhook_deliveries import new_delivery
from sweedle_core.db.webhook_payload import EVENTS, webhook_payload
from sweedle_core.jobs.states import JobStatus
from sweedle_core.params import GenerationParams, Priority
from sweedle_core.webhooks.dispatcher import WebhookDispatcher, encode_body
from sweedle_core.webhooks.signing import SIGNATURE_HEADER, verify

SECRET = "whsec_test"
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


# --- a real receiver on loopback ---------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    verified: bool  # the signature checked out, as a receiver would check it
    at: float


class Receiver:
    """An HTTP server in a thread that answers POSTs with scripted status codes (the last one
    repeats) and keeps every request it got."""

    def __init__(self, codes: tuple[int, ...], hang: bool = False) -> None:
        self.codes = list(codes)
        self.hang = hang
        self.release = threading.Event()
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.receiver = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        # A short poll: shutdown() waits up to one poll interval (0.5 s by default).
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        verified = verify(SECRET, body, headers.get(SIGNATURE_HEADER.lower(), ""))
        with self._lock:
            self.requests.append(Received(path, headers, body, verified, time.time()))
            return self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {name.lower(): value for name, value in self.headers.items()}
        code = receiver.answer(self.path, headers, body)
        if receiver.hang:
            receiver.release.wait(5)
        self.send_response(code)
        if 300 <= code < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(*codes: int, hang: bool = False) -> Receiver:
        made.append(Receiver(codes, hang))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
async def dispatcher(store):
    made: list[WebhookDispatcher] = []

    def make(**options: object) -> WebhookDispatcher:
        options = {
            "max_attempts": 3,
            "backoff_s": 0.01,
            "backoff_max_s": 0.05,
            "allowed_networks": [LOOPBACK],  # the test receivers listen there
            **options,
        }
        made.append(WebhookDispatcher(store, SECRET, **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for made_dispatcher in made:
        await made_dispatcher.stop()


async def public_resolver(host: str, port: int) -> list[str]:
    """Every name resolves to one public address (the tests' made-up names do not resolve)."""
    return ["93.184.215.14"]


def refused_url() -> str:
    """A loopback URL nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


async def create_job(store: Store):
    return await store.create_job(
        name="chair",
        params=GenerationParams(),
        priority=Priority.NORMAL,
        original_filename=None,
        input_path="x/input.png",
    )


async def add_delivery(store: Store, url: str, job=None, **fields: object) -> str:
    """A pending delivery of a completed-job payload, written as finish_job writes one."""
    job = job or await create_job(store)
    delivery_id = new_id()
    payload = webhook_payload("completed", job, job.asset, delivery_id)
    async with store.sessions.begin() as session:
        delivery = new_delivery(delivery_id, job, payload, url=url)
        for name, value in fields.items():
            setattr(delivery, name, value)
        session.add(delivery)
    return delivery_id


async def delete_asset(store: Store, asset_id: str) -> None:
    async with store.sessions.begin() as session:
        await session.execute(delete(Asset).where(Asset.id == asset_id))


# --- payload ---------------------------------------------------------------------------


async def test_payload_of_a_completed_job_links_its_files(store):
    job = await create_job(store)
    fields = {"vertex_count": 482, "face_count": 960}
    assert await store.finish_job(job.id, 0, JobStatus.COMPLETED, {}, fields)
    job = await store.get_job(job.id)

    payload = webhook_payload(JobStatus.COMPLETED, job, job.asset, "d1")

    assert json.loads(json.dumps(payload)) == payload  # plain JSON types only
    assert (payload["id"], payload["event"]) == ("d1", "job.completed")
    assert payload["job"]["id"] == job.id
    assert payload["job"]["status"] == "completed"
    assert payload["job"]["completed_at"].endswith("+00:00")
    assert payload["job"]["created_at"].endswith("+00:00")
    assert payload["created_at"].endswith("+00:00")
    asset = payload["asset"]
    assert (asset["id"], asset["name"], asset["status"]) == (job.asset_id, "chair", "completed")
    assert (asset["vertex_count"], asset["face_count"]) == (482, 960)
    assert asset["download_url"] == f"/api/assets/{job.asset_id}/download"
    assert asset["thumbnail_url"] == f"/api/assets/{job.asset_id}/thumbnail"

    # A job submitted under a route prefix links under it.
    job.root_path = "/studio-a"
    prefixed = webhook_payload("completed", job, job.asset, "d2")["asset"]
    assert prefixed["download_url"] == f"/studio-a/api/assets/{job.asset_id}/download"


async def test_payload_of_a_failed_job_has_its_error_and_no_links(store):
    job = await create_job(store)
    assert await store.finish_job(job.id, 0, JobStatus.FAILED, {"error": "out of memory"}, {})
    job = await store.get_job(job.id)

    payload = webhook_payload("failed", job, job.asset, "d2")

    assert payload["event"] == EVENTS["failed"] == "job.failed"
    assert (payload["job"]["status"], payload["job"]["error"]) == ("failed", "out of memory")
    assert payload["asset"]["download_url"] is None
    assert payload["asset"]["thumbnail_url"] is None
    with pytest.raises(ValueError, match="pending"):
        webhook_payload("pending", job, job.asset, "d3")


# --- delivery rows -----------------------------------------------------------------------


async def test_record_attempt_logs_it_and_schedules_the_next_by_backoff(store):
    delivery_id = await add_delivery(store, "http://receiver.invalid/hook")
    now = utcnow()

    first = await store.webhook_deliveries.record_attempt(
        delivery_id,
        status_code=503,
        error="HTTP 503",
        duration_ms=12.34,
        max_attempts=2,
        backoff=lambda attempt: 4.0 * attempt,
        now=now,
    )
    assert first is not None
    assert (first.status, first.attempts, first.last_status_code) == ("pending", 1, 503)
    assert first.next_attempt_at == now + timedelta(seconds=4)
    assert first.log == [
        {
            "attempt": 1,
            "at": now.isoformat(),
            "status_code": 503,
            "error": "HTTP 503",
            "duration_ms": 12.3,
        }
    ]

    second = await store.webhook_deliveries.record_attempt(
        delivery_id,
        status_code=None,
        error="ConnectError: refused",
        duration_ms=1.0,
        max_attempts=2,
        backoff=lambda attempt: 4.0,
    )
    stored = await store.webhook_deliveries.get(delivery_id)
    assert stored is not None and second is not None
    assert (stored.status, stored.attempts, stored.next_attempt_at) == ("failed", 2, None)
    assert (stored.last_status_code, stored.last_error) == (None, "ConnectError: refused")
    assert [entry["attempt"] for entry in stored.log] == [1, 2]


async def test_record_attempt_on_a_deleted_delivery_returns_none(store):
    job = await create_job(store)
    delivery_id = await add_delivery(store, "http://receiver.invalid/hook", job=job)
    await delete_asset(store, job.asset_id)  # the asset takes its jobs and their deliveries

    assert await store.webhook_deliveries.get(delivery_id) is None
    assert (
        await store.webhook_deliveries.record_attempt(
            delivery_id,
            status_code=200,
            error=None,
            duration_ms=1.0,
            max_attempts=3,
            backoff=lambda attempt: 1.0,
        )
        is None
    )


# --- delivery ----------------------------------------------------------------------------


async def test_delivery_is_retried_until_the_receiver_accepts_it(store, receiver, dispatcher):
    server = receiver(500, 500, 200)
    delivery_id = await add_delivery(store, server.url)
    webhooks = dispatcher()

    webhooks.schedule(delivery_id)
    await webhooks.wait_idle()

    delivery = await store.webhook_deliveries.get(delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert (delivery.last_error, delivery.next_attempt_at) == (None, None)
    assert [entry["status_code"] for entry in delivery.log] == [500, 500, 200]
    assert [entry["error"] for entry in delivery.log] == ["HTTP 500", "HTTP 500", None]
    assert [entry["attempt"] for entry in delivery.log] == [1, 2, 3]

    assert len(server.requests) == 3
    assert all(request.verified for request in server.requests)
    assert {request.body for request in server.requests} == {encode_body(delivery.payload)}
    assert json.loads(server.requests[0].body) == delivery.payload
    for request in server.requests:
        assert request.path == "/hook"
        assert request.headers["x-sweedle-delivery"] == delivery_id
        assert request.headers["x-sweedle-event"] == "job.completed"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"] == "Sweedle-Webhooks/1"


async def test_each_attempt_is_signed_with_its_own_timestamp(store, receiver, dispatcher):
    server = receiver(500, 200)
    delivery_id = await add_delivery(store, server.url)
    ticks = itertools.count(1_700_000_000)  # a clock that moves a second per reading
    webhooks = dispatcher(clock=lambda: float(next(ticks)))

    webhooks.schedule(delivery_id)
    await webhooks.wait_idle()

    stamps = []
    for request in server.requests:
        header = request.headers["x-sweedle-signature"]
        stamp = int(header.split(",")[0].removeprefix("t="))
        assert verify(SECRET, request.body, header, now=stamp)
        stamps.append(stamp)
    assert len(stamps) == 2 and stamps[0] < stamps[1]


async def test_a_receiver_that_always_fails_exhausts_the_attempts(store, receiver, dispatcher):
    server = receiver(500)
    delivery_id = await add_delivery(store, server.url)
    webhooks = dispatcher(max_attempts=4)

    webhooks.schedule(delivery_id)
    await webhooks.wait_idle()

    delivery = await store.webhook_deliveries.get(delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 4, None)
    assert (delivery.last_status_code, delivery.last_error) == (500, "HTTP 500")
    assert len(server.requests) == 4


@pytest.mark.parametrize(
    ("url", "error_start"),
    [
        pytest.param(None, "unreachable", id="connection-refused"),
        pytest.param("ftp://receiver.invalid/hook", "refused: webhook_url must be", id="not-http"),
    ],
)
async def test_unreachable_receivers_record_coarse_errors(store, dispatcher, url, error_start):
    """What the submitter reads back says no more than that: never the network error's text
    (which would tell an open port from a closed one)."""
    delivery_id = await add_delivery(store, url or refused_url())
    webhooks = dispatcher(max_attempts=2)

    webhooks.schedule(delivery_id)
    await webhooks.wait_idle()

    delivery = await store.webhook_deliveries.get(delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 2, None)
    assert [entry["status_code"] for entry in delivery.log] == [None, None]
    assert all(entry["error"].startswith(error_start) for entry in delivery.log)
    assert not any("Connect" in entry["error"] for entry in delivery.log)


async def test_a_redirect_is_a_failure_and_not_followed(store, receiver, dispatcher):
    server = receiver(302)
    delivery_id = await add_delivery(store, server.url)
    webhooks = dispatcher(max_attempts=1)

    webhooks.schedule(delivery_id)
    await webhooks.wait_idle()

    delivery = await store.webhook_deliveries.get(delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.last_status_code) == ("failed", 302)
    assert "redirects are not followed" in delivery.last_error
    assert [request.path for request in server.requests] == ["/hook"]


async def test_a_receiver_that_does_not_answer_times_out(store, receiver, dispatcher):
    server = receiver(200, hang=True)
    delivery_id = await add_delivery(store, server.url)
    webhooks = dispatcher(max_attempts=1, timeout_s=0.1)

    webhooks.schedule(delivery_id)
    await webhooks.wait_idle()

    delivery = await store.webhook_deliveries.get(delivery_id)
    assert delivery is not None
    assert (delivery.status, delivery.last_status_code) == ("failed", None)
    assert delivery.last_error == "unreachable"


async def test_scheduling_twice_sends_once(store, receiver, dispatcher):
    server = receiver(200)
    delivery_id = await add_delivery(store, server.url)
    webhooks = dispatcher()

    webhooks.schedule(delivery_id)
    webhooks.schedule(delivery_id)
    await webhooks.wait_idle()
    webhooks.schedule(delivery_id)  # settled: nothing more to send
    await webhooks.wait_idle()

    assert len(server.requests) == 1
    delivery = await store.webhook_deliveries.get(delivery_id)
    assert delivery is not None and (delivery.status, delivery.attempts) == ("delivered", 1)


async def test_start_resumes_pending_deliveries_when_they_are_due(store, receiver, dispatcher):
    server = receiver(200)
    due = utcnow() + timedelta(seconds=0.1)
    earlier = [{"attempt": 1, "at": utcnow().isoformat(), "status_code": 500}]
    pending = await add_delivery(
        store, server.url, attempts=1, log=earlier, last_status_code=500, next_attempt_at=due
    )
    settled = await add_delivery(store, server.url, status="delivered", attempts=1)

    webhooks = dispatcher()  # as if the process had restarted
    await webhooks.start()
    await webhooks.wait_idle()

    assert [request.headers["x-sweedle-delivery"] for request in server.requests] == [pending]
    assert server.requests[0].at >= due.timestamp()
    delivery = await store.webhook_deliveries.get(pending)
    assert delivery is not None
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert [entry["status_code"] for entry in delivery.log] == [500, 200]
    untouched = await store.webhook_deliveries.get(settled)
    assert untouched is not None and untouched.attempts == 1


async def test_a_pending_delivery_without_a_task_is_resumed_by_the_periodic_pass(
    store, receiver, dispatcher
):
    server = receiver(200)
    orphan = await add_delivery(store, server.url)  # its task ended (say, a database error)
    attempted = asyncio.Event()

    async def on_attempt(_: object) -> None:
        attempted.set()

    webhooks = dispatcher(on_attempt=on_attempt)
    passes = asyncio.ensure_future(webhooks.resume_every(0.01))
    await asyncio.wait_for(attempted.wait(), 10)
    passes.cancel()
    delivery = await store.webhook_deliveries.get(orphan)
    assert delivery is not None and delivery.status == "delivered"
    assert [r.headers["x-sweedle-delivery"] for r in server.requests] == [orphan]


async def test_stop_leaves_a_waiting_delivery_pending(store, receiver, dispatcher):
    server = receiver(200)
    delivery_id = await add_delivery(
        store, server.url, next_attempt_at=utcnow() + timedelta(hours=1)
    )
    webhooks = dispatcher()
    await webhooks.start()

    await webhooks.stop()
    await webhooks.wait_idle()

    delivery = await store.webhook_deliveries.get(delivery_id)
    assert delivery is not None and (delivery.status, delivery.attempts) == ("pending", 0)
    assert server.requests == []


async def test_a_deleted_delivery_stops_quietly(store, receiver, dispatcher, caplog):
    server = receiver(200)
    job = await create_job(store)
    delivery_id = await add_delivery(store, server.url, job=job)
    await delete_asset(store, job.asset_id)
    webhooks = dispatcher()

    with caplog.at_level(logging.INFO, logger="sweedle_core.webhooks"):
        webhooks.schedule(delivery_id)
        await webhooks.wait_idle()

    assert server.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_delivery_deleted_between_attempts_stops_quietly(store, dispatcher, caplog):
    job = await create_job(store)
    delivery_id = await add_delivery(store, "http://receiver.test/hook", job=job)
    sent: list[httpx.Request] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        await delete_asset(store, job.asset_id)  # deleted while the attempt is in flight
        return httpx.Response(500)

    webhooks = dispatcher(transport=httpx.MockTransport(answer), resolver=public_resolver)
    with caplog.at_level(logging.INFO, logger="sweedle_core.webhooks"):
        webhooks.schedule(delivery_id)
        await webhooks.wait_idle()

    assert len(sent) == 1
    assert await store.webhook_deliveries.get(delivery_id) is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
