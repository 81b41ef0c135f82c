"""Offers, withdrawals, member statuses and payloads shared by the server tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from kooperant.intervals import Interval
from kooperant.protocol import (
    Amount,
    Envelope,
    MachineState,
    MemberState,
    MemberStatus,
    Offer,
    OfflineReason,
    ResourceKind,
    Withdrawal,
    WithdrawalReason,
)

_Enveloped = TypeVar("_Enveloped", Offer, Withdrawal)

# The newest migration of server/storage/migrations/versions.
HEAD_REVISION = "0009"
T0 = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)


def hours(count: float) -> timedelta:
    return timedelta(hours=count)


def machine_offer(
    cluster: str = "pomorskie-metal",
    member: str = "acme",
    resource: str = "cnc-5ax-01",
    *,
    generated_at: datetime = T0,
    capabilities: tuple[str, ...] = ("5-axis-milling", "turning"),
    free: tuple[Interval, ...] = (
        Interval(T0, T0 + hours(4)),
        Interval(T0 + hours(24), T0 + hours(26)),
    ),
    name: str = "DMU 50",
    accepts_requests: bool = False,
) -> Offer:
    return Offer(
        cluster=cluster,
        member=member,
        resource=resource,
        kind=ResourceKind.MACHINE,
        generated_at=generated_at,
        name=name,
        capabilities=capabilities,
        state=MachineState.NOT_EXECUTING,
        state_since=generated_at - hours(1),
        horizon=Interval(T0, T0 + hours(14 * 24)),
        free_hours=sum(interval.hours for interval in free),
        free_intervals=free,
        accepts_requests=accepts_requests,
    )


def storage_offer(
    cluster: str = "pomorskie-metal",
    member: str = "acme",
    resource: str = "hall-b",
    *,
    accepts_requests: bool = False,
) -> Offer:
    return Offer(
        cluster=cluster,
        member=member,
        resource=resource,
        kind=ResourceKind.STORAGE,
        generated_at=T0,
        name="Hala B",
        capabilities=("pallet-storage",),
        amounts=(Amount("pallet_places", 40.0, "pallets"),),
        accepts_requests=accepts_requests,
    )


def withdrawal(
    cluster: str = "pomorskie-metal",
    member: str = "acme",
    resource: str = "cnc-5ax-01",
    *,
    withdrawn_at: datetime = T1,
    delete_history: bool = False,
) -> Withdrawal:
    return Withdrawal(
        cluster=cluster,
        member=member,
        resource=resource,
        withdrawn_at=withdrawn_at,
        reason=WithdrawalReason.WITHDRAWN,
        delete_history=delete_history,
    )


def with_seq(
    offer_or_withdrawal: _Enveloped, seq: int, message_id: str | None = None
) -> _Enveloped:
    """Return a copy carrying an envelope with ``seq`` and ``message_id`` (default ``m-{seq}``)."""
    envelope = Envelope(message_id or f"m-{seq}", seq)
    return replace(offer_or_withdrawal, envelope=envelope)


def member_status(
    cluster: str = "pomorskie-metal",
    member: str = "acme",
    *,
    online: bool = True,
    connected_at: datetime = T0,
    reason: OfflineReason = OfflineReason.CONNECTION_LOST,
) -> MemberStatus:
    return MemberStatus(
        cluster=cluster,
        member=member,
        state=MemberState.ONLINE if online else MemberState.OFFLINE,
        connected_at=connected_at,
        reason=None if online else reason,
        agent_version="0.9.0",
    )
