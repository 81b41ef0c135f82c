"""Property-based requests from the OpenAPI document, run by schemathesis against the ASGI app.

Every operation of ``/api/openapi.json`` is exercised, so operations added later are covered
without a change here. Each response must not be a server error, must have a documented status
code and content type, and must match the documented schema. The app has a tokens file, and the
requests carry a valid token of a member that owns offers with an audience, so the owner's view
with its ``audience`` key is checked too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, GenerationMode
from schemathesis.core.result import Err

from kooperant.protocol import offer_topic
from server.api import create_app
from server.api_json import resource_json
from server.api_models import Resource
from server.status import ServerStatus
from server.storage import ResourceQuery, Storage, Viewer
from server.tokens import TokenStore, add_token
from tests.server.helpers import T0, hours, machine_offer, member_status, storage_offer

# Enough to reach every parameter of each operation while the whole module stays under a minute.
EXAMPLES_PER_OPERATION = 60

# The API ignores query parameters it does not know, as HTTP APIs commonly do, so requests with
# extra parameters are not generated. The check that a schema-valid request gets 2xx is off
# because "from" and "to" have rules a schema cannot state (an ISO 8601 date-time with a UTC
# offset, "to" after "from"), so a schema-valid request may rightly get 422. The check that a
# schema-violating request gets 4xx is off because schemathesis 4.32.5 counts a string query
# parameter sent as an integer ("capability=0") as invalid, though on the wire it is the valid
# string "0". Negative requests still must get no 5xx and a documented error response.
SCHEMATHESIS_CONFIG = """
[generation]
allow-extra-parameters = false

[checks]
positive_data_acceptance.enabled = false
negative_data_rejection.enabled = false
"""


@dataclass(frozen=True)
class SeededApi:
    app: FastAPI
    token: str


def seed(storage: Storage) -> None:
    """Store offers with and without audiences, statuses and rejected messages of two clusters."""
    storage.store_offer(replace(machine_offer(), audience=("beta",)), T0 - hours(2))
    storage.store_offer(storage_offer(), T0 - hours(2))
    storage.store_offer(
        replace(machine_offer(member="beta", resource="laser-02"), audience=("gamma",)),
        T0 - hours(2),
    )
    storage.store_offer(machine_offer(cluster="other", member="delta"), T0 - hours(2))
    storage.store_status(member_status(), T0 - hours(1))
    storage.store_status(member_status(member="beta", online=False), T0 - hours(1))
    storage.store_rejected(
        offer_topic("pomorskie-metal", "acme", "broken"), b"\xff\x00{", "invalid JSON", T0
    )
    storage.store_rejected(offer_topic("other", "delta", "x"), b"{}", "unsupported schema", T0)


@pytest.fixture
def seeded_api(tmp_path: Path) -> Iterator[SeededApi]:
    storage = Storage(f"sqlite:///{tmp_path / 'kooperant.db'}")
    storage.migrate()
    seed(storage)
    tokens_file = tmp_path / "tokens.yaml"
    token = add_token(tokens_file, "pomorskie-metal", "acme")
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1883", broker_connected=True)
    app = create_app(storage, status, tokens=TokenStore.load(tokens_file), clock=lambda: T0)
    yield SeededApi(app, token)
    storage.close()


def api_operations(app: FastAPI) -> list[APIOperation]:
    """Return every operation of the app's OpenAPI document; an invalid one fails the test."""
    config = schemathesis.Config.from_str(SCHEMATHESIS_CONFIG)
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app, config=config)
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            pytest.fail(f"invalid operation in /api/openapi.json: {result.err()}")
        operations.append(result.ok())
    return operations


# NOTE: schemathesis.pytest.from_fixture would give one test per operation, but its lazy loader
# fails under pytest 9.2 (it sets Function._nodeid, which pytest 9 no longer has). Hence the loop
# over the operations with a Hypothesis test each.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_schema(seeded_api: SeededApi, mode: GenerationMode) -> None:
    headers = {"Authorization": f"Bearer {seeded_api.token}"}

    for operation in api_operations(seeded_api.app):
        if mode is GenerationMode.NEGATIVE and not list(operation.iter_parameters()):
            continue  # Without parameters no request can violate the schema.

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def check_operation(case: schemathesis.Case) -> None:
            # With no checks given, schemathesis runs all its built-in checks, not_a_server_error
            # and the conformance of status code, content type, headers and body among them.
            case.call_and_validate(headers=headers)

        check_operation()


def test_schema_lists_api_operations(seeded_api: SeededApi) -> None:
    paths = set(seeded_api.app.openapi()["paths"])

    assert {"/api/v1/resources", "/api/v1/members", "/api/v1/rejected-messages"} <= paths
    assert "/healthz" in paths
    assert "/" not in paths
    assert "/login" not in paths


@pytest.mark.parametrize(
    ("viewer", "has_audience"),
    [
        (Viewer(cluster="pomorskie-metal", member="acme"), True),
        (Viewer(cluster="pomorskie-metal", member="beta"), False),
    ],
)
def test_resource_model_matches_json(viewer: Viewer, has_audience: bool, tmp_path: Path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'kooperant.db'}")
    storage.migrate()
    seed(storage)
    page = storage.list_resources(ResourceQuery(), viewer=viewer, now=T0)
    storage.close()

    owned = [item for item in page.items if item.resource == "cnc-5ax-01"]
    data = resource_json(owned[0], viewer)
    assert ("audience" in data) is has_audience
    Resource.model_validate(data)
