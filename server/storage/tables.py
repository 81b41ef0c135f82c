"""Table definitions used by the queries; the Alembic migrations create the same tables."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from server.storage.types import UtcDateTime

ID_LENGTH = 64
# A message id is the agent's id (at most 128 characters) or "sha256:" and 64 hex digits.
MESSAGE_ID_LENGTH = 160

metadata = MetaData()

members = Table(
    "members",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
)

# The current offer per resource; ``payload`` is the accepted JSON text. A banded free_hours is
# stored as ``free_hours_min`` and ``free_hours_max`` (NULL for an open band) with ``free_hours``
# NULL.
resources = Table(
    "resources",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("resource", String(ID_LENGTH), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("name", Text),
    Column("state", String(32)),
    Column("state_since", UtcDateTime),
    Column("free_hours", Float),
    Column("horizon_start", UtcDateTime),
    Column("horizon_end", UtcDateTime),
    Column("generated_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    Column("free_hours_min", Float),
    Column("free_hours_max", Float),
    Column("expires_at", UtcDateTime),
    Column("seq", BigInteger),
    Column("message_id", String(MESSAGE_ID_LENGTH)),
    # Whether the offer has rows in resource_audience; searches read it instead of looking
    # the audience up for every offer (bench/search.py).
    Column("restricted", Boolean, nullable=False, server_default=false()),
    # Whether the owner's agent takes capacity requests for the offer (offer field
    # ``accepts_requests``); offers of agents that predate requests leave it false.
    Column("accepts_requests", Boolean, nullable=False, server_default=false()),
    Index("ix_resources_kind", "kind"),
    Index("ix_resources_expires_at", "expires_at"),
    Index("ix_resources_received_at", "received_at"),
    Index("ix_resources_free_hours", "free_hours"),
)

# The members allowed to see a current offer that has an audience, one row per member id. An offer
# without rows here is meant for the whole cluster.
resource_audience = Table(
    "resource_audience",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("resource", String(ID_LENGTH), primary_key=True),
    Column("viewer", String(ID_LENGTH), primary_key=True),
)

# The latest withdrawal per resource, so that an older offer arriving later stays withdrawn.
withdrawals = Table(
    "withdrawals",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("resource", String(ID_LENGTH), primary_key=True),
    Column("withdrawn_at", UtcDateTime, nullable=False),
    Column("reason", String(32), nullable=False),
    Column("delete_history", Boolean, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("seq", BigInteger),
    Column("message_id", String(MESSAGE_ID_LENGTH)),
)

resource_capabilities = Table(
    "resource_capabilities",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("resource", String(ID_LENGTH), primary_key=True),
    Column("capability", String(200), primary_key=True),
    Index("ix_resource_capabilities_capability", "capability"),
)

free_intervals = Table(
    "free_intervals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster", String(ID_LENGTH), nullable=False),
    Column("member", String(ID_LENGTH), nullable=False),
    Column("resource", String(ID_LENGTH), nullable=False),
    Column("start", UtcDateTime, nullable=False),
    Column("end", UtcDateTime, nullable=False),
    Index("ix_free_intervals_resource", "cluster", "member", "resource"),
    Index("ix_free_intervals_time", "start", "end"),
)

# On PostgreSQL migration 0009 partitions this table by month of generated_at, makes id a bigint
# and the primary key (id, generated_at), as partitions.py describes. SQLite keeps it as declared.
offer_history = Table(
    "offer_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("cluster", String(ID_LENGTH), nullable=False),
    Column("member", String(ID_LENGTH), nullable=False),
    Column("resource", String(ID_LENGTH), nullable=False),
    Column("generated_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    Column("seq", BigInteger),
    Column("message_id", String(MESSAGE_ID_LENGTH)),
    Index("ix_offer_history_resource", "cluster", "member", "resource", "generated_at"),
)

# The last free machine hours of each offer per calendar day (Europe/Warsaw), written with the
# history; the coordinator's capacity plot sums them (server/storage/capacity.py).
capacity_days = Table(
    "capacity_days",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("resource", String(ID_LENGTH), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("generated_at", UtcDateTime, nullable=False),
    Column("free_hours", Float, nullable=False),
    Index("ix_capacity_days_day", "day"),
)

rejected_messages = Table(
    "rejected_messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("topic", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_rejected_messages_received_at", "received_at"),
)

# The id of every accepted message per member, so that a message delivered again is recognised.
# ``kind`` is "offer", "withdrawal" or "status"; ``seq`` is NULL for messages without envelope.
delivered_messages = Table(
    "delivered_messages",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("message_id", String(MESSAGE_ID_LENGTH), primary_key=True),
    Column("seq", BigInteger),
    Column("kind", String(16), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_delivered_messages_received_at", "received_at"),
)

# The latest accepted status message of each member. ``connected_at`` is when the connection the
# message describes began; ``reason`` is set only for the "offline" state.
member_status = Table(
    "member_status",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("connected_at", UtcDateTime, nullable=False),
    Column("reason", String(32)),
    Column("agent_version", Text),
    Column("status_received_at", UtcDateTime, nullable=False),
    Column("message_id", String(MESSAGE_ID_LENGTH), nullable=False),
)

# Members the coordinator registered with ``kooperant server add-member``. Once a cluster has one
# row here, ingest rejects messages of members of that cluster without a row.
registered_members = Table(
    "registered_members",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("registered_at", UtcDateTime, nullable=False),
)

# The coordinator's record of a member, shown on its profile page, with the region a search
# filters by. ``voivodeship`` is one of the 16 Polish voivodeship codes (``server/regions.py``).
member_profiles = Table(
    "member_profiles",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("name", Text, nullable=False),
    Column("contact_email", Text),
    Column("contact_phone", Text),
    Column("voivodeship", String(32)),
    Column("city", Text),
    Column("description", Text),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_member_profiles_voivodeship", "voivodeship"),
)

# Dashboard accounts. ``role`` is "member" or "coordinator". A member account has ``member`` set,
# and a coordinator account has it set only when the coordinating company is a member too.
# ``password_hash`` is an argon2id hash in PHC string format.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("cluster", String(ID_LENGTH), nullable=False),
    Column("member", String(ID_LENGTH)),
    Column("display_name", Text),
    Column("must_change_password", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("password_changed_at", UtcDateTime, nullable=False),
    Index("ix_users_member", "cluster", "member"),
)

# Signed-in browsers. The cookie contains a random session id, and only its SHA-256 is stored.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("session_sha256", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_web_sessions_user_id", "user_id"),
    Index("ix_web_sessions_expires_at", "expires_at"),
)

# Secrets the server generates once and keeps, such as the key that signs calendar feed links.
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# The amounts of each current offer, one row per amount in payload order, so that a search can
# ask for a minimum free amount. A banded amount has ``value`` NULL and its band edges set.
resource_amounts = Table(
    "resource_amounts",
    metadata,
    Column("cluster", String(ID_LENGTH), primary_key=True),
    Column("member", String(ID_LENGTH), primary_key=True),
    Column("resource", String(ID_LENGTH), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("quantity", String(64), nullable=False),
    Column("unit", String(64), nullable=False),
    Column("label", Text),
    Column("value", Float),
    Column("band_min", Float),
    Column("band_max", Float),
    Index("ix_resource_amounts_quantity", "quantity"),
)

# Capacity requests of one member for another member's offer (kooperant.protocol.request), with
# their state. ``member`` is the owner of the offer. Exactly one of the slot and the amount is
# set. ``answer_seq`` is the ``seq`` of the last answer applied, so an older answer is ignored.
capacity_requests = Table(
    "capacity_requests",
    metadata,
    Column("request_id", String(36), primary_key=True),
    Column("cluster", String(ID_LENGTH), nullable=False),
    Column("member", String(ID_LENGTH), nullable=False),
    Column("resource", String(ID_LENGTH), nullable=False),
    Column("requester", String(ID_LENGTH), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("message", Text, nullable=False),
    Column("contact_name", Text, nullable=False),
    Column("contact_email", Text),
    Column("contact_phone", Text),
    Column("slot_start", UtcDateTime),
    Column("slot_end", UtcDateTime),
    Column("amount_quantity", String(64)),
    Column("amount_value", Float),
    Column("amount_unit", String(64)),
    Column("amount_label", Text),
    Column("state", String(16), nullable=False),
    Column("state_at", UtcDateTime, nullable=False),
    Column("reason", Text),
    Column("answer_seq", BigInteger),
    # What the broker retains on the request topic: NULL while the request waits to be
    # published, "published", then "cleared" once the empty retained payload went out.
    Column("routing", String(16)),
    Index("ix_capacity_requests_requester", "cluster", "requester", "created_at"),
    Index("ix_capacity_requests_member", "cluster", "member", "created_at"),
    Index("ix_capacity_requests_state", "state", "expires_at"),
    Index("ix_capacity_requests_routing", "routing", "state"),
)

# Every state a request reached, oldest first, readable by the requester and the owner. ``note``
# is the owner's reason of a declined answer, or NULL.
request_log = Table(
    "request_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "request_id",
        String(36),
        ForeignKey("capacity_requests.request_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("at", UtcDateTime, nullable=False),
    Column("state", String(16), nullable=False),
    Column("note", Text),
    # The e-mail about this state: NULL while it waits, then "sent", "skipped" (no address, or
    # too old when SMTP was configured) or "failed" after the last attempt.
    Column("mail_state", String(16)),
    Column("mail_attempts", Integer, nullable=False, server_default="0"),
    Index("ix_request_log_request_id", "request_id"),
    Index("ix_request_log_mail_state", "mail_state"),
)
