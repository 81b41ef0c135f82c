"""Storage of offers, withdrawals, members, delivered message ids and rejected messages.

SQLite and PostgreSQL are supported.

``Storage`` is the only entry point, ``records`` defines the values it returns, and ``Viewer``
(from ``visibility``) says whose view of the offers a read returns.
"""

from server.storage.records import (
    SORT_KEYS,
    CapacityPoint,
    FreeHoursInWindow,
    HistoryPage,
    HistoryRecord,
    MemberRecord,
    OfferOutcome,
    OfferToStore,
    ProfileRecord,
    RejectedRecord,
    ResourcePage,
    ResourceQuery,
    ResourceRecord,
    StatusOutcome,
    WithdrawalOutcome,
)
from server.storage.requests import (
    AnswerOutcome,
    RequestLogEntry,
    RequestMonthCount,
    RequestPage,
    RequestRecord,
    RequestState,
)
from server.storage.storage import (
    DELIVERED_RETENTION,
    MAX_REJECTED_PAYLOAD_BYTES,
    Storage,
    payload_as_text,
)
from server.storage.urls import DEFAULT_DATABASE_URL, mask_password, parse_database_url
from server.storage.visibility import ANONYMOUS, Viewer

__all__ = [
    "ANONYMOUS",
    "DEFAULT_DATABASE_URL",
    "DELIVERED_RETENTION",
    "MAX_REJECTED_PAYLOAD_BYTES",
    "SORT_KEYS",
    "AnswerOutcome",
    "CapacityPoint",
    "FreeHoursInWindow",
    "HistoryPage",
    "HistoryRecord",
    "MemberRecord",
    "OfferOutcome",
    "OfferToStore",
    "ProfileRecord",
    "RejectedRecord",
    "RequestLogEntry",
    "RequestMonthCount",
    "RequestPage",
    "RequestRecord",
    "RequestState",
    "ResourcePage",
    "ResourceQuery",
    "ResourceRecord",
    "StatusOutcome",
    "Storage",
    "Viewer",
    "WithdrawalOutcome",
    "mask_password",
    "parse_database_url",
    "payload_as_text",
]
