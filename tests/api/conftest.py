"""The api tier: the real FastAPI app over real `Services` (a migrated SQLite database, files
in a local folder, the keys file and settings of the serve tier's app), with its Ray side in
this process (`tests.api.stand_ins`). No Ray cluster starts: what needs one is the serve
tier's."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import ray
from starlette.testclient import TestClient, WebSocketTestSession

from deployments.broadcast import Broadcaster
from deployments.http.app import create_app
from deployments.http.services import Services
from deployments.submission import Submission
from sweedle_core.access.keyring import KeyRing
from sweedle_core.config import Settings
from sweedle_core.db.store import Store
from sweedle_core.storage import build_storage
from tests.api.stand_ins import ray_side
from tests.app_settings import KEYS, app_settings
from tests.serve.client import Sweedle

BASE_URL = "http://127.0.0.1"
FEED_URL = "ws://127.0.0.1/ws/progress"


class Through(httpx.BaseTransport):
    """httpx's ASGI transport, driven on the app's one event loop (the TestClient's): every
    caller's requests run there, where the database pool and the queue live."""

    def __init__(self, app_client: TestClient) -> None:
        assert app_client.portal is not None, "the TestClient must be entered"
        self.portal = app_client.portal
        self.asgi = httpx.ASGITransport(app=app_client.app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body whole, which the ASGI transport then sends
        return self.portal.call(self._send, request)

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.asgi.handle_async_request(request)
        body = httpx.ByteStream(await response.aread())
        return httpx.Response(response.status_code, headers=response.headers, stream=body)


class ApiApp:
    """The app with its data in ``data_dir``: its database a copy of ``migrated_db``."""

    def __init__(self, data_dir: Path, migrated_db: Path) -> None:
        self.settings = Settings(**app_settings(data_dir))
        shutil.copyfile(migrated_db, data_dir / "sweedle.db")
        self.storage_root = self.settings.storage_dir
        store = Store.from_settings(self.settings)
        storage = build_storage(self.settings)
        handles = ray_side(self.settings, store, storage)
        self.services = Services(
            settings=self.settings,
            store=store,
            storage=storage,
            keyring=KeyRing.from_settings(self.settings),
            submission=Submission(
                self.settings, store, storage, handles["preprocessor"], handles["queue"]
            ),
            broadcaster=Broadcaster(handles["queue"]),
            **handles,
        )
        # Entered: one event loop (in a thread of its own) for every request, until `close`.
        self.http = TestClient(create_app(self.services), base_url=BASE_URL).__enter__()
        self.client = Sweedle(BASE_URL, KEYS["admin"][0], Through(self.http))

    def feed(self, api_key: str | None) -> WebSocketTestSession:
        """The progress feed's WebSocket, the key as ``?api_key=`` (None: no key); entered, it
        is connected."""
        query = f"?api_key={api_key}" if api_key else ""
        return self.http.websocket_connect(f"{FEED_URL}{query}")

    def close(self) -> None:
        portal = self.http.portal
        assert portal is not None
        portal.call(self.services.queue.stop.remote)
        portal.call(self.services.store.close)
        self.http.__exit__(None, None, None)


@pytest.fixture
def api(tmp_path: Path, migrated_db: Path) -> Iterator[ApiApp]:
    app = ApiApp(tmp_path, migrated_db)
    yield app
    app.close()
    assert not ray.is_initialized(), "a stand-in reached Ray: the api tier must run without it"


@pytest.fixture
def client(api: ApiApp) -> Sweedle:
    """The app, called with the admin key."""
    return api.client
