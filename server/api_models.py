"""Pydantic models of the API's responses, for the OpenAPI document.

The routes build their JSON in ``server.api_json`` and return it as it is, so these models are the
documentation of that JSON, not a step that converts it. ``tests/server/test_api_schema.py``
checks every response against them. ``extra="forbid"`` makes a field that the JSON gains without a
model change fail that check instead of going undocumented.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kooperant.protocol import ResourceKind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(_Strict):
    """One failing parameter of a request validation error."""

    location: str = Field(description="Where the parameter is: query, path, header or body")
    parameter: str = Field(description="The parameter's name; empty for the request as a whole")
    message: str


class Error(_Strict):
    """An error: a stable code for programs and an English message for people."""

    code: str = Field(description="Stable error code, e.g. invalid_parameter or unauthorized")
    message: str = Field(description="What failed, on which value, and what to do next")
    details: list[ErrorDetail] | None = Field(
        default=None, description="Only for invalid_parameter: one entry per failing parameter"
    )


class ErrorBody(_Strict):
    """The body of every error response."""

    error: Error


class TimeInterval(_Strict):
    """A half-open interval [start, end) in RFC 3339, UTC."""

    start: str | None
    end: str | None


class HoursBand(_Strict):
    """A range of hours: min inclusive, max exclusive; max null for an open range."""

    min: float | None
    max: float | None


class Price(_Strict):
    value: float
    currency: str
    unit: str


class Resource(_Strict):
    """The current offer of one resource, as the caller may see it."""

    cluster: str
    member: str
    resource: str
    kind: ResourceKind
    name: str | None
    capabilities: list[str]
    state: str | None = Field(description="The machine's state, or null when not shared")
    state_since: str | None
    free_hours: float | None = Field(
        description="Free hours over the horizon, or within from/to when they are given"
    )
    free_hours_band: HoursBand | None
    free_intervals: list[TimeInterval]
    horizon: TimeInterval | None
    amounts: list[dict[str, Any]] = Field(
        description="{quantity, value, unit, label?} or {quantity, band, unit, label?} per amount"
    )
    price: Price | None
    suppliers: list[str]
    customers: list[str]
    expires_at: str | None
    accepts_requests: bool = Field(
        description="Whether the owner takes capacity requests for the offer; false for offers "
        "of agents that predate requests"
    )
    generated_at: str | None
    updated_at: str | None = Field(description="When the aggregator received the offer")
    audience: list[str] | None = Field(
        default=None,
        description="Only in the owner's own view: the members the offer is shared with, "
        "or null for the whole cluster. Other callers never get this key",
    )


class Member(_Strict):
    """A member with its connection status and how many of its offers the caller may see."""

    cluster: str
    member: str
    resources: int
    first_seen: str | None
    last_seen: str | None
    status: Literal["online", "offline"] | None
    status_since: str | None
    registered: bool


class RejectedMessage(_Strict):
    """A message ingest did not accept, with the reason."""

    id: int
    received_at: str | None
    topic: str
    reason: str
    payload_excerpt: str = Field(description="The first 1000 characters of the stored payload")
    payload_truncated: bool


class _Page(_Strict):
    total: int = Field(description="How many items match, on every page together")
    limit: int
    offset: int


class ResourcePage(_Page):
    items: list[Resource]


class MemberPage(_Page):
    items: list[Member]


class RejectedMessagePage(_Page):
    items: list[RejectedMessage]


class RequestContact(_Strict):
    name: str
    email: str | None
    phone: str | None


class RequestedAmountModel(_Strict):
    quantity: str
    value: float
    unit: str
    label: str | None


class RequestLogItem(_Strict):
    """One state a request reached."""

    at: str | None
    state: str
    note: str | None = Field(description="The owner's reason of a declined answer, or null")


class CapacityRequest(_Strict):
    """A member's request for capacity of another member's offer, with its current state."""

    request_id: str
    cluster: str
    member: str = Field(description="The owner of the offer")
    resource: str
    requester: str
    created_at: str | None
    expires_at: str | None
    message: str
    contact: RequestContact
    slot: TimeInterval | None = Field(description="For a machine offer, else null")
    amount: RequestedAmountModel | None = Field(description="For other kinds, else null")
    state: Literal["sent", "delivered", "accepted", "declined", "expired", "withdrawn"]
    state_at: str | None
    reason: str | None = Field(description="The owner's reason when declined, else null")


class CapacityRequestDetail(CapacityRequest):
    """A request with the history of its states, oldest first."""

    history: list[RequestLogItem]


class CapacityRequestPage(_Page):
    items: list[CapacityRequest]


class Health(_Strict):
    """The state of the database and of ingest's broker connection."""

    status: Literal["ok", "failing"]
    database: str = Field(description='"ok", or the database error')
    broker: str = Field(description='"connected", or "disconnected: " and the reason')
