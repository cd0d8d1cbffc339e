"""Webhooks cannot reach inside: a destination in any address form of a non-public network is
refused (at submit, and again before each attempt), and an attempt connects to the address that
was checked, so a name cannot pass the check and then resolve elsewhere."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sweedle_core.db.engine import migrate
from sweedle_core.db.models import new_id
from sweedle_core.db.store import Store
from sweedle_core.db.webhook_deliveries import new_delivery
from sweedle_core.db.webhook_payload import webhook_payload
from sweedle_core.params import GenerationParams, Priority
from sweedle_core.webhooks.destinations import DestinationRefused, checked_destination
from sweedle_core.webhooks.dispatcher import WebhookDispatcher

PUBLIC = "93.184.215.14"
NAMES = {
    "hooks.example": [PUBLIC],
    "metadata.internal": ["169.254.169.254"],
    "intranet.example": [PUBLIC, "10.1.2.3"],  # one private answer among public ones is enough
    "localhost.example": ["::1"],
}


async def resolver(host: str, port: int) -> list[str]:
    """Names as a resolver would answer them; numeric hosts as the system resolver does."""
    if host in NAMES:
        return NAMES[host]
    from sweedle_core.webhooks.destinations import system_resolver

    return await system_resolver(host, port)


REFUSED = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.1/hook", "loopback"),
    ("http://2130706433/hook", "loopback"),  # 127.0.0.1 as one number
    ("http://0x7f000001/hook", "loopback"),  # in hexadecimal
    ("http://0177.0.0.1/hook", "loopback"),  # in octal
    ("http://[::1]:8080/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),  # IPv4-mapped
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[2002:a9fe:a9fe::1]/hook", "link-local"),  # 6to4 of 169.254.169.254
    ("http://10.0.0.1/hook", "private"),
    ("http://172.16.5.4/hook", "private"),
    ("https://192.168.1.1:8443/hook", "private"),
    ("http://[64:ff9b::a00:1]/hook", "private"),  # NAT64 of 10.0.0.1
    ("http://[fd12:3456::1]/hook", "unique-local"),
    ("http://100.64.0.1/hook", "carrier-grade NAT"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://[ff02::1]/hook", "multicast"),
    ("http://metadata.internal/hook", "link-local"),
    ("http://intranet.example/hook", "private"),
    ("http://localhost.example/hook", "loopback"),
]


@pytest.mark.parametrize(("url", "rule"), REFUSED, ids=[url for url, _ in REFUSED])
async def test_every_form_of_an_inside_address_is_refused_naming_the_rule(url, rule) -> None:
    with pytest.raises(DestinationRefused) as refused:
        await checked_destination(url, resolver=resolver)

    assert rule in refused.value.message
    assert "WEBHOOK_ALLOWED_CIDRS" in refused.value.message
    assert "10.1.2.3" not in refused.value.message  # what a name resolves to stays inside


async def test_a_public_destination_passes_with_the_address_to_connect_to() -> None:
    destination = await checked_destination("https://hooks.example/in?t=1", resolver=resolver)

    assert (destination.host, destination.port, destination.address) == (
        "hooks.example",
        443,
        PUBLIC,
    )


async def test_an_operator_allows_an_inside_network_and_only_that() -> None:
    allowed = [ipaddress.ip_network("10.0.0.0/8")]

    destination = await checked_destination("http://10.1.2.3:9000/hook", allowed, resolver)

    assert destination.address == "10.1.2.3"
    with pytest.raises(DestinationRefused, match="private"):
        await checked_destination("http://192.168.1.1/hook", allowed, resolver)
    with pytest.raises(DestinationRefused, match="loopback"):
        await checked_destination("http://[::1]/hook", allowed, resolver)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(DestinationRefused, match="does not resolve"):
        await checked_destination("http://receiver.invalid/hook")


# --- at connect time ----------------------------------------------------------------------


class Receiver:
    """A local HTTP receiver that records the Host header of each POST."""

    def __init__(self) -> None:
        hosts: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hosts.append(self.headers.get("Host", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.hosts = hosts
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
async def store(tmp_path):  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path / 'sweedle.db'}"
    migrate(url)
    made = Store.from_url(url)
    yield made
    await made.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.close()


async def delivery_to(store: Store, url: str) -> str:
    """A pending delivery of a completed job's payload to ``url``."""
    job = await store.create_job(
        name="crate",
        params=GenerationParams(),
        priority=Priority.NORMAL,
        original_filename=None,
        input_path="x/input.png",
    )
    delivery_id = new_id()
    async with store.sessions.begin() as session:
        payload = webhook_payload("completed", job, job.asset, delivery_id)
        session.add(new_delivery(delivery_id, job, payload, url=url))
    return delivery_id


async def deliver(store: Store, delivery_id: str, **options: object):  # type: ignore[no-untyped-def]
    webhooks = WebhookDispatcher(store, "whsec_test", max_attempts=1, **options)  # type: ignore[arg-type]
    try:
        webhooks.schedule(delivery_id)
        await webhooks.wait_idle()
    finally:
        await webhooks.stop()
    return await store.webhook_deliveries.get(delivery_id)


async def test_an_attempt_connects_to_the_checked_address_under_its_own_name(
    store, receiver
) -> None:
    async def pinned(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "hooks.example" else []

    delivery_id = await delivery_to(store, f"http://hooks.example:{receiver.port}/hook")

    done = await deliver(
        store, delivery_id, resolver=pinned, allowed_networks=[ipaddress.ip_network("127.0.0.0/8")]
    )

    assert done.status == "delivered"
    assert receiver.hosts == [f"hooks.example:{receiver.port}"]


async def test_a_destination_that_turned_inside_after_submit_is_refused_at_connect(
    store, receiver
) -> None:
    """Passed at submit, the name now resolves to loopback (DNS rebinding): no request is
    sent, and the submitter reads the rule, not a network error."""

    async def rebound(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    delivery_id = await delivery_to(store, f"http://hooks.example:{receiver.port}/hook")

    done = await deliver(store, delivery_id, resolver=rebound)

    assert done.status == "failed" and receiver.hosts == []
    assert done.last_error.startswith("refused: ") and "loopback" in done.last_error


async def test_site_local_ipv6_is_refused_too() -> None:
    with pytest.raises(DestinationRefused, match="site-local"):
        await checked_destination("http://[fec0::1]/hook", resolver=resolver)


async def test_an_international_name_is_resolved_as_it_is_sent() -> None:
    """The resolver sees the IDNA form the HTTP client puts in the Host header."""
    asked: list[str] = []

    async def recording(host: str, port: int) -> list[str]:
        asked.append(host)
        return [PUBLIC]

    destination = await checked_destination("https://bücher.example/hook", resolver=recording)

    assert asked == ["xn--bcher-kva.example"] and destination.host == "xn--bcher-kva.example"


async def test_a_proxy_in_the_environment_is_not_used(store, receiver, monkeypatch) -> None:
    """A proxy would connect wherever it is told, past the check: deliveries go direct."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")

    async def pinned(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    delivery_id = await delivery_to(store, f"http://hooks.example:{receiver.port}/hook")
    done = await deliver(
        store, delivery_id, resolver=pinned, allowed_networks=[ipaddress.ip_network("127.0.0.0/8")]
    )

    assert done.status == "delivered" and len(receiver.hosts) == 1
