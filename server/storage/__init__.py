"""Storage of offers, members and rejected messages over SQLite or PostgreSQL.

``Storage`` is the only entry point, and ``records`` defines the values it returns.
"""

from server.storage.records import (
    MemberRecord,
    RejectedRecord,
    ResourcePage,
    ResourceQuery,
    ResourceRecord,
)
from server.storage.storage import MAX_REJECTED_PAYLOAD_BYTES, Storage, payload_as_text
from server.storage.urls import DEFAULT_DATABASE_URL, mask_password, parse_database_url

__all__ = [
    "DEFAULT_DATABASE_URL",
    "MAX_REJECTED_PAYLOAD_BYTES",
    "MemberRecord",
    "RejectedRecord",
    "ResourcePage",
    "ResourceQuery",
    "ResourceRecord",
    "Storage",
    "mask_password",
    "parse_database_url",
    "payload_as_text",
]
