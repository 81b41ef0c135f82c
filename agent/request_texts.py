"""Text blocks and JSON documents that show a stored request in ``kooperant agent requests``.

Times in the text are in the agent's time zone (``timezone`` in the config), with their offset;
the JSON keeps RFC 3339 times as stored.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agent.requests import RequestState, StoredRequest
from kooperant.i18n import Catalog, current_language, format_decimal
from kooperant.intervals import Interval
from kooperant.protocol.request import RequestedAmount

_ = Catalog.for_module(__name__)

_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def shown_state(stored: StoredRequest, now: datetime) -> str:
    """Return the state as the owner sees it at ``now``: the stored state, or ``expired``,
    ``held`` or ``hold_ended`` where time or the hold refines it."""
    if stored.state is RequestState.OPEN and stored.expired(now):
        return "expired"
    if stored.state is RequestState.ACCEPTED:
        return "held" if stored.holding(now) else "hold_ended"
    return str(stored.state)


def request_lines(stored: StoredRequest, now: datetime, zone: ZoneInfo, config: Path) -> list[str]:
    """Return the lines that describe one request to its owner.

    ``config`` is the agent config file that a suggested command names.
    """
    request = stored.request
    contact = request.contact
    reachable = ", ".join(escape_controls(item) for item in (contact.email, contact.phone) if item)
    lines = [
        f"{request.request_id}  {_state_text(stored, now, zone)}",
        _(
            "from",
            requester=escape_controls(request.requester),
            name=escape_controls(contact.name),
            contact=reachable,
        ),
        _("offer", resource=escape_controls(request.resource)),
    ]

    if request.slot is not None:
        lines.append(_("slot", slot=when(request.slot, zone)))
    if request.amount is not None:
        lines.append(_amount_line(request.amount))
    if request.message:
        lines.append(_("message", message=escape_controls(request.message)))

    lines.append(
        _(
            "times",
            received=_local(stored.received_at, zone),
            expires=_local(request.expires_at, zone),
        )
    )
    if stored.reason is not None:
        lines.append(_("reason", reason=escape_controls(stored.reason)))
    if stored.cleared_at is not None and stored.holding(now):
        # The aggregator clears a request once it is final: after it recorded the acceptance,
        # but also when the request expired or was withdrawn before the answer arrived.
        time = _local(stored.cleared_at, zone)
        lines.append(_("cleared_held", time=time, id=stored.request_id, config=config))
    return lines


def _amount_line(amount: RequestedAmount) -> str:
    label = f" ({escape_controls(amount.label)})" if amount.label else ""
    return _(
        "amount",
        value=format_decimal(amount.value, current_language()),
        unit=escape_controls(amount.unit),
        quantity=escape_controls(amount.quantity),
        label=label,
    )


def is_control(character: str) -> bool:
    """Return whether ``character`` is a control or format character (Unicode categories Cc and
    Cf, which include the bidi overrides), or a line or paragraph separator (Zl, Zp)."""
    return unicodedata.category(character) in _CONTROL_CATEGORIES


def escape_controls(text: str) -> str:
    """Return ``text`` with each ``is_control`` character escaped, e.g. ``\\n``, ``\\x1b``,
    ``\\u202e``, so a requester's text cannot add lines or terminal commands to the listing."""
    return "".join(
        _escaped(character) if is_control(character) else character for character in text
    )


def _escaped(character: str) -> str:
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(character)
    if named is not None:
        return named
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def when(slot: Interval, zone: ZoneInfo) -> str:
    """Return ``slot`` in local time, e.g. ``2026-03-03 08:00 - 12:00 (+01:00)``.

    The offset is the start's; a slot across a change of daylight saving time shows one offset.
    """
    start = slot.start.astimezone(zone)
    end = slot.end.astimezone(zone)
    end_format = "%H:%M" if end.date() == start.date() else "%Y-%m-%d %H:%M"
    offset = start.isoformat()[-6:]
    return f"{start:%Y-%m-%d %H:%M} - {end.strftime(end_format)} ({offset})"


def request_document(stored: StoredRequest, now: datetime) -> dict[str, Any]:
    """Return one request as a JSON-ready mapping for ``--json``."""
    request = stored.request.to_json()
    return {
        "request_id": stored.request_id,
        "state": shown_state(stored, now),
        "stored_state": str(stored.state),
        "requester": request["requester"],
        "contact": request["contact"],
        "resource": request["resource"],
        "slot": request.get("slot"),
        "amount": request.get("amount"),
        "message": request["message"],
        "created_at": request["created_at"],
        "received_at": stored.received_at.isoformat(),
        "expires_at": request["expires_at"],
        "decided_at": None if stored.decided_at is None else stored.decided_at.isoformat(),
        "reason": stored.reason,
        "automatic": stored.automatic,
        "cleared_at": None if stored.cleared_at is None else stored.cleared_at.isoformat(),
        "hold_end": None if stored.hold_end is None else str(stored.hold_end),
        "hold_ended_at": None if stored.hold_ended_at is None else stored.hold_ended_at.isoformat(),
    }


def _state_text(stored: StoredRequest, now: datetime, zone: ZoneInfo) -> str:
    state = shown_state(stored, now)
    if state == "hold_ended":
        if stored.hold_end is not None and stored.hold_ended_at is not None:
            return _(f"state.hold_{stored.hold_end}", time=_local(stored.hold_ended_at, zone))
        assert stored.request.slot is not None  # an amount hold ends only by release
        return _("state.hold_slot_passed", time=_local(stored.request.slot.end, zone))
    if state == "declined" and stored.automatic:
        return _("state.declined_automatic")
    return _(f"state.{state}")


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat(sep=" ", timespec="minutes")
