"""Offers, withdrawals and payloads shared by the server tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kooperant.intervals import Interval
from kooperant.protocol import (
    Amount,
    MachineState,
    Offer,
    ResourceKind,
    Withdrawal,
    WithdrawalReason,
)

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
    )


def storage_offer(
    cluster: str = "pomorskie-metal", member: str = "acme", resource: str = "hall-b"
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
