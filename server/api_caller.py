"""The caller of an API request as a FastAPI dependency, and the API's query-time parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.api_errors import ApiError
from server.auth import Authenticator
from server.storage import Viewer

# Declares the bearer scheme in the OpenAPI document; ``Authenticator`` does the check.
_BEARER = HTTPBearer(auto_error=False, description="A member's API token")
# "+01:00" typed into a URL unencoded arrives as " 01:00" because "+" means space in a query.
_OFFSET_WITH_SPACE = re.compile(r"^(.*\d) (\d{2}:?\d{2})$")


async def _caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
) -> Viewer:
    # Async, so it runs in the event loop: a plain function would run in a worker thread, and
    # two threads could reload the tokens file at once.
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.api_viewer(request)


# The viewer of an API request, or a 401 response. Every /api/v1 route takes this parameter.
Caller = Annotated[Viewer, Depends(_caller)]


def parse_time_parameter(name: str, value: str | None) -> datetime | None:
    """Return the ISO 8601 date-time ``value`` of query parameter ``name`` in UTC."""
    if value is None:
        return None
    text = value.strip()
    match = _OFFSET_WITH_SPACE.match(text)
    if match:
        text = f"{match.group(1)}+{match.group(2)}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(
            422,
            "invalid_parameter",
            f"query parameter '{name}' value {value!r} is not an ISO 8601 date-time; "
            "use e.g. 2026-12-04T08:00:00+01:00",
        ) from None
    if parsed.tzinfo is None:
        raise ApiError(
            422,
            "invalid_parameter",
            f"query parameter '{name}' value {value!r} has no UTC offset; "
            "add one, e.g. 2026-12-04T08:00:00+01:00 or 2026-12-04T07:00:00Z",
        )
    try:
        # Storage converts to UTC, which fails for e.g. 0001-01-01T00:00:00+01:00 (year 0 in UTC).
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ApiError(
            422,
            "invalid_parameter",
            f"query parameter '{name}' value {value!r} is out of range; "
            "use a date-time from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z",
        ) from None
