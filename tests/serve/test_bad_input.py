"""A photo the Preprocessor replica refuses: the refusal crosses Ray (a RayTaskError around it)
and still comes back as its named 4xx. The rules for bad input are tested without Ray, in
tests/api/test_bad_input.py."""

from __future__ import annotations

from tests.conftest import box_photo, drawn_image


def test_a_refusal_from_the_preprocessor_replica_comes_back_named(client):
    gif = client.submit(drawn_image(32, "GIF"))
    assert gif.status_code == 415, gif.text
    assert gif.json()["error"] == "unsupported_image_format"
    assert "GIF" in gif.json()["detail"]

    broken = client.submit_views({"front": box_photo(0.5), "back": b"not an image at all"})
    assert broken.status_code in (400, 415, 422), broken.text
    assert "back" in broken.json()["detail"]
