"""The e-mail about one state of a capacity request: its recipients, subject and body.

The recipient's language is not stored, so every e-mail carries the Polish text first and the
English text below it, both from the catalogue context ``server.request_mail``. Names, messages
and reasons come from members and their agents, so nothing they wrote reaches a header except the
offer's name in the subject, with control characters replaced by spaces.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from kooperant.i18n import Catalog, Language, format_decimal
from server.mail_settings import is_mail_address, request_link
from server.storage.notifications import PendingMail
from server.storage.requests import RequestState

logger = logging.getLogger(__name__)

_ = Catalog.for_module(__name__)

# Slots are shown in the cluster's local time, as on the dashboard.
MAIL_TIMEZONE = ZoneInfo("Europe/Warsaw")
SUBJECT_PREFIX = "[kooperant]"
# Subjects longer than this are cut, so that a long offer name cannot make a huge header.
MAX_SUBJECT_NAME_CHARACTERS = 120


def recipients(mail: PendingMail) -> tuple[str, ...]:
    """Return the addresses that get the e-mail of ``mail``'s state, without repeats.

    A new request goes to the owner, an answer to the requester's contact and member, an
    expiry to both sides, a withdrawal to the owner, and ``delivered`` to nobody. An address that
    is not a bare ``local@domain`` is left out and logged.
    """
    owner = [mail.owner.email]
    requester = [mail.request.contact.email, mail.requester.email]
    by_state: dict[RequestState, list[str | None]] = {
        RequestState.SENT: owner,
        RequestState.ACCEPTED: requester,
        RequestState.DECLINED: requester,
        RequestState.EXPIRED: owner + requester,
        RequestState.WITHDRAWN: owner,
    }
    addresses: list[str] = []
    for address in by_state.get(mail.state, []):
        if address is None or address.lower() in (known.lower() for known in addresses):
            continue
        if not is_mail_address(address):
            logger.warning(
                "Leaving out the invalid e-mail address %r of request %s",
                address,
                mail.request.request_id,
            )
            continue
        addresses.append(address)
    return tuple(addresses)


def compose_mail(
    mail: PendingMail, to: tuple[str, ...], sender: str, public_url: str | None, now: datetime
) -> EmailMessage:
    """Build the e-mail about ``mail`` from ``sender`` to ``to``, in Polish then English."""
    if not to:
        raise ValueError(f"e-mail of request log row {mail.log_id} has no recipient")
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Subject"] = _subject(mail)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    # RFC 3834: the header tells auto-responders not to reply to this e-mail.
    message["Auto-Submitted"] = "auto-generated"
    body = "\n\n".join([_body(mail, "pl", public_url), "-" * 40, _body(mail, "en", public_url)])
    # Quoted-printable keeps the Polish characters intact through servers without 8BITMIME.
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    return message


def _subject(mail: PendingMail) -> str:
    offer = _header_text(_offer_name(mail))[:MAX_SUBJECT_NAME_CHARACTERS]
    subject_id = f"subject_{mail.state.value}"
    polish = _(subject_id, "pl", offer=offer)
    english = _(subject_id, "en", offer=offer)
    return f"{SUBJECT_PREFIX} {polish} / {english}"


def _body(mail: PendingMail, language: Language, public_url: str | None) -> str:
    request = mail.request
    fields = {
        "offer": _offer_name(mail),
        "owner": _member_name(mail.owner.member, mail.owner.name),
        "requester": _member_name(mail.requester.member, mail.requester.name),
    }
    lines = [_(f"intro_{mail.state.value}", language, **fields), ""]
    lines.append(_("label_offer", language, value=f"{fields['offer']} ({_offer_key(mail)})"))
    lines.append(_("label_owner", language, value=fields["owner"]))
    lines.append(_("label_requester", language, value=fields["requester"]))
    lines.append(_("label_contact", language, value=_contact(mail)))
    if request.slot is not None:
        lines.append(_("label_slot", language, value=_slot(mail)))
    if request.amount is not None:
        lines.append(_("label_amount", language, value=_amount(mail, language)))
    lines.append(_("label_state", language, value=_(f"state_{mail.state.value}", language)))
    if mail.state == RequestState.DECLINED and mail.note:
        lines.append(_("label_reason", language, value=mail.note))
    lines.append(_("label_request_id", language, value=request.request_id))
    if public_url is not None:
        lines.append(_("label_link", language, value=request_link(public_url, request.request_id)))
    if request.message:
        lines += ["", _("label_message", language), request.message]
    lines += ["", _("footer", language)]
    return "\n".join(lines)


def _offer_name(mail: PendingMail) -> str:
    return mail.offer_name or mail.request.resource


def _offer_key(mail: PendingMail) -> str:
    return f"{mail.request.member}/{mail.request.resource}"


def _member_name(member: str, name: str | None) -> str:
    return f"{name} ({member})" if name else member


def _contact(mail: PendingMail) -> str:
    contact = mail.request.contact
    parts = [contact.name]
    parts += [value for value in (contact.email, contact.phone) if value is not None]
    return ", ".join(parts)


def _slot(mail: PendingMail) -> str:
    slot = mail.request.slot
    assert slot is not None  # The caller checked.
    start = slot.start.astimezone(MAIL_TIMEZONE)
    end = slot.end.astimezone(MAIL_TIMEZONE)
    end_format = "%H:%M %Z" if start.date() == end.date() else "%Y-%m-%d %H:%M %Z"
    return f"{start:%Y-%m-%d %H:%M} – {end.strftime(end_format)} ({MAIL_TIMEZONE.key})"


def _amount(mail: PendingMail, language: Language) -> str:
    amount = mail.request.amount
    assert amount is not None  # The caller checked.
    named = amount.quantity if amount.label is None else f"{amount.quantity}, {amount.label}"
    return f"{format_decimal(amount.value, language)} {amount.unit} ({named})"


def _header_text(value: str) -> str:
    # CR and LF would start a new header, and other control characters have no place in one.
    cleaned = "".join(
        " " if ord(character) < 32 or ord(character) == 127 else character for character in value
    )
    return " ".join(cleaned.split())
