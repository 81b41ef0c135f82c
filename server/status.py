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
    # Messages stored for the first time; duplicates (a message id stored before) are counted in
    # duplicate_messages only.
    accepted_offers: int = 0
    # Valid withdrawals; the stale ones (older than the stored offer or withdrawal) changed
    # nothing.
    accepted_withdrawals: int = 0
    stale_withdrawals: int = 0
    # Valid member status messages; the stale ones (of an older or ended connection) changed
    # nothing.
    accepted_statuses: int = 0
    stale_statuses: int = 0
    duplicate_messages: int = 0
    # Answers that fit their request; those of a final request, or with an old seq, changed
    # nothing.
    accepted_answers: int = 0
    # Current offers removed because their owner cleared the retained offer (empty payload).
    cleared_offers: int = 0
    rejected_messages: int = 0
    # Messages on topics outside ingest's subscription filter, such as other clusters' offers
    # from a broker that ignores the filter. They are neither stored nor counted as rejected.
    dropped_messages: int = 0
    # Failed storage attempts that ingest retried; storage_paused is set while it waits.
    storage_retries: int = 0
    storage_paused: bool = False
