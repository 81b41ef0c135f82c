"""The OpenAPI document of the API: tags, error responses and shared parameter descriptions.

The document, served at ``/api/openapi.json``, lists the operations under ``/api/`` and
``/healthz``. Dashboard pages and their form posts are for browsers, so ``document_api`` leaves
them out, including pages added after it was called, because it filters when the document is
first generated.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from server.api_models import ErrorBody

API_DESCRIPTION = """\
Free capacity that members of an industry cluster share: current offers, members and the
messages ingest rejected. Offers arrive over MQTT; the only writes are members' capacity
requests (`/api/v1/requests`).

With a tokens file, every `/api/v1` request needs `Authorization: Bearer TOKEN`, and the caller
sees what the owners of the offers share with its member. Lists are paged with `limit` and
`offset` and return `items`, `total`, `limit` and `offset`. Every error has the body
`{"error": {"code": "...", "message": "..."}}`.
"""

TAGS = [
    {"name": "resources", "description": "Current offers of machines, storage, IT and supplies"},
    {"name": "members", "description": "Members of the cluster and their agents' status"},
    {"name": "requests", "description": "Members' requests for capacity of other members' offers"},
    {"name": "rejected messages", "description": "Messages ingest did not accept"},
    {"name": "health", "description": "Whether the server can do its work"},
]

_PUBLIC_PREFIXES = ("/api/", "/healthz", "/metrics")


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_INTERNAL_ERROR: dict[int | str, dict[str, Any]] = {
    500: _error("An unexpected error; code internal_error, details in the log")
}

# Error responses of every /api/v1 operation.
API_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("Missing or unknown API token (only when the server has a tokens file)"),
    422: _error("Invalid query parameter; details name each failing parameter"),
    503: _error("The database did not answer"),
    **_INTERNAL_ERROR,
}
HEALTH_ERRORS: dict[int | str, dict[str, Any]] = dict(_INTERNAL_ERROR)

# Descriptions of query parameters that several operations share, used where a route gives none.
PARAMETER_DESCRIPTIONS = {
    "limit": "Page size, from 1 to 1000",
    "offset": "How many items to skip, from 0 to 9223372036854775807 (2^63 - 1)",
    "kind": "Resource kind; repeat it to match any of several kinds",
    "capability": "Capability tag; repeat it to require all of several capabilities",
    "member": "Member id",
    "from": (
        "Start of the time window, ISO 8601 with a UTC offset, e.g. 2026-12-07T08:00:00+01:00; "
        "keeps resources with a free interval in the window and cuts their intervals to it"
    ),
    "to": "End of the time window, ISO 8601 with a UTC offset; must be after from",
}


def document_api(app: FastAPI) -> None:
    """Make ``app.openapi()`` leave out pages and describe the shared query parameters."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for route in app.routes:
                if isinstance(route, APIRoute) and not route.path.startswith(_PUBLIC_PREFIXES):
                    route.include_in_schema = False
            _describe_parameters(generate())
        return generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _describe_parameters(schema: dict[str, Any]) -> None:
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "query" or "description" in parameter:
                    continue
                description = PARAMETER_DESCRIPTIONS.get(parameter["name"])
                if description is not None:
                    parameter["description"] = description
