"""Live state shared between ingest and the HTTP API."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class RejectReason(StrEnum):
    """The reason code of a rejected message, a label value of the metric of rejected messages."""

    TOO_LARGE = "too_large"
    INVALID_TOPIC = "invalid_topic"
    INVALID_PAYLOAD = "invalid_payload"
    TOPIC_MISMATCH = "topic_mismatch"
    NOT_REGISTERED = "not_registered"
    ANSWER_UNMATCHED = "answer_unmatched"
    STORAGE_FAILED = "storage_failed"
    INTERNAL_ERROR = "internal_error"


@dataclass
class ServerStatus:
    """Broker connection state and message counters, written by ingest and read by ``/healthz``.

    Both run in the same event loop, so plain attribute writes need no lock.
    """

    broker_url: str
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    broker_connected: bool = False
    broker_error: str | None = None
    broker_connected_since: datetime | None = None
    # The CONNACK's session present flag of the current connection; None before the first.
    broker_session_present: bool | None = None
    # Messages handed to ingest's handler, whatever became of them.
    received_messages: int = 0
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
    # The same rejections by reason; the values add up to rejected_messages.
    rejected_by_reason: Counter[RejectReason] = field(default_factory=Counter)
    # Messages on topics outside ingest's subscription filter, such as other clusters' offers
    # from a broker that ignores the filter. They are neither stored nor counted as rejected.
    dropped_messages: int = 0
    # Failed storage attempts that ingest retried; storage_paused is set while it waits.
    storage_retries: int = 0
    storage_paused: bool = False
