"""Building a capacity request from entered fields, shared by the API and the dashboard form.

Both callers check who may request first (a member, not the offer's owner) and map the
``ValueError`` or ``OfferValidationError`` raised here to their own error responses.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kooperant.intervals import Interval
from kooperant.protocol.errors import OfferValidationError
from kooperant.protocol.offer import parse_time
from kooperant.protocol.request import (
    CapacityRequest,
    Contact,
    RequestedAmount,
    check_schema,
    new_request_id,
    request_schema_check,
    request_text_problem,
)


def build_request(
    *,
    cluster: str,
    member: str,
    resource: str,
    requester: str,
    now: datetime,
    expires_in: timedelta,
    contact: Contact,
    message: str,
    slot: Interval | None,
    amount: RequestedAmount | None,
) -> CapacityRequest:
    """Return a new request of ``requester`` created at ``now``, checked against its schema.

    Raises ``ValueError`` for a rule of ``CapacityRequest``, and ``OfferValidationError`` for a
    schema violation or a control or format character in the contact or message. Both messages
    name the invalid field.
    """
    request = CapacityRequest(
        request_id=new_request_id(),
        cluster=cluster,
        member=member,
        resource=resource,
        requester=requester,
        created_at=now,
        expires_at=now + expires_in,
        contact=contact,
        message=message,
        slot=slot,
        amount=amount,
    )
    # The routing step publishes the request, so it must pass the checks of its schema.
    check_schema(request.to_json(), request_schema_check(), "request")
    problem = request_text_problem(contact, message)
    if problem is not None:
        raise OfferValidationError(problem)
    return request


def utc_time(text: str, where: str) -> datetime:
    """Return the ISO 8601 time ``text`` in UTC; raise ``OfferValidationError`` naming ``where``."""
    value = parse_time(text, where)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise OfferValidationError(
            f"date-time at {where} is out of range: {text!r}; "
            "use one from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z"
        ) from None
