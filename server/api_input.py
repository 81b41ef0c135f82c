"""Checks on request input that every route needs before its own parameters are read."""

from __future__ import annotations

from fastapi import Request

from server.api_errors import ApiError


async def reject_nul_characters(request: Request) -> None:
    """Raise ``ApiError`` 422 when a query or path parameter contains a NUL character.

    PostgreSQL text cannot contain NUL, so such a value would fail in the database and be
    reported as a database error. No id, tag or date of this API contains NUL.
    """
    parameters = [("query", name, value) for name, value in request.query_params.multi_items()] + [
        ("path", name, str(value)) for name, value in request.path_params.items()
    ]
    for location, name, value in parameters:
        if "\x00" in value or "\x00" in name:
            raise ApiError(
                422,
                "invalid_parameter",
                f"{location} parameter {name!r} value {value!r} contains a NUL character; "
                "remove it",
            )
