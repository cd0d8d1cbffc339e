"""Shared test set-up: tiny images drawn in the test."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw


def drawn_image(size: int = 256, fmt: str = "PNG", color=(200, 40, 40)) -> bytes:
    """A coloured disc on a white background, encoded as ``fmt``."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    margin = size // 5
    draw.ellipse([margin, margin, size - margin, size - margin], fill=color)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture
def disc_png() -> bytes:
    return drawn_image()
