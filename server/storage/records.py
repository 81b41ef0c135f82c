"""Values the storage returns to the API and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from kooperant.intervals import Interval
from kooperant.protocol import Band, Offer, Price


@dataclass(frozen=True, slots=True)
class ResourceQuery:
    """Filters for ``Storage.list_resources``; ``None`` and empty mean no filter.

    A resource matches when its kind is any of ``kinds`` and it has all ``capabilities``.
    ``window_start``/``window_end`` keep only resources with a free interval overlapping the
    window, and cut their free intervals and free hours to it. Either end may be open.
    """

    kinds: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    member: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    limit: int = 100
    offset: int = 0
    regions: tuple[str, ...] = ()
    cluster: str | None = None
    city: str | None = None
    min_free: float | None = None
    quantity: str | None = None
    sort: str = "member"

    def __post_init__(self) -> None:
        if self.sort not in SORT_KEYS:
            raise ValueError(f"sort {self.sort!r} is not one of {', '.join(SORT_KEYS)}")


# Sort orders of a search: name, member id, kind, free amount (largest first), last update
# (newest first) and the start of the next free interval (soonest first).
SORT_KEYS = ("name", "member", "kind", "free", "updated", "next_free")


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    """The current offer of one resource as stored."""

    cluster: str
    member: str
    resource: str
    kind: str
    name: str | None
    capabilities: tuple[str, ...]
    state: str | None
    state_since: datetime | None
    free_hours: float | None
    free_intervals: tuple[Interval, ...]
    horizon: Interval | None
    amounts: tuple[dict[str, Any], ...]
    generated_at: datetime
    received_at: datetime
    free_hours_band: Band | None = None
    price: Price | None = None
    suppliers: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()
    expires_at: datetime | None = None
    audience: tuple[str, ...] | None = None
    """Member ids the owner shares the offer with; ``None`` means the whole cluster."""
    accepts_requests: bool = False
    """Whether the owner's agent takes capacity requests for the offer."""


@dataclass(frozen=True, slots=True)
class ResourcePage:
    """One page of ``ResourceRecord`` and the number of records matching the filters."""

    items: tuple[ResourceRecord, ...]
    total: int


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A member seen on the broker, with how many resources it currently offers.

    ``first_seen`` and ``last_seen`` are the receive times of the first and the latest accepted
    message of any kind. They are ``None`` only for the calling member when no message of it has
    been accepted yet. ``status`` is "online", "offline" or ``None`` before the first status
    message. ``status_since`` is when the connection began for "online" and when the offline
    status was received for "offline".
    """

    cluster: str
    member: str
    resources: int
    first_seen: datetime | None
    last_seen: datetime | None
    status: str | None = None
    status_since: datetime | None = None
    registered: bool = False


@dataclass(frozen=True, slots=True)
class RejectedRecord:
    """A message ingest did not accept; ``payload`` is the stored, possibly cut, text."""

    id: int
    received_at: datetime
    topic: str
    reason: str
    payload: str


@dataclass(frozen=True, slots=True)
class OfferToStore:
    """One validated offer for ``Storage.store_offers``, with its receive time and message id."""

    offer: Offer
    received_at: datetime
    message_id: str


class OfferOutcome(StrEnum):
    """The result of ``Storage.store_offer`` for one offer."""

    CURRENT = "current"
    """The offer is now the current one of its resource and is in the history."""
    HISTORY_ONLY = "history_only"
    """A newer offer is current, so this one went to the history only."""
    WITHDRAWN = "withdrawn"
    """A newer withdrawal of its resource was processed, so the offer was not stored."""
    DUPLICATE = "duplicate"
    """A message with the same id from the same member was stored before; nothing changed."""


class WithdrawalOutcome(StrEnum):
    """The result of ``Storage.apply_withdrawal`` for one withdrawal."""

    REMOVED = "removed"
    """The current offer was removed."""
    NO_OFFER = "no_offer"
    """There was no current offer to remove; the withdrawal was recorded all the same."""
    STALE = "stale"
    """The current offer or the recorded withdrawal is newer, so nothing changed."""
    DUPLICATE = "duplicate"
    """A message with the same id from the same member was stored before; nothing changed."""


class StatusOutcome(StrEnum):
    """The result of ``Storage.store_status`` for one member status message."""

    CURRENT = "current"
    """The status is now the member's current status."""
    STALE = "stale"
    """The stored status describes a newer connection, or the same one as ended; kept."""
    DUPLICATE = "duplicate"
    """A message with the same id from the same member was stored before; nothing changed."""


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    """One received version of an offer, from the history."""

    generated_at: datetime
    received_at: datetime
    state: str | None
    free_hours: float | None
    free_hours_band: Band | None
    amounts: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One page of an offer's history, newest first, and how many versions there are."""

    items: tuple[HistoryRecord, ...]
    total: int


@dataclass(frozen=True, slots=True)
class CapacityPoint:
    """Free machine hours of a cluster on one day (Europe/Warsaw), from the history.

    ``free_hours`` is the sum of the free hours of each offer's last version of that day.
    ``offers`` is the number of offers in that sum.
    """

    day: date
    free_hours: float
    offers: int


@dataclass(frozen=True, slots=True)
class FreeHoursInWindow:
    """Free machine hours inside a time window and the number of machines that have any."""

    hours: float
    machines: int


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    """A member's profile as the coordinator recorded it (table ``member_profiles``)."""

    cluster: str
    member: str
    name: str
    contact_email: str | None
    contact_phone: str | None
    voivodeship: str | None
    city: str | None
    description: str | None
