"""API routes of capacity requests: create, list, read and withdraw.

The server fills in the request id, the requester (the calling member), ``created_at`` and
``expires_at``. A request for an offer the caller may not see gets the same 404 as one for a
missing offer. The error code of a refused request is the id of its message in
``server.messages``, e.g. ``request_slot_not_free``; the message is English like every API error.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from kooperant.intervals import Interval
from kooperant.protocol.errors import OfferValidationError
from kooperant.protocol.request import (
    MAX_REQUEST_MESSAGE_CHARACTERS,
    CapacityRequest,
    Contact,
    RequestedAmount,
)
from kooperant.protocol.topics import REQUEST_ID_PATTERN
from server.api_caller import Caller
from server.api_errors import ApiError, read
from server.api_json import time_json
from server.api_models import CapacityRequestDetail, CapacityRequestPage, ErrorBody
from server.api_openapi import API_ERRORS
from server.body_limit import BodyLimitMiddleware
from server.errors import (
    InvalidRequestError,
    RequestConflictError,
    RequestError,
    RequestForbiddenError,
    RequestNotFoundError,
)
from server.forms import same_origin
from server.request_build import build_request, utc_time
from server.storage import RequestRecord, Storage, Viewer

MAX_LIMIT = 1000
# SQLite and PostgreSQL take OFFSET as a signed 64-bit integer and fail on larger values.
MAX_OFFSET = 2**63 - 1
DEFAULT_EXPIRY_HOURS = 48
MAX_EXPIRY_HOURS = 720
# A 2000-character message of characters outside the BMP, each escaped as a JSON surrogate pair
# of 12 bytes, takes 24 KB. The limit of 64 KiB leaves room for the other fields.
MAX_BODY_BYTES = 64 * 1024
_WRITE_PATHS = re.compile(r"/api/v1/requests(/[^/]+/withdraw)?")
_PROTOCOL_LOCATION = re.compile(r"(invalid request at )([\w/]+)")

_STATUS_OF_ERROR: dict[type[RequestError], int] = {
    RequestNotFoundError: 404,
    RequestForbiddenError: 403,
    RequestConflictError: 409,
    InvalidRequestError: 422,
}


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_REQUEST_ERRORS: dict[int | str, dict[str, Any]] = {
    **API_ERRORS,
    403: _error("The caller is not a member, or not the requester of the request"),
    404: _error("No such offer or request, or not one the caller may see"),
}

RequestId = Annotated[
    str, Path(description="Request id, a lowercase UUID 4", pattern=REQUEST_ID_PATTERN)
]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SlotInput(_Input):
    start: str = Field(max_length=64, description="ISO 8601 with a UTC offset")
    end: str = Field(max_length=64, description="ISO 8601 with a UTC offset, after start")


class AmountInput(_Input):
    quantity: str = Field(max_length=64, description="Quantity of one of the offer's amounts")
    value: float = Field(gt=0, description="At most the free value (or band minimum)")
    unit: str = Field(max_length=64, description="Unit of that amount of the offer")
    label: str | None = Field(default=None, max_length=200, description="Its label, if any")


class ContactInput(_Input):
    name: str = Field(min_length=1, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)


class NewRequest(_Input):
    """A request for capacity of another member's offer: a slot of a machine or an amount."""

    cluster: str = Field(max_length=64, description="Cluster of the offer, the caller's own")
    member: str = Field(max_length=64, description="Owner of the offer")
    resource: str = Field(max_length=64, description="Resource id of the offer")
    slot: SlotInput | None = Field(default=None, description="For a machine offer")
    amount: AmountInput | None = Field(default=None, description="For any other kind")
    message: str = Field(default="", max_length=MAX_REQUEST_MESSAGE_CHARACTERS)
    contact: ContactInput
    expires_in_hours: int = Field(
        default=DEFAULT_EXPIRY_HOURS,
        ge=1,
        le=MAX_EXPIRY_HOURS,
        description="Hours until the request expires unless the owner decided before",
    )


async def _check_origin(request: Request) -> None:
    """Reject a write that a browser sent from another site with the dashboard's session cookie."""
    if not same_origin(request):
        raise ApiError(
            403,
            "cross_origin",
            f"requests cannot be changed from origin {request.headers.get('origin')!r}; "
            "use the dashboard of this server or an API token",
        )


def add_request_api_routes(
    app: FastAPI,
    storage: Storage,
    clock: Callable[[], datetime],
    requests_changed: asyncio.Event,
) -> None:
    """Add the ``/api/v1/requests`` routes reading and writing ``storage``.

    ``requests_changed`` is set after each request created or withdrawn. The body of a write
    route is limited to ``MAX_BODY_BYTES``.
    """
    app.add_middleware(BodyLimitMiddleware, paths=_WRITE_PATHS, max_bytes=MAX_BODY_BYTES)

    @app.post(
        "/api/v1/requests",
        tags=["requests"],
        summary="Request capacity of another member's offer",
        status_code=201,
        response_model=None,
        dependencies=[Depends(_check_origin)],
        responses={
            201: {"model": CapacityRequestDetail, "description": "The stored request, sent"},
            400: _error("The body is not UTF-8 text"),
            413: _error("The body is over 64 KiB"),
            409: _error("The owner does not take requests for this offer"),
            **_REQUEST_ERRORS,
        },
    )
    async def create_request(viewer: Caller, body: NewRequest) -> dict[str, Any]:
        """The slot must lie inside one free interval of a machine offer.

        The amount must name one of the offer's amounts and be at most its free value, or the
        minimum of its band.
        """
        now = clock()
        request = _build_request(body, viewer, now)
        record = await _call(storage.create_request, request, viewer=viewer, now=now)
        requests_changed.set()
        return request_json(record)

    @app.get(
        "/api/v1/requests",
        tags=["requests"],
        summary="List the requests the caller sent or received, newest first",
        response_model=None,
        responses={
            200: {"model": CapacityRequestPage, "description": "One page of requests"},
            **API_ERRORS,
        },
    )
    async def list_requests(
        viewer: Caller,
        role: Annotated[
            Literal["sent", "received"],
            Query(description="sent: the caller's own requests; received: those for its offers"),
        ] = "sent",
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict[str, Any]:
        """List the caller's sent or received requests; empty for a caller without a member."""
        page = await read(
            storage.list_requests, viewer=viewer, role=role, limit=limit, offset=offset
        )
        return {
            "items": [request_json(item, with_log=False) for item in page.items],
            "total": page.total,
            "limit": limit,
            "offset": offset,
        }

    @app.get(
        "/api/v1/requests/{request_id}",
        tags=["requests"],
        summary="Read one request with the history of its states",
        response_model=None,
        responses={
            200: {"model": CapacityRequestDetail, "description": "The request"},
            **_REQUEST_ERRORS,
        },
    )
    async def get_request(viewer: Caller, request_id: RequestId) -> dict[str, Any]:
        """Readable by the requester, the owner of the offer and a coordinator of the cluster."""
        record = await read(storage.get_request, request_id, viewer=viewer)
        if record is None:
            raise _api_error(RequestNotFoundError("request_not_found", request_id=request_id))
        return request_json(record)

    @app.post(
        "/api/v1/requests/{request_id}/withdraw",
        tags=["requests"],
        summary="Withdraw a request the owner has not decided yet",
        response_model=None,
        dependencies=[Depends(_check_origin)],
        responses={
            200: {"model": CapacityRequestDetail, "description": "The withdrawn request"},
            409: _error("The request is final already: accepted, declined, expired, withdrawn"),
            413: _error("The body is over 64 KiB"),
            **_REQUEST_ERRORS,
        },
    )
    async def withdraw_request(viewer: Caller, request_id: RequestId) -> dict[str, Any]:
        """Only the requester may withdraw, and only while the request is sent or delivered."""
        record = await _call(storage.withdraw_request, request_id, viewer=viewer, now=clock())
        requests_changed.set()
        return request_json(record)


def _build_request(body: NewRequest, viewer: Viewer, now: datetime) -> CapacityRequest:
    """Return the protocol request of ``body`` by ``viewer``, or raise ``ApiError`` 4xx."""
    _reject_nul(body.model_dump())
    if viewer.member is None:
        raise _api_error(RequestForbiddenError("request_needs_member"))
    if viewer.owns(body.cluster, body.member):
        raise _api_error(InvalidRequestError("request_own_offer", resource=body.resource))

    try:
        slot = None if body.slot is None else _slot(body.slot)
        amount = None
        if body.amount is not None:
            requested = body.amount
            amount = RequestedAmount(
                requested.quantity, requested.value, requested.unit, requested.label
            )
        contact = body.contact
        request = build_request(
            cluster=body.cluster,
            member=body.member,
            resource=body.resource,
            requester=viewer.member,
            now=now,
            expires_in=timedelta(hours=body.expires_in_hours),
            contact=Contact(contact.name, contact.email, contact.phone),
            # The request keeps line feeds only, so Windows line ends become line feeds.
            message=body.message.replace("\r\n", "\n"),
            slot=slot,
            amount=amount,
        )
    except (ValueError, OfferValidationError) as error:
        raise ApiError(422, "invalid_request", _dotted_location(str(error))) from error
    return request


def _slot(slot: SlotInput) -> Interval:
    """Return the slot in UTC, or raise ``OfferValidationError`` naming the invalid end."""
    start = utc_time(slot.start, "slot.start")
    end = utc_time(slot.end, "slot.end")
    if end <= start:
        raise OfferValidationError(
            f"invalid request at slot.end: {slot.end!r} is not after slot.start {slot.start!r}"
        )
    return Interval(start, end)


def _dotted_location(message: str) -> str:
    """Return a protocol error message with its field path dotted like the API's other errors.

    The protocol names a nested field as a JSON path, ``invalid request at contact/email: ...``.
    """
    match = _PROTOCOL_LOCATION.match(message)
    if match is None:
        return message
    return f"{match[1]}{match[2].replace('/', '.')}{message[match.end() :]}"


def _reject_nul(value: object, where: str = "") -> None:
    """Raise 422 for a NUL character in any string, which PostgreSQL text cannot hold."""
    if isinstance(value, str) and "\x00" in value:
        raise ApiError(
            422, "invalid_parameter", f"body parameter '{where}' contains a NUL character"
        )
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(item, f"{where}.{key}" if where else key)


async def _call(function: Callable[..., RequestRecord], *args: Any, **kwargs: Any) -> RequestRecord:
    try:
        return await read(function, *args, **kwargs)
    except RequestError as error:
        raise _api_error(error) from error


def _api_error(error: RequestError) -> ApiError:
    status = _STATUS_OF_ERROR.get(type(error), 422)
    return ApiError(status, error.message_id, str(error))


def request_json(record: RequestRecord, *, with_log: bool = True) -> dict[str, Any]:
    """Return the API representation of a request; ``history`` only with ``with_log``."""
    request = record.request
    slot = request.slot
    amount = request.amount
    data: dict[str, Any] = {
        "request_id": request.request_id,
        "cluster": request.cluster,
        "member": request.member,
        "resource": request.resource,
        "requester": request.requester,
        "created_at": time_json(request.created_at),
        "expires_at": time_json(request.expires_at),
        "message": request.message,
        "contact": {
            "name": request.contact.name,
            "email": request.contact.email,
            "phone": request.contact.phone,
        },
        "slot": (
            {"start": time_json(slot.start), "end": time_json(slot.end)}
            if slot is not None
            else None
        ),
        "amount": (
            {
                "quantity": amount.quantity,
                "value": amount.value,
                "unit": amount.unit,
                "label": amount.label,
            }
            if amount is not None
            else None
        ),
        "state": str(record.state),
        "state_at": time_json(record.state_at),
        "reason": record.reason,
    }
    if with_log:
        data["history"] = [
            {"at": time_json(entry.at), "state": str(entry.state), "note": entry.note}
            for entry in record.log
        ]
    return data
