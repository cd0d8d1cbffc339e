"""Shared test set-up: tiny images drawn in the test, a migrated database, the S3 server."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from sweedle_core.db.engine import migrate
from tests.stand_ins.s3_server import S3Server, S3ServerCannotRun


def drawn_image(size: int = 256, fmt: str = "PNG", color=(200, 40, 40)) -> bytes:
    """A coloured disc on a white background, encoded as ``fmt``."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    margin = size // 5
    draw.ellipse([margin, margin, size - margin, size - margin], fill=color)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def boxed_image(n: int) -> bytes:
    """A photo of its own per ``n`` (0-40): a box whose size and place differ with it."""
    image = Image.new("RGB", (96, 96), "white")
    ImageDraw.Draw(image).rectangle([10 + n, 14, 40 + 2 * n, 60 + n], fill=(40, 90, 200))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def box_photo(width: float, height: float = 0.8, color=(60, 120, 200)) -> bytes:
    """A box seen straight on: a shaded rectangle ``width`` x ``height`` of a 256 px frame on a
    white studio background."""
    size = 256
    image = Image.new("RGB", (size, size), "white")
    w, h = width * size, height * size
    box = [(size - w) / 2, (size - h) / 2, (size + w) / 2, (size + h) / 2]
    ImageDraw.Draw(image).rectangle(box, fill=color)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def disc_png() -> bytes:
    return drawn_image()


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory):
    """One migrated SQLite database per session; each test gets a copy (migrating takes ~0.1 s)."""
    path = tmp_path_factory.mktemp("schema") / "template.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """One real S3 server (SeaweedFS) for the session, or a skip when its binary cannot run here.

    Its ``env()`` points obstore at it; a test sets those variables itself (monkeypatch) and
    works under a prefix of its own, since every test shares the bucket.
    """
    try:
        server = S3Server.start(tmp_path_factory.mktemp("s3-server"))
    except S3ServerCannotRun as exc:
        pytest.skip(str(exc))
    with server:
        yield server
