"""A small client for the running app: REST through httpx, the progress feed through websockets."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from websockets.sync.client import connect

Event = dict[str, Any]


class Feed:
    """One WebSocket connection to /ws/progress, read event by event."""

    def __init__(self, url: str) -> None:
        # Entered at once (and closed by `close`): a Feed is itself the context manager. No
        # keepalive pings: every wait below has its own deadline, and on a 2-core machine busy
        # starting another Serve app the proxy left a ping unanswered past websockets' 20 s,
        # which closed the feed in the middle of a test.
        self.ws = connect(url, open_timeout=30, ping_interval=None).__enter__()
        self.seen: list[Event] = []
        self.snapshot = self.next(timeout=30)
        assert self.snapshot["type"] == "queue_status", self.snapshot

    def next(self, timeout: float) -> Event:
        event = json.loads(self.ws.recv(timeout=timeout))
        self.seen.append(event)
        return event

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 60) -> Event:
        """The first event (from now on) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event in {timeout} s; last: {self.seen[-5:]}")
            event = self.next(timeout=remaining)
            if predicate(event):
                return event

    def wait_finished(self, job_ids: set[str], timeout: float = 120) -> dict[str, Event]:
        """Waits until every job in ``job_ids`` has a final event; returns them by job."""
        final = {"asset_ready", "job_failed", "job_cancelled"}
        done: dict[str, Event] = {
            e["job_id"]: e for e in self.seen if e["type"] in final and e.get("job_id") in job_ids
        }
        while set(done) != job_ids:
            event = self.wait_for(
                lambda e: e["type"] in final and e.get("job_id") in job_ids, timeout
            )
            done[event["job_id"]] = event
        return done

    def wait_for_each(
        self, job_ids: set[str], type_: str, stage: str | None = None, timeout: float = 60
    ) -> None:
        """Waits until each job has had an event of ``type_`` (and ``stage``, if given)."""

        def matches(event: Event) -> bool:
            return event["type"] == type_ and (stage is None or event.get("stage") == stage)

        seen = {e.get("job_id") for e in self.seen if matches(e)}

        def complete(event: Event) -> bool:
            if matches(event):
                seen.add(event.get("job_id"))
            return job_ids <= seen

        if not job_ids <= seen:
            self.wait_for(complete, timeout)

    def events_of(self, job_id: str) -> list[Event]:
        return [e for e in self.seen if e.get("job_id") == job_id]

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> Feed:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class Sweedle:
    """``api_key`` is sent with every request (as X-API-Key, and on the feed as ?api_key=);
    ``transport``: how requests reach the app (default: over the network)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.transport = transport
        headers = {"X-API-Key": api_key} if api_key else {}
        self.http = httpx.Client(
            base_url=base_url, timeout=60, headers=headers, transport=transport
        )

    def follow(self, link: str, **params: Any) -> httpx.Response:
        """GET a link an answer gave (a path from the server's root, the app's own prefix
        included), as given: not joined to ``base_url``'s path."""
        origin = httpx.URL(self.base_url).copy_with(path="/", query=None)
        return self.http.get(str(origin.join(link)), params=params or None)

    def as_key(self, api_key: str | None) -> Sweedle:
        """The same app, called with another key (None: no key)."""
        return Sweedle(self.base_url, api_key, self.transport)

    def submit(self, image: bytes, filename: str = "disc.png", **fields: Any) -> httpx.Response:
        data = {k: str(v) for k, v in fields.items()}
        return self.http.post(
            "/api/generation/image-to-3d", files={"file": (filename, image)}, data=data
        )

    def submit_views(self, views: dict[str, bytes], **fields: Any) -> httpx.Response:
        """Photos of one object from several sides, by view (``front``, ``left``, ...)."""
        files = {view: (f"{view}.png", data) for view, data in views.items()}
        data = {k: str(v) for k, v in fields.items()}
        return self.http.post("/api/generation/multiview-to-3d", files=files, data=data)

    def submit_ok(self, image: bytes, **fields: Any) -> dict[str, Any]:
        response = self.submit(image, **fields)
        assert response.status_code == 202, response.text
        return response.json()

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/generation/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_until_up(
        self,
        timeout: float,
        alive: Callable[[], bool],
        ready: Callable[[dict[str, Any]], bool] = lambda health: True,
    ) -> None:
        """Wait for an app started in another process (`serve run`) to answer /health with
        what ``ready`` accepts (an app that replaces another: its own name).

        Nothing announces it, so this is a readiness probe: it asks twice a second, and gives
        up at once when ``alive()`` says the process died."""
        probe = threading.Event()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive():
                raise RuntimeError("the app's process ended before it answered")
            try:
                health = self.http.get("/health", timeout=5)
                if health.status_code == 200 and ready(health.json()):
                    return
            except httpx.TransportError:
                pass
            probe.wait(0.5)
        raise TimeoutError(f"{self.base_url} did not answer /health in {timeout} s")

    def feed(self, job_id: str | None = None) -> Feed:
        return Feed(self._feed_url(job_id))

    def feed_raw(self):  # type: ignore[no-untyped-def]
        """The bare WebSocket, for tests of what the feed refuses."""
        return connect(self._feed_url(None), open_timeout=30)

    def _feed_url(self, job_id: str | None) -> str:
        url = self.base_url.replace("http://", "ws://") + "/ws/progress"
        query = {"job_id": job_id, "api_key": self.api_key}
        pairs = "&".join(f"{k}={v}" for k, v in query.items() if v)
        return url + (f"?{pairs}" if pairs else "")
