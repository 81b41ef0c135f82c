"""The e-mail queue of capacity requests: one e-mail per ``request_log`` row, that is per state.

``request_log.mail_state`` is NULL while the row's e-mail waits, then ``sent``, ``skipped`` (no
recipient, or too old when first seen) or ``failed`` (after the last attempt).
``mail_attempts`` counts the failed and successful sends. Each function runs inside the caller's
connection or transaction, and the mail task marks each row in a transaction of its own right
after the send, so a crash between the two sends at most one e-mail again.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, and_, select, update

from kooperant.protocol.request import CapacityRequest
from server.storage.requests import RequestState
from server.storage.requests import _record as request_record
from server.storage.tables import capacity_requests, member_profiles, request_log, resources


class MailState(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class MemberContact:
    """A member's name and e-mail address from its profile; both ``None`` without a profile."""

    member: str
    name: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class PendingMail:
    """A ``request_log`` row whose e-mail waits, with what the e-mail needs."""

    log_id: int
    at: datetime
    state: RequestState
    note: str | None
    """The owner's reason of a declined request."""
    attempts: int
    request: CapacityRequest
    offer_name: str | None
    """The offer's public name, or ``None`` when the offer has none or is gone."""
    owner: MemberContact
    requester: MemberContact


def pending_mails(
    connection: Connection, limit: int, exclude: Collection[int] = ()
) -> list[PendingMail]:
    """Read up to ``limit`` waiting rows, oldest first, leaving out the log ids in ``exclude``."""
    conditions = [request_log.c.mail_state.is_(None)]
    if exclude:
        conditions.append(request_log.c.id.notin_(list(exclude)))
    rows = connection.execute(
        select(
            request_log.c.id.label("log_id"),
            request_log.c.at.label("log_at"),
            request_log.c.state.label("log_state"),
            request_log.c.note.label("log_note"),
            request_log.c.mail_attempts,
            capacity_requests,
        )
        .join(capacity_requests, capacity_requests.c.request_id == request_log.c.request_id)
        .where(*conditions)
        .order_by(request_log.c.id)
        .limit(limit)
    ).all()
    return [_pending_mail(connection, row) for row in rows]


def skip_old_mails(connection: Connection, before: datetime) -> int:
    """Mark waiting rows from before ``before`` that were never tried skipped; return how many.

    Rows tried before keep their attempts, so a failing e-mail still ends as ``failed``.
    """
    result = connection.execute(
        update(request_log)
        .where(
            request_log.c.mail_state.is_(None),
            request_log.c.mail_attempts == 0,
            request_log.c.at < before,
        )
        .values(mail_state=MailState.SKIPPED.value)
    )
    return result.rowcount


def finish_mail(connection: Connection, log_id: int, state: MailState, attempts: int) -> None:
    """Store the final ``state`` of the e-mail of row ``log_id`` after ``attempts`` sends."""
    connection.execute(
        update(request_log)
        .where(request_log.c.id == log_id)
        .values(mail_state=state.value, mail_attempts=attempts)
    )


def count_failed_attempt(connection: Connection, log_id: int, attempts: int) -> None:
    """Store ``attempts`` failed sends of row ``log_id``, whose e-mail still waits."""
    connection.execute(
        update(request_log).where(request_log.c.id == log_id).values(mail_attempts=attempts)
    )


def _pending_mail(connection: Connection, row: Row[Any]) -> PendingMail:
    request = request_record(row).request
    offer_name = connection.execute(
        select(resources.c.name).where(
            resources.c.cluster == request.cluster,
            resources.c.member == request.member,
            resources.c.resource == request.resource,
        )
    ).scalar_one_or_none()
    return PendingMail(
        log_id=row.log_id,
        at=row.log_at,
        state=RequestState(row.log_state),
        note=row.log_note,
        attempts=row.mail_attempts,
        request=request,
        offer_name=offer_name,
        owner=_member_contact(connection, request.cluster, request.member),
        requester=_member_contact(connection, request.cluster, request.requester),
    )


def _member_contact(connection: Connection, cluster: str, member: str) -> MemberContact:
    profile = connection.execute(
        select(member_profiles.c.name, member_profiles.c.contact_email).where(
            and_(member_profiles.c.cluster == cluster, member_profiles.c.member == member)
        )
    ).one_or_none()
    if profile is None:
        return MemberContact(member, None, None)
    return MemberContact(member, profile.name, profile.contact_email)
