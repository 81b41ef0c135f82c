"""Checks on request input that every route needs before its own parameters are read."""

from __future__ import annotations

from collections import Counter

from fastapi import Request

from server.api_errors import ApiError

# Each value of a repeated filter adds a condition to one SQL query, and SQLite rejects a query
# whose expression tree is deeper than SQLITE_MAX_EXPR_DEPTH (1000 by default), so the limit stays
# far below that.
MAX_PARAMETER_VALUES = 100


class InvalidParameterError(ApiError):
    """A query or path parameter that every route rejects, raised before the route reads it.

    ``server.error_pages`` renders it as an HTML 400 page outside the API and keeps the 422 JSON
    body under ``/api``. ``count`` is set when the parameter is repeated too often, else ``None``.
    """

    def __init__(
        self, location: str, name: str, value: str, message: str, *, count: int | None = None
    ) -> None:
        super().__init__(422, "invalid_parameter", message)
        self.location = location
        self.name = name
        self.value = value
        self.count = count


async def check_parameters(request: Request) -> None:
    """Raise ``InvalidParameterError`` for a NUL character or a parameter repeated too often.

    PostgreSQL text cannot contain NUL, so such a value would fail in the database and be
    reported as a database error. No id, tag or date of this API contains NUL.
    """
    parameters = [("query", name, value) for name, value in request.query_params.multi_items()] + [
        ("path", name, str(value)) for name, value in request.path_params.items()
    ]
    for location, name, value in parameters:
        if "\x00" in value or "\x00" in name:
            raise InvalidParameterError(
                location,
                name,
                value,
                f"{location} parameter {name!r} value {value!r} contains a NUL character; "
                "remove it",
            )

    counts = Counter(name for name, _value in request.query_params.multi_items())
    for name, count in counts.items():
        if count > MAX_PARAMETER_VALUES:
            raise InvalidParameterError(
                "query",
                name,
                request.query_params[name],
                f"query parameter {name!r} is given {count} times; "
                f"give it at most {MAX_PARAMETER_VALUES} times",
                count=count,
            )
