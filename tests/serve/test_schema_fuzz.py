"""The OpenAPI schema is the contract: schemathesis fuzzes every operation of the live app, with
valid and invalid data, and finds no 5xx and no answer the schema does not describe."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from deployments.http.app import create_app
from deployments.http.services import Services
from sweedle_core.config import Settings
from tests.serve.conftest import KEYS

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
EXAMPLES = 15
USER_EXAMPLES = 3  # the user key's pass: what differs is who asks, not the data


def app_schema() -> dict:
    """The app's OpenAPI document, built from the app itself (the live app serves the same: see
    the first test), so every operation becomes a test at collection time."""
    services = Services.without_ray(Settings(database_url="sqlite+aiosqlite://"))
    return create_app(services).openapi()


SPEC = app_schema()
schema = schemathesis.openapi.from_dict(SPEC)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
)


def test_the_live_app_serves_this_schema(client):
    assert client.http.get("/openapi.json").json() == SPEC


@pytest.fixture
def base_url(deployment) -> str:  # type: ignore[no-untyped-def]
    return deployment.client.base_url


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: a failure here is reproducible
)
def test_every_operation_keeps_to_the_schema(case, base_url):  # type: ignore[no-untyped-def]
    case.call_and_validate(
        base_url=base_url, headers={"X-API-Key": KEYS["admin"][0]}, checks=CHECKS, timeout=60
    )


@schema.parametrize()
@settings(
    max_examples=USER_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_keeps_to_the_schema_for_a_user_key(case, base_url):  # type: ignore[no-untyped-def]
    """The same with a key that is not admin: its refusals (403 on admin routes, 404 for ids it
    may not see, 429) are answers the schema describes too, and never a 5xx."""
    case.call_and_validate(
        base_url=base_url, headers={"X-API-Key": KEYS["fuzzer"][0]}, checks=CHECKS, timeout=60
    )
