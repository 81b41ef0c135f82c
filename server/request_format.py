"""Capacity requests as the request pages show them, in Polish or English.

States are translated (``request_state_*`` messages), times are in Europe/Warsaw in the page's
format, and an amount reads like the offer page's amounts, e.g. ``pallet places 12.5 pallets``.
"""

from __future__ import annotations

from dataclasses import dataclass

from kooperant.i18n import Language
from kooperant.protocol.request import CapacityRequest
from server.dashboard import format_amounts, format_time
from server.errors import RequestError
from server.messages import MESSAGES
from server.storage import RequestRecord, RequestState
from server.storage.requests import OPEN_STATES


@dataclass(frozen=True, slots=True)
class RequestRow:
    """One request in the list of ``/requests`` or at the top of its own page."""

    request_id: str
    href: str
    offer_href: str
    offer: str
    """``member/resource`` of the requested offer."""
    requester: str
    requested: str
    """The slot or the amount requested."""
    state: str
    state_class: str
    """The request's state as an English word, for the page's CSS and tests."""
    state_at: str
    created: str
    expires: str
    is_open: bool


@dataclass(frozen=True, slots=True)
class LogRow:
    at: str
    state: str
    note: str


def state_text(state: RequestState, language: Language) -> str:
    return MESSAGES(f"request_state_{state.value}", language)


def refusal_text(error: RequestError, language: Language) -> str:
    """Return the message of a refused change of a request, with its state in ``language``."""
    if error.message_id != "request_not_open":
        return error.localized(language)
    state = state_text(RequestState(str(error.fields["state"])), language)
    return MESSAGES(error.message_id, language, **{**error.fields, "state": state})


def requested_text(request: CapacityRequest, language: Language) -> str:
    """Return the requested slot as ``start – end`` or the requested amount with its unit."""
    if request.slot is not None:
        return MESSAGES(
            "request_form_interval",
            language,
            start=format_time(request.slot.start, language),
            end=format_time(request.slot.end, language),
        )
    amount = request.amount
    if amount is None:
        return MESSAGES("none", language)
    shown = {
        "quantity": amount.quantity,
        "unit": amount.unit,
        "label": amount.label,
        "value": amount.value,
    }
    return format_amounts([shown], language)


def request_row(record: RequestRecord, language: Language) -> RequestRow:
    request = record.request
    return RequestRow(
        request_id=request.request_id,
        href=f"/requests/{request.request_id}?lang={language}",
        offer_href=(
            f"/offers/{request.cluster}/{request.member}/{request.resource}?lang={language}"
        ),
        offer=f"{request.member}/{request.resource}",
        requester=request.requester,
        requested=requested_text(request, language),
        state=state_text(record.state, language),
        state_class=record.state.value,
        state_at=format_time(record.state_at, language),
        created=format_time(request.created_at, language),
        expires=format_time(request.expires_at, language),
        is_open=record.state in OPEN_STATES,
    )


def log_rows(record: RequestRecord, language: Language) -> list[LogRow]:
    return [
        LogRow(format_time(entry.at, language), state_text(entry.state, language), entry.note or "")
        for entry in record.log
    ]
