"""Live state shared between ingest and the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class ServerStatus:
    """Broker connection state and message counters, written by ingest and read by ``/healthz``.

    Both run in the same event loop, so plain attribute writes need no lock.
    """

    broker_url: str
    broker_connected: bool = False
    broker_error: str | None = None
    broker_connected_since: datetime | None = None
    # The CONNACK's session present flag of the current connection; None before the first.
    broker_session_present: bool | None = None
    accepted_offers: int = 0
    # Valid withdrawals; the stale ones (older than the current offer) changed nothing.
    accepted_withdrawals: int = 0
    stale_withdrawals: int = 0
    # Current offers removed because their owner cleared the retained offer (empty payload).
    cleared_offers: int = 0
    rejected_messages: int = 0
    # Messages on topics outside ingest's subscription filter, such as other clusters' offers
    # from a broker that ignores the filter. They are neither stored nor counted as rejected.
    dropped_messages: int = 0
    storage_failures: int = 0
