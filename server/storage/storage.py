"""The aggregator's database: current offers, history, withdrawals, members, rejected messages.

All methods are synchronous SQLAlchemy Core calls; async callers run them with
``asyncio.to_thread``. Database errors surface as ``server.errors`` exceptions that name the URL
with its password masked.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from kooperant.protocol import Offer, Withdrawal, message_key
from server.errors import (
    AccountError,
    DatabaseUnavailableError,
    SchemaOutdatedError,
    StorageError,
)
from server.storage import accounts, notifications, profiles, request_routing, requests
from server.storage.accounts import NewSession, SessionRecord, UserRecord
from server.storage.capacity import forget_capacity, read_capacity, record_capacity
from server.storage.connection_errors import unavailable_error
from server.storage.current import (
    current_stamp,
    key_condition,
    latest_withdrawal,
    record_withdrawal,
    remove_current,
    replace_current,
)
from server.storage.delivery import Stamp, claim_message, precedes, prune_statement
from server.storage.history_maintenance import MaintenanceResult, maintain_history
from server.storage.locking import (
    WRITE_TRANSACTION_OPTION,
    configure_sqlite_engine,
    lock_member,
    lock_members,
)
from server.storage.members import (
    has_registrations,
    is_registered,
    is_stale_status,
    register,
    seen_unregistered,
    stored_status,
    touch_member,
    write_status,
)
from server.storage.notifications import MailState, PendingMail
from server.storage.offer_batch import prepare_offers, store_offer_batch
from server.storage.pages import MemberPage, RejectedPage, member_page, rejected_page
from server.storage.profiles import MemberProfile
from server.storage.queries import (
    audience_of,
    capabilities_of,
    intervals_of,
    members_statement,
    rejected_statement,
    resource_conditions,
    resource_record,
    window,
)
from server.storage.records import (
    CapacityPoint,
    FreeHoursInWindow,
    HistoryPage,
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
from server.storage.request_routing import AnswerReceipt, RoutingWork
from server.storage.requests import (
    AnswerOutcome,
    RequestMonthCount,
    RequestPage,
    RequestRecord,
)
from server.storage.search import (
    matching_page,
    profile_record,
    profiles_statement,
    read_history,
    search_conditions,
)
from server.storage.secrets import read_or_create_secret
from server.storage.tables import (
    member_profiles,
    offer_history,
    rejected_messages,
    resource_capabilities,
    resources,
)
from server.storage.urls import mask_password, parse_database_url
from server.storage.visibility import ANONYMOUS, Viewer, visible_offer_conditions
from server.storage.window_hours import read_free_hours_in_window

if TYPE_CHECKING:
    from kooperant.protocol import Envelope, MemberStatus
    from kooperant.protocol.answer import Answer
    from kooperant.protocol.request import CapacityRequest

logger = logging.getLogger(__name__)

MAX_REJECTED_PAYLOAD_BYTES = 64 * 1024
# How long the id of a delivered message is kept to recognise the message if it comes again. The
# agent drops what its outbox held longer than its outbox.max_age_hours (7 days by default), so
# no older message can be sent again.
DELIVERED_RETENTION = timedelta(days=30)
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
# Offers written with one set of statements in ``store_offers``; a larger batch takes several
# sets in the same transaction. It keeps a key list of SQLite's row-value IN below its limit of
# 32,766 bind parameters.
MAX_STATEMENT_BATCH = 1000


class Storage:
    """The database at ``url`` (``sqlite:///FILE`` or ``postgresql://...``).

    The constructor connects once, so a wrong URL or an unreachable server fails here with
    ``InvalidSettingError`` or ``DatabaseUnavailableError`` instead of at the first offer.
    """

    def __init__(self, url: str) -> None:
        self.url = mask_password(url)
        parsed = parse_database_url(url)
        self._parsed_url = parsed
        if parsed.drivername == "sqlite":
            self._engine = create_engine(
                parsed,
                connect_args={
                    "check_same_thread": False,
                    "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
                },
            )
            configure_sqlite_engine(self._engine)
        else:
            # PostgreSQL's JIT compiles the search count on a large cluster (its cost estimate is
            # above jit_above_cost) and spent 55-120 ms doing so in bench/search.py, more than
            # the query itself. Options of the URL are kept, and a later "-c jit=on" wins.
            given = parsed.query.get("options")
            given_options = [given] if isinstance(given, str) else list(given or ())
            options = " ".join(["-c jit=off", *given_options])
            self._engine = create_engine(
                parsed, pool_pre_ping=True, connect_args={"options": options}
            )
        self._check_connection()

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def _check_connection(self) -> None:
        try:
            with self._engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as error:
            self._engine.dispose()
            original = getattr(error, "orig", None)
            message = str(original if original is not None else error)
            raise unavailable_error(self._parsed_url, self.url, message) from error

    # Schema

    def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to ``revision`` (the newest by default); a no-op when it is there."""
        try:
            with self._engine.begin() as connection:
                config = _alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
        except SQLAlchemyError as error:
            raise DatabaseUnavailableError(
                "database_migration_failed", url=self.url, detail=_first_line(error)
            ) from error
        logger.info("Database schema of %s is at revision %s", self.url, self.schema_revision())

    def schema_revision(self) -> str | None:
        """Return the Alembic revision of the database, or ``None`` before the first migration."""
        with self._engine.connect() as connection:
            revision: str | None = MigrationContext.configure(connection).get_current_revision()
        return revision

    def check_schema(self) -> None:
        """Raise ``SchemaOutdatedError`` unless the schema is at the newest revision."""
        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        current = self.schema_revision()
        if current != head:
            raise SchemaOutdatedError(
                "database_schema_outdated", url=self.url, current=current or "-", head=head
            )

    def check_health(self) -> None:
        """Run ``SELECT 1`` and raise ``StorageError`` if it fails."""
        with self._connection("health check") as connection:
            connection.execute(text("SELECT 1"))

    # Writes

    def store_offer(
        self, offer: Offer, received_at: datetime, *, message_id: str | None = None
    ) -> OfferOutcome:
        """Append ``offer`` to the history and make it current unless a newer one is stored.

        ``message_id`` is the offer's ``message_key``, which is computed when it is ``None``. A
        message id the member sent before is a duplicate and changes nothing, not even
        ``last_seen``. Otherwise the offer is older than a stored offer or withdrawal of its
        resource when both carry a sequence number and its number is lower, or else when its
        ``generated_at`` is earlier. An offer older than the latest withdrawal of its resource,
        or generated at the same time, is not stored at all, so it cannot bring the offer back
        nor refill a history the owner asked to delete. An offer older than the current one goes
        to the history only. The current row, its capabilities, free intervals and audience are
        replaced together in one transaction.
        """
        payload_bytes = offer.to_payload()
        payload = payload_bytes.decode("utf-8")
        message_id = message_id or message_key(offer.envelope, payload_bytes)
        key = (offer.cluster, offer.member, offer.resource)
        incoming = Stamp(_seq_of(offer.envelope), offer.generated_at)

        with self._member_transaction("store offer", offer.cluster, offer.member) as connection:
            claimed = claim_message(
                connection,
                offer.cluster,
                offer.member,
                message_id,
                seq=incoming.seq,
                kind="offer",
                received_at=received_at,
            )
            if not claimed:
                return OfferOutcome.DUPLICATE
            touch_member(connection, offer.cluster, offer.member, received_at)

            withdrawn = latest_withdrawal(connection, key)
            if withdrawn is not None and precedes(incoming, withdrawn, on_equal_time=True):
                logger.info(
                    "Ignored the offer of %s/%s/%s generated at %s: the latest withdrawal of the "
                    "resource (made at %s) is newer",
                    *key,
                    offer.generated_at.isoformat(),
                    withdrawn.time.isoformat(),
                )
                return OfferOutcome.WITHDRAWN

            connection.execute(
                insert(offer_history).values(
                    cluster=offer.cluster,
                    member=offer.member,
                    resource=offer.resource,
                    generated_at=offer.generated_at,
                    received_at=received_at,
                    payload=payload,
                    seq=incoming.seq,
                    message_id=message_id,
                )
            )
            record_capacity(connection, key, offer.generated_at, offer.free_hours)
            stored = current_stamp(connection, key)
            if stored is not None and precedes(incoming, stored, on_equal_time=False):
                logger.info(
                    "Kept the current offer of %s/%s/%s: the received one (generated at %s, "
                    "seq %s) is older than the stored one (generated at %s, seq %s)",
                    *key,
                    offer.generated_at.isoformat(),
                    incoming.seq,
                    stored.time.isoformat(),
                    stored.seq,
                )
                return OfferOutcome.HISTORY_ONLY

            replace_current(connection, offer, received_at, payload, message_id)
        return OfferOutcome.CURRENT

    def store_offers(self, batch: Sequence[OfferToStore]) -> list[OfferOutcome]:
        """Store the offers of ``batch`` in one transaction; return the outcome of each.

        The outcomes and the stored rows are those of ``store_offer`` called on each item in
        turn, apart from the ids of ``free_intervals`` rows. An item whose ``message_id`` is
        empty gets the one ``store_offer`` computes. A message id repeated inside the batch is a
        duplicate after its first occurrence. The transaction holds the write locks of every
        member of the batch. When a ``StorageError`` is raised, nothing of the batch is stored,
        so the caller can store the whole batch again. ``ValueError`` is raised, before
        anything is written, for an offer with a NaN or infinite number.
        """
        if not batch:
            return []
        prepared = prepare_offers(batch)
        members = {(entry.key[0], entry.key[1]) for entry in prepared}
        plans = []
        with self._transaction("store offers") as connection:
            lock_members(connection, members)
            for start in range(0, len(prepared), MAX_STATEMENT_BATCH):
                chunk = prepared[start : start + MAX_STATEMENT_BATCH]
                plans.append(store_offer_batch(connection, chunk))

        outcomes = []
        for plan in plans:
            for note in plan.notes:
                logger.info(note.text, *note.args)
            outcomes.extend(plan.outcomes)
        return outcomes

    def apply_withdrawal(
        self, withdrawal: Withdrawal, received_at: datetime, *, message_id: str | None = None
    ) -> WithdrawalOutcome:
        """Remove the current offer that ``withdrawal`` takes back, unless that offer is newer.

        ``message_id`` is computed as in ``store_offer`` when it is ``None``. A message id the
        member sent before is a duplicate and changes nothing. A withdrawal older than the
        current offer or than the recorded withdrawal of its resource is stale and changes
        nothing. The order is the one ``store_offer`` uses, and a withdrawal made at the same
        time as the offer wins. Otherwise it is recorded as the latest withdrawal
        of the resource, the current offer goes, and with ``delete_history`` so does the
        resource's history.
        """
        key = (withdrawal.cluster, withdrawal.member, withdrawal.resource)
        message_id = message_id or message_key(withdrawal.envelope, withdrawal.to_payload())
        incoming = Stamp(_seq_of(withdrawal.envelope), withdrawal.withdrawn_at)

        with self._member_transaction(
            "apply withdrawal", withdrawal.cluster, withdrawal.member
        ) as connection:
            claimed = claim_message(
                connection,
                withdrawal.cluster,
                withdrawal.member,
                message_id,
                seq=incoming.seq,
                kind="withdrawal",
                received_at=received_at,
            )
            if not claimed:
                return WithdrawalOutcome.DUPLICATE
            touch_member(connection, withdrawal.cluster, withdrawal.member, received_at)

            recorded = latest_withdrawal(connection, key)
            if recorded is not None and precedes(incoming, recorded, on_equal_time=False):
                return WithdrawalOutcome.STALE
            stored = current_stamp(connection, key)
            if stored is not None and precedes(incoming, stored, on_equal_time=False):
                return WithdrawalOutcome.STALE

            record_withdrawal(
                connection, withdrawal, received_at, message_id, replace=recorded is not None
            )
            removed = remove_current(connection, key)
            if withdrawal.delete_history:
                connection.execute(delete(offer_history).where(*key_condition(offer_history, key)))
                forget_capacity(connection, key)
        return WithdrawalOutcome.REMOVED if removed else WithdrawalOutcome.NO_OFFER

    def store_status(
        self, status: MemberStatus, received_at: datetime, *, message_id: str | None = None
    ) -> StatusOutcome:
        """Make ``status`` the member's current status unless the stored one is newer.

        ``message_id`` is computed as in ``store_offer`` when it is ``None``. A message id the
        member sent before is a duplicate and changes nothing. The status of a
        newer connection (a later ``connected_at``) replaces the stored one. For the same
        connection an offline status received after the online one replaces it, while anything
        received after that offline status is stale. A status of an older connection is stale.
        Every status that is not a duplicate updates ``last_seen``.
        """
        message_id = message_id or message_key(None, status.to_payload())
        with self._member_transaction("store status", status.cluster, status.member) as connection:
            claimed = claim_message(
                connection,
                status.cluster,
                status.member,
                message_id,
                seq=None,
                kind="status",
                received_at=received_at,
            )
            if not claimed:
                return StatusOutcome.DUPLICATE
            touch_member(connection, status.cluster, status.member, received_at)

            stored = stored_status(connection, status.cluster, status.member)
            if stored is not None and is_stale_status(status, stored):
                return StatusOutcome.STALE
            write_status(connection, status, received_at, message_id, replace=stored is not None)
        return StatusOutcome.CURRENT

    def register_member(self, cluster: str, member: str, registered_at: datetime) -> bool:
        """Register ``cluster/member``; return ``False`` if it was already registered."""
        with self._member_transaction("register member", cluster, member) as connection:
            return register(connection, cluster, member, registered_at)

    def is_registered(self, cluster: str, member: str) -> bool:
        """Return whether the coordinator registered ``cluster/member``."""
        with self._connection("read member registration") as connection:
            return is_registered(connection, cluster, member)

    def seen_unregistered(self, cluster: str) -> list[str]:
        """Return the members that the first registration in ``cluster`` would cut off."""
        with self._connection("read member registration") as connection:
            return seen_unregistered(connection, cluster)

    def registration_required(self, cluster: str) -> bool:
        """Return whether any member of ``cluster`` is registered, which makes it required."""
        with self._connection("read member registration") as connection:
            return has_registrations(connection, cluster)

    def prune_delivered(self, before: datetime) -> int:
        """Forget the message ids received before ``before``; return how many were forgotten.

        The ids of current offers, recorded withdrawals and member statuses are kept, because
        the broker delivers those retained messages again after a reconnect. A message whose
        id was forgotten is stored again if it ever comes back, as a new message.
        """
        with self._transaction("forget delivered message ids") as connection:
            result = connection.execute(prune_statement(before))
        return result.rowcount

    def remove_offer(self, cluster: str, member: str, resource: str) -> bool:
        """Delete the current offer of one resource, keeping its history; return if one existed."""
        with self._member_transaction("remove offer", cluster, member) as connection:
            return remove_current(connection, (cluster, member, resource))

    def delete_expired(self, now: datetime) -> int:
        """Delete the current offers whose ``expires_at`` is at or before ``now``; return how many.

        Reads hide these offers already; this only frees the rows. The history keeps them. Each
        offer is checked again under its member's write lock, so an offer that replaced the
        expired one in the meantime stays.
        """
        with self._connection("find expired offers") as connection:
            rows = connection.execute(
                select(resources.c.cluster, resources.c.member, resources.c.resource).where(
                    resources.c.expires_at <= now
                )
            ).all()

        deleted = 0
        for row in rows:
            key = (row.cluster, row.member, row.resource)
            with self._member_transaction(
                "delete expired offer", row.cluster, row.member
            ) as connection:
                still_expired = connection.execute(
                    select(
                        exists().where(
                            *key_condition(resources, key), resources.c.expires_at <= now
                        )
                    )
                ).scalar_one()
                if still_expired:
                    remove_current(connection, key)
                    deleted += 1
        return deleted

    def sweep(self, now: datetime) -> int:
        """Delete expired offers and sessions, forget old message ids; return how many offers went.

        Message ids received more than ``DELIVERED_RETENTION`` before ``now`` are forgotten as
        ``prune_delivered`` describes.
        """
        forgotten = self.prune_delivered(now - DELIVERED_RETENTION)
        if forgotten:
            logger.info(
                "Forgot %d delivered message ids older than %s", forgotten, DELIVERED_RETENTION
            )
        ended = self.delete_expired_sessions(now)
        if ended:
            logger.info("Deleted %d expired dashboard sessions", ended)
        return self.delete_expired(now)

    def maintain_history(self, now: datetime, retention_days: int) -> MaintenanceResult | None:
        """Create missing history partitions and prune history older than ``retention_days``.

        See ``server.storage.history_maintenance.maintain_history``; ``None`` means another
        process is doing it.
        """
        with self._transaction("maintain offer history") as connection:
            return maintain_history(connection, now, retention_days)

    def store_rejected(
        self, topic: str, payload: bytes, reason: str, received_at: datetime
    ) -> None:
        """Record a message ingest did not accept; the payload is cut to 64 KiB and made text."""
        with self._transaction("store rejected message") as connection:
            connection.execute(
                insert(rejected_messages).values(
                    received_at=received_at,
                    topic=topic,
                    reason=reason,
                    payload=payload_as_text(payload),
                )
            )

    # Reads

    def list_resources(
        self,
        query: ResourceQuery,
        *,
        viewer: Viewer = ANONYMOUS,
        now: datetime | None = None,
    ) -> ResourcePage:
        """Return the current offers ``viewer`` may see at ``now`` that match ``query``.

        They are ordered by ``query.sort`` (by cluster, member and resource for "member", the
        default); ``now`` defaults to the current time.
        """
        moment = now or datetime.now(UTC)
        with self._connection("list resources") as connection:
            conditions = [
                *visible_offer_conditions(viewer, moment),
                *resource_conditions(query),
                *search_conditions(query, connection.dialect.name),
            ]
            rows, total = matching_page(connection, conditions, query, moment)
            keys = [(row.cluster, row.member, row.resource) for row in rows]
            capabilities = capabilities_of(connection, keys)
            intervals = intervals_of(connection, keys)
            audiences = audience_of(connection, keys)

        clip_to = window(query)
        items = tuple(
            resource_record(row, capabilities, intervals, audiences, clip_to) for row in rows
        )
        return ResourcePage(items=items, total=total)

    def free_hours_in_window(
        self, *, viewer: Viewer, start: datetime, end: datetime, now: datetime
    ) -> FreeHoursInWindow:
        """Sum the free hours between ``start`` and ``end`` of the machines ``viewer`` may see.

        Offers whose free hours are a band are left out, as ``read_free_hours_in_window`` says.
        """
        with self._connection("sum free hours in a window") as connection:
            return read_free_hours_in_window(connection, viewer, start, end, now)

    def list_members(
        self, *, viewer: Viewer = ANONYMOUS, now: datetime | None = None
    ) -> list[MemberRecord]:
        """Return the members with a current offer ``viewer`` may see or a status, and the viewer.

        ``resources`` counts only the offers visible to ``viewer`` at ``now``, so a member whose
        offers are all meant for others and that sent no status is left out instead of showing
        up with zero. A member viewer sees statuses of its own cluster only. A member viewer is
        always listed, with zero resources and no ``first_seen``/``last_seen`` when none of its
        messages has been accepted yet.
        """
        statement = members_statement(viewer, now or datetime.now(UTC))
        with self._connection("list members") as connection:
            rows = connection.execute(statement).all()
        return [
            MemberRecord(
                cluster=row.cluster,
                member=row.member,
                resources=row.resources,
                first_seen=row.first_seen,
                last_seen=row.last_seen,
                status=row.status,
                status_since=row.status_since,
                registered=bool(row.registered),
            )
            for row in rows
        ]

    def list_rejected(self, limit: int = 50, *, viewer: Viewer = ANONYMOUS) -> list[RejectedRecord]:
        """Return the latest ``limit`` rejected messages, newest first.

        A member viewer gets only messages on topics below its own
        ``kooperant/v1/{cluster}/{member}/``; an anonymous viewer gets all of them.
        """
        statement = rejected_statement(limit, viewer)
        with self._connection("list rejected messages") as connection:
            rows = connection.execute(statement).all()
        return [
            RejectedRecord(
                id=row.id,
                received_at=row.received_at,
                topic=row.topic,
                reason=row.reason,
                payload=row.payload,
            )
            for row in rows
        ]

    def count_current_offers(self, now: datetime) -> int:
        """Return how many current offers have not expired at ``now``, of every cluster."""
        not_expired = or_(resources.c.expires_at.is_(None), resources.c.expires_at > now)
        statement = select(func.count()).select_from(resources).where(not_expired)
        with self._connection("count current offers") as connection:
            count: int = connection.execute(statement).scalar_one()
        return count

    def count_history(self, cluster: str, member: str, resource: str) -> int:
        """Return how many offers of one resource the history holds."""
        statement = (
            select(func.count())
            .select_from(offer_history)
            .where(*key_condition(offer_history, (cluster, member, resource)))
        )
        with self._connection("count history") as connection:
            count: int = connection.execute(statement).scalar_one()
        return count

    # Search pages: one offer, its history, capacity, profiles and secrets

    def get_resource(
        self, cluster: str, member: str, resource: str, *, viewer: Viewer, now: datetime
    ) -> ResourceRecord | None:
        """Return the current offer of one resource, or ``None`` when absent or hidden."""
        key = (cluster, member, resource)
        conditions = [*visible_offer_conditions(viewer, now), *key_condition(resources, key)]
        with self._connection("read resource") as connection:
            row = connection.execute(select(resources).where(*conditions)).one_or_none()
            if row is None:
                return None
            capabilities = capabilities_of(connection, [key])
            intervals = intervals_of(connection, [key])
            audiences = audience_of(connection, [key])
        return resource_record(row, capabilities, intervals, audiences, None)

    def list_history(
        self,
        cluster: str,
        member: str,
        resource: str,
        *,
        viewer: Viewer,
        now: datetime,
        limit: int = 50,
        offset: int = 0,
    ) -> HistoryPage | None:
        """Return a page of one offer's history, newest first; ``None`` if the offer is hidden."""
        with self._connection("read offer history") as connection:
            return read_history(
                connection, (cluster, member, resource), viewer, now, limit=limit, offset=offset
            )

    def cluster_capacity(
        self, *, viewer: Viewer, now: datetime, days: int = 30
    ) -> list[CapacityPoint]:
        """Return the free machine hours per day of the last ``days`` days in ``viewer``'s view."""
        with self._connection("read cluster capacity") as connection:
            return read_capacity(connection, viewer, now, now - timedelta(days=days))

    def known_capabilities(self, *, viewer: Viewer, now: datetime, limit: int = 500) -> list[str]:
        """Return the capabilities of the offers ``viewer`` may see, sorted, at most ``limit``."""
        same_resource = (
            (resources.c.cluster == resource_capabilities.c.cluster)
            & (resources.c.member == resource_capabilities.c.member)
            & (resources.c.resource == resource_capabilities.c.resource)
        )
        statement = (
            select(resource_capabilities.c.capability)
            .join(resources, same_resource)
            .where(*visible_offer_conditions(viewer, now))
            .distinct()
            .order_by(resource_capabilities.c.capability)
            .limit(limit)
        )
        with self._connection("list capabilities") as connection:
            return [row[0] for row in connection.execute(statement)]

    def list_profiles(self, *, viewer: Viewer) -> list[ProfileRecord]:
        """Return the member profiles ``viewer`` may read (its own cluster's, or all)."""
        with self._connection("list member profiles") as connection:
            rows = connection.execute(profiles_statement(viewer)).all()
        return [profile_record(row) for row in rows]

    def get_profile(self, cluster: str, member: str, *, viewer: Viewer) -> ProfileRecord | None:
        """Return the profile of ``cluster/member`` if it exists and ``viewer`` may read it."""
        statement = profiles_statement(viewer).where(
            member_profiles.c.cluster == cluster, member_profiles.c.member == member
        )
        with self._connection("read member profile") as connection:
            row = connection.execute(statement).one_or_none()
        return profile_record(row) if row is not None else None

    def secret(self, name: str) -> bytes:
        """Return the server secret ``name``, generated and stored on first use."""
        try:
            return read_or_create_secret(self._engine, name)
        except SQLAlchemyError as error:
            raise StorageError(
                "storage_failed", operation="read secret", url=self.url, detail=_first_line(error)
            ) from error

    # Paged reads of members and rejected messages (server/storage/pages.py)

    def page_members(
        self, *, viewer: Viewer = ANONYMOUS, now: datetime | None = None, limit: int, offset: int
    ) -> MemberPage:
        """Return one page of what ``list_members`` returns, with the total of that list."""
        with self._connection("list members") as connection:
            return member_page(connection, viewer, now or datetime.now(UTC), limit, offset)

    def page_rejected(self, *, viewer: Viewer = ANONYMOUS, limit: int, offset: int) -> RejectedPage:
        """Return one page of the rejected messages ``viewer`` may see, newest first, with a total.

        The visibility rule is the one of ``list_rejected``.
        """
        with self._connection("list rejected messages") as connection:
            return rejected_page(connection, viewer, limit, offset)

    # Connections

    # Dashboard accounts, sessions and member profiles (see ``server.storage.accounts``)

    def create_user(self, *, member: str | None, cluster: str, **fields: Any) -> UserRecord:
        """Insert a dashboard user; a member given must be known in ``cluster``.

        ``fields`` are the keyword arguments of ``accounts.create_user``. Raises
        ``AccountError`` for an invalid or taken user name, a bad role or an unknown member.
        """
        with self._transaction("create user") as connection:
            if member is not None:
                accounts.check_member_of_cluster(connection, cluster, member)
            return accounts.create_user(connection, member=member, cluster=cluster, **fields)

    def create_member_with_user(
        self,
        profile: MemberProfile,
        *,
        now: datetime,
        register_also: Sequence[str] = (),
        **user_fields: Any,
    ) -> UserRecord:
        """Register a new member with its profile and first member account, in one transaction.

        ``register_also`` are members of the same cluster registered with it, so that ingest
        keeps accepting them. Raises ``AccountError`` when the member is registered already or
        the user is invalid.
        """
        cluster, member = profile.cluster, profile.member
        with self._member_transaction("create member", cluster, member) as connection:
            if not register(connection, cluster, member, now):
                raise AccountError("member_exists", member=member, cluster=cluster)
            for other in register_also:
                register(connection, cluster, other, now)
            profiles.save_profile(connection, profile, now)
            return accounts.create_user(
                connection, role="member", cluster=cluster, member=member, now=now, **user_fields
            )

    def find_user(self, username: str) -> UserRecord | None:
        with self._connection("read user") as connection:
            return accounts.find_user(connection, username)

    def find_user_of_member(self, cluster: str, member: str) -> UserRecord | None:
        with self._connection("read user") as connection:
            return accounts.find_user_of_member(connection, cluster, member)

    def list_users(self, cluster: str) -> list[UserRecord]:
        with self._connection("list users") as connection:
            return accounts.list_users(connection, cluster)

    def any_user(self) -> bool:
        with self._connection("count users") as connection:
            return accounts.any_user(connection)

    def identity_has_enabled_account(self, cluster: str, member: str | None) -> bool:
        """Return whether ``cluster/member`` has an enabled dashboard account (see ``accounts``)."""
        with self._connection("read user") as connection:
            return accounts.identity_has_enabled_account(connection, cluster, member)

    def set_password(
        self, user_id: int, password_hash: str, *, must_change: bool, now: datetime
    ) -> None:
        """Replace a user's password and end all of the user's sessions."""
        with self._transaction("set password") as connection:
            accounts.set_password(
                connection, user_id, password_hash, must_change=must_change, now=now
            )

    def rehash_password(self, user_id: int, password_hash: str) -> None:
        with self._transaction("rehash password") as connection:
            accounts.rehash_password(connection, user_id, password_hash)

    def disable_user(self, user_id: int) -> None:
        """Disable a user and end all of the user's sessions."""
        with self._transaction("disable user") as connection:
            accounts.disable_user(connection, user_id)

    def known_clusters(self) -> list[str]:
        """Return the clusters that have a registered member, a member seen, or a user."""
        with self._transaction("list clusters") as connection:
            return accounts.known_clusters(connection)

    def enable_user(self, user_id: int) -> None:
        """Enable a disabled user again."""
        with self._transaction("enable user") as connection:
            accounts.enable_user(connection, user_id)

    def create_session(self, user_id: int, now: datetime) -> NewSession:
        with self._transaction("create session") as connection:
            return accounts.create_session(connection, user_id, now)

    def find_session(self, session_id: str, now: datetime) -> SessionRecord | None:
        with self._transaction("read session") as connection:
            return accounts.find_session(connection, session_id, now)

    def delete_session(self, session_id: str) -> None:
        with self._transaction("delete session") as connection:
            accounts.delete_session(connection, session_id)

    def delete_expired_sessions(self, now: datetime) -> int:
        with self._transaction("delete expired sessions") as connection:
            return accounts.delete_expired_sessions(connection, now)

    def save_profile(self, profile: MemberProfile, now: datetime) -> None:
        with self._transaction("save member profile") as connection:
            profiles.save_profile(connection, profile, now)

    def read_profile(self, cluster: str, member: str) -> MemberProfile | None:
        with self._connection("read member profile") as connection:
            return profiles.read_profile(connection, cluster, member)

    # Capacity requests (server/storage/requests.py)

    def create_request(
        self, request: CapacityRequest, *, viewer: Viewer, now: datetime
    ) -> RequestRecord:
        """Store ``request`` of ``viewer``'s member as sent, or raise a ``RequestError`` why not."""
        with self._transaction("create request") as connection:
            return requests.create_request(connection, request, viewer, now)

    def list_requests(
        self, *, viewer: Viewer, role: str, limit: int = 50, offset: int = 0
    ) -> RequestPage:
        """Return a page of the requests ``viewer``'s member sent or received, newest first."""
        with self._connection("list requests") as connection:
            return requests.list_requests(connection, viewer, role, limit, offset)

    def get_request(self, request_id: str, *, viewer: Viewer) -> RequestRecord | None:
        """Return one request with its log, or ``None`` if missing or not readable by ``viewer``."""
        with self._connection("read request") as connection:
            return requests.get_request(connection, request_id, viewer)

    def withdraw_request(self, request_id: str, *, viewer: Viewer, now: datetime) -> RequestRecord:
        """Mark the open request ``request_id`` of ``viewer``'s member withdrawn."""
        with self._transaction("withdraw request") as connection:
            return requests.withdraw_request(connection, request_id, viewer, now)

    def apply_answer(self, answer: Answer, received_at: datetime) -> AnswerOutcome:
        """Apply the owner's answer to its request; return what happened to it."""
        with self._transaction("apply answer") as connection:
            return requests.apply_answer(connection, answer, received_at)

    def expire_requests(self, now: datetime) -> list[str]:
        """Mark the open requests due at ``now`` expired; return their ids."""
        with self._transaction("expire requests") as connection:
            return requests.expire_requests(connection, now)

    def request_counts_per_month(
        self, *, viewer: Viewer, since: datetime | None = None
    ) -> list[RequestMonthCount]:
        """Return the coordinator's counts of requests per month and state."""
        with self._connection("count requests") as connection:
            return requests.request_counts_per_month(connection, viewer, since)

    @contextmanager
    def _connection(self, operation: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as connection:
                yield connection
        except SQLAlchemyError as error:
            raise StorageError(
                "storage_failed", operation=operation, url=self.url, detail=_first_line(error)
            ) from error

    @contextmanager
    def _transaction(self, operation: str) -> Iterator[Connection]:
        """Run a write transaction; on SQLite it holds the write lock from its start."""
        try:
            with self._engine.connect() as connection:
                connection.execution_options(**{WRITE_TRANSACTION_OPTION: True})
                with connection.begin():
                    yield connection
        except SQLAlchemyError as error:
            raise StorageError(
                "storage_failed", operation=operation, url=self.url, detail=_first_line(error)
            ) from error

    @contextmanager
    def _member_transaction(
        self, operation: str, cluster: str, member: str
    ) -> Iterator[Connection]:
        """Run a write transaction that holds the write lock of ``cluster/member``."""
        with self._transaction(operation) as connection:
            try:
                lock_member(connection, cluster, member)
            except SQLAlchemyError as error:
                raise StorageError(
                    "storage_failed", operation=operation, url=self.url, detail=_first_line(error)
                ) from error
            yield connection

    # Routing of capacity requests over MQTT (server/storage/request_routing.py)

    def routing_work(
        self, *, cluster: str | None, limit: int = 100, skipped: Collection[str] = ()
    ) -> RoutingWork:
        """Return the requests whose topic needs a retained message or a clear, oldest first.

        Final requests never published are marked cleared first. ``skipped`` ids are left out.
        """
        with self._transaction("read requests to route") as connection:
            request_routing.clear_unpublished_final(connection, cluster)
            return request_routing.routing_work(connection, cluster, limit, skipped)

    def mark_request_published(self, request_id: str) -> bool:
        """Record that the broker acknowledged the retained request, unless it was recorded."""
        with self._transaction("mark request published") as connection:
            return request_routing.mark_published(connection, request_id)

    def mark_request_cleared(self, request_id: str) -> bool:
        """Record that the broker acknowledged the clear of a published request's topic."""
        with self._transaction("mark request cleared") as connection:
            return request_routing.mark_cleared(connection, request_id)

    def store_answer(
        self, answer: Answer, received_at: datetime, *, message_id: str
    ) -> AnswerReceipt:
        """Apply the owner's answer unless ``message_id`` came before; return what it did."""
        with self._member_transaction("store answer", answer.cluster, answer.member) as connection:
            return request_routing.store_answer(connection, answer, received_at, message_id)

    # E-mails about capacity requests (server/storage/notifications.py)

    def pending_mails(self, limit: int, exclude: Collection[int] = ()) -> list[PendingMail]:
        """Return up to ``limit`` request log rows whose e-mail waits, except ``exclude``."""
        with self._connection("read waiting e-mails") as connection:
            return notifications.pending_mails(connection, limit, exclude)

    def skip_old_mails(self, before: datetime) -> int:
        """Mark waiting e-mails never tried and logged before ``before`` skipped; count them."""
        with self._transaction("skip old e-mails") as connection:
            return notifications.skip_old_mails(connection, before)

    def finish_mail(self, log_id: int, state: MailState, attempts: int) -> None:
        """Store the final state of the e-mail of request log row ``log_id``."""
        with self._transaction("mark e-mail") as connection:
            notifications.finish_mail(connection, log_id, state, attempts)

    def count_failed_mail(self, log_id: int, attempts: int) -> None:
        """Store the failed attempts of the e-mail of request log row ``log_id``."""
        with self._transaction("count failed e-mail") as connection:
            notifications.count_failed_attempt(connection, log_id, attempts)


def payload_as_text(payload: bytes) -> str:
    """Return ``payload`` cut to 64 KiB as text, with invalid UTF-8 and NUL bytes escaped.

    PostgreSQL ``text`` cannot contain NUL, so it becomes the four characters ``\\x00``.
    """
    cut = payload[:MAX_REJECTED_PAYLOAD_BYTES]
    return cut.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


def _alembic_config() -> Config:
    config = Config()
    location = files("server.storage").joinpath("migrations")
    config.set_main_option("script_location", str(location))
    return config


def _first_line(error: SQLAlchemyError) -> str:
    original = getattr(error, "orig", None)
    message = str(original if original is not None else error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def _seq_of(envelope: Envelope | None) -> int | None:
    return envelope.seq if envelope is not None else None
