"""The OpenAPI schema is the contract: schemathesis fuzzes every operation of the app, with
valid and invalid data, and finds no 5xx and no answer the schema does not describe."""

from __future__ import annotations

import requests
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
from tests.app_settings import KEYS
from tests.serve.client import Sweedle

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
    """The app's OpenAPI document, built from the app itself (it serves the same: see the first
    test), so every operation becomes a test at collection time."""
    services = Services.without_ray(Settings(database_url="sqlite+aiosqlite://"))
    return create_app(services).openapi()


SPEC = app_schema()
schema = schemathesis.openapi.from_dict(SPEC)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES
)


def call_and_validate(case, client: Sweedle, api_key: str) -> None:  # type: ignore[no-untyped-def]
    """``case`` sent as schemathesis would send it over the network (the request `requests`
    prepares from it), through ``client``, and its answer checked."""
    kwargs = case.as_transport_kwargs(base_url=client.base_url, headers={"X-API-Key": api_key})
    sent = requests.Request(**kwargs).prepare()
    headers = [(name.encode("latin-1"), _latin1(value)) for name, value in sent.headers.items()]
    response = client.as_key(None).http.request(
        str(sent.method), str(sent.url), headers=headers, content=sent.body
    )
    case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)


def _latin1(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


def test_the_app_serves_this_schema(client):
    assert client.http.get("/openapi.json").json() == SPEC


def test_openapi_documents_the_api(client):
    schema = client.http.get("/openapi.json").json()
    for path in ("/api/generation/image-to-3d", "/api/generation/jobs/{job_id}", "/api/assets"):
        assert path in schema["paths"]
    assert client.http.get("/docs").status_code == 200
    assert client.http.get("/redoc").status_code == 200


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,  # the same cases every run: a failure here is reproducible
)
def test_every_operation_keeps_to_the_schema(case, client):  # type: ignore[no-untyped-def]
    call_and_validate(case, client, KEYS["admin"][0])


@schema.parametrize()
@settings(
    max_examples=USER_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_operation_keeps_to_the_schema_for_a_user_key(case, client):  # type: ignore[no-untyped-def]
    """The same with a key that is not admin: its refusals (403 on admin routes, 404 for ids it
    may not see, 429) are answers the schema describes too, and never a 5xx."""
    call_and_validate(case, client, KEYS["fuzzer"][0])
