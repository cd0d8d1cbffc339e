"""A gate the test holds generations at, reached over HTTP, so that it works across the nodes of
a real cluster the test process is not connected to.

The test runs `GateServer` on loopback; `HttpGatedGenerator` (the app's generator backend, told
the gate's URL by ``SWEEDLE_TEST_GATE_URL``) asks the gate before each generation and, while the
gate is closed, keeps reporting progress (so its lease holds) and asks again. The mesh itself
comes from the real silhouette generator.
"""

from __future__ import annotations

import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from sweedle_core.config import Settings
from sweedle_core.generation.silhouette import SilhouetteGenerator

GATE_URL_VARIABLE = "SWEEDLE_TEST_GATE_URL"
ASK_WAIT_S = 1.0  # how long one ask waits at a closed gate before the generator reports in


class GateServer:
    def __init__(self) -> None:
        self._open = threading.Event()
        self._arrived = threading.Condition()
        self.arrivals: list[str] = []  # one id per generation that reached the gate
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                arrival = self.path.rsplit("/", 1)[-1]
                with gate._arrived:
                    if arrival not in gate.arrivals:
                        gate.arrivals.append(arrival)
                        gate._arrived.notify_all()
                passed = gate._open.wait(ASK_WAIT_S)
                body = b"open" if passed else b"held"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._open.clear()

    def wait_for_arrivals(self, count: int, timeout: float) -> list[str]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.arrivals) >= count, timeout):
                raise TimeoutError(f"{len(self.arrivals)} of {count} generations reached the gate")
            return list(self.arrivals)

    def stop(self) -> None:
        self.open()
        self.server.shutdown()
        self.server.server_close()


class HttpGatedGenerator:
    name = "http-gated-silhouette"

    def __init__(self, settings: Settings) -> None:
        self.inner = SilhouetteGenerator()
        self.url = os.environ[GATE_URL_VARIABLE]

    def generate_shape(self, image, params, on_progress, views=None):  # type: ignore[no-untyped-def]
        arrival = uuid.uuid4().hex
        while httpx.get(f"{self.url}/pass/{arrival}", timeout=30).text != "open":
            on_progress(0.0, "held at the test gate")
        return self.inner.generate_shape(image, params, on_progress, views)
