"""The webhook signature (what receivers check) and the retry schedule: pure functions."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from sweedle_core.webhooks.dispatcher import backoff_delay
from sweedle_core.webhooks.signing import sign, verify

SECRET = "whsec_test"


# --- signing -----------------------------------------------------------------------------


def test_sign_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"event":"job.completed"}'
    digest = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body, 1_700_000_000) == f"t=1700000000,v1={digest}"


def test_verify_accepts_a_fresh_signature_and_any_matching_v1():
    body, now = b'{"a":1}', 1_700_000_000
    header = sign(SECRET, body, now)
    assert verify(SECRET, body, header, now=now + 299)
    assert verify(SECRET, body, header, now=now - 299)
    # Several v1 values (e.g. while a secret is rotated): one match is enough.
    rotated = f"t={now},v1={'0' * 64},{header.split(',')[1]},v0=ignored"
    assert verify(SECRET, body, rotated, now=now)


NOW = 1_700_000_000
BODY = b'{"a":1}'
GOOD = sign(SECRET, BODY, NOW)


@pytest.mark.parametrize(
    ("secret", "body", "header", "now"),
    [
        pytest.param(SECRET, b'{"a":2}', GOOD, NOW, id="body-changed"),
        pytest.param("other", BODY, GOOD, NOW, id="wrong-secret"),
        pytest.param(SECRET, BODY, GOOD, NOW + 301, id="stale"),
        pytest.param(SECRET, BODY, GOOD, NOW - 301, id="from-the-future"),
        pytest.param(SECRET, BODY, GOOD.replace(f"t={NOW}", f"t={NOW + 1}"), NOW, id="t-changed"),
        pytest.param(SECRET, BODY, "", NOW, id="empty"),
        pytest.param(SECRET, BODY, "garbage", NOW, id="garbage"),
        pytest.param(SECRET, BODY, f"t={NOW}", NOW, id="no-v1"),
        pytest.param(SECRET, BODY, GOOD.split(",")[1], NOW, id="no-t"),
        pytest.param(SECRET, BODY, f"t=abc,{GOOD.split(',')[1]}", NOW, id="t-not-a-number"),
        pytest.param(SECRET, BODY, f"t=+{NOW},{GOOD.split(',')[1]}", NOW, id="t-signed"),
        pytest.param(SECRET, BODY, f"t={NOW},t={NOW},v1=x", NOW, id="two-t"),
        pytest.param(SECRET, BODY, f"t={NOW},v1=é", NOW, id="non-ascii"),
        pytest.param(SECRET, BODY, "t=" + "9" * 5000 + ",v1=x", NOW, id="huge-t"),
        pytest.param(SECRET, BODY, None, NOW, id="not-a-string"),
    ],
)
def test_verify_rejects_without_raising(secret, body, header, now):
    assert verify(secret, body, header, now=now) is False


# --- backoff -----------------------------------------------------------------


def test_backoff_doubles_from_the_base_and_caps():
    assert [backoff_delay(n, 2.0, 600.0) for n in range(1, 6)] == [2.0, 4.0, 8.0, 16.0, 32.0]
    assert backoff_delay(10, 2.0, 600.0) == 600.0
    assert backoff_delay(10_000, 2.0, 600.0) == 600.0  # no float overflow
