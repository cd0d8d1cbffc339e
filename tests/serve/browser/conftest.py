"""The browser tier: Debian's headless Chromium, driven by Playwright, against the live app of
the serve tier. WebGL runs on the CPU through SwiftShader.

Every page fails its test on a console error, an uncaught page error, a failed request, or a
request to any origin but the app's own (those are stopped before they leave)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from deployments.http import studio

CHROMIUM = "/usr/bin/chromium-headless-shell"
SWIFTSHADER = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
ARTEFACTS = Path(__file__).resolve().parents[3] / "test-artefacts"


@contextmanager
def open_chromium() -> Iterator[Browser]:
    """Debian's Chromium, WebGL through SwiftShader (Playwright cannot download browsers here);
    a skip saying why where it or Studio's build is missing.

    Keep it open no longer than the tests that use it: while Playwright's sync API is open it
    keeps an event loop running in the main thread, and every asyncio test after it would fail
    with "cannot be called from a running event loop"."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: `make test` installs it with apt-get as root")
    if not (studio.STUDIO_FILES / "index.html").is_file():
        pytest.skip(f"Studio is not built: {studio.BUILD_COMMAND}")
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=SWIFTSHADER)
        yield chromium
        chromium.close()


@contextmanager
def guarded_page(browser: Browser, app_url: str, **screen: Any) -> Iterator[tuple[Page, Guard]]:
    """A fresh browser context (no stored key) for the app at ``app_url``; the block fails on
    whatever its `Guard` saw go wrong."""
    context = browser.new_context(**(screen or LAPTOP), accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    guard = Guard(page, app_url)
    try:
        yield page, guard
    finally:
        context.close()
    assert not guard.problems, "\n".join(guard.problems)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One browser for this package (see `open_chromium`)."""
    with open_chromium() as chromium:
        yield chromium


class Guard:
    """What went wrong on a page: console errors, page errors, failed and foreign requests."""

    def __init__(self, page: Page, app_url: str) -> None:
        self.problems: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        parts = urlsplit(app_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.route("**/*", self._route)

    def allow(self, pattern: str) -> None:
        """A console error a test expects (a refusal it provokes), by a regex of its text."""
        self.allowed.append(re.compile(pattern))

    def _console(self, message) -> None:  # type: ignore[no-untyped-def]
        if message.type == "error" and not any(a.search(message.text) for a in self.allowed):
            self.problems.append(f"console error: {message.text}")

    def _failed(self, request) -> None:  # type: ignore[no-untyped-def]
        if request.url.startswith(("blob:", "data:")):
            return
        if request.failure == "net::ERR_ABORTED":
            return  # cut off by the page itself: a reload, a navigation, the page closing
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _route(self, route) -> None:  # type: ignore[no-untyped-def]
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("blob", "data") or f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        else:
            self.problems.append(f"request to another origin: {url}")
            route.abort()


LAPTOP = {"viewport": {"width": 1360, "height": 900}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture(params=[pytest.param(LAPTOP, id="laptop")])
def screen(request: pytest.FixtureRequest) -> dict:
    """The device a page is opened on (a test may ask for others with indirect parameters)."""
    return dict(request.param)


@pytest.fixture
def studio_page(browser: Browser, deployment, screen: dict) -> Iterator[tuple[Page, Guard]]:  # type: ignore[no-untyped-def]
    """A fresh page on the session app's Studio, guarded."""
    with guarded_page(browser, deployment.client.base_url, **screen) as opened:
        yield opened
