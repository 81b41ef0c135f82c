"""The aggregator's database: current offers, history, withdrawals, members, rejected messages.

All methods are synchronous SQLAlchemy Core calls; async callers run them with
``asyncio.to_thread``. Database errors surface as ``server.errors`` exceptions that name the URL
with its password masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from kooperant.protocol import Offer, Withdrawal
from server.errors import DatabaseUnavailableError, SchemaOutdatedError, StorageError
from server.storage.connection_errors import unavailable_error
from server.storage.current import (
    ResourceKey,
    key_condition,
    latest_withdrawal,
    record_withdrawal,
    remove_current,
    replace_current,
    touch_member,
)
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
    MemberRecord,
    OfferOutcome,
    RejectedRecord,
    ResourcePage,
    ResourceQuery,
    WithdrawalOutcome,
)
from server.storage.tables import offer_history, rejected_messages, resources
from server.storage.urls import mask_password, parse_database_url
from server.storage.visibility import ANONYMOUS, Viewer, visible_offer_conditions

logger = logging.getLogger(__name__)

MAX_REJECTED_PAYLOAD_BYTES = 64 * 1024
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


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
            event.listen(self._engine, "connect", _configure_sqlite_connection)
        else:
            self._engine = create_engine(parsed, pool_pre_ping=True)
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

    def store_offer(self, offer: Offer, received_at: datetime) -> OfferOutcome:
        """Append ``offer`` to the history and make it current unless a newer one is stored.

        The current row, its capabilities, free intervals and audience are replaced together in
        one transaction. An offer with the same ``generated_at`` as the stored one replaces it,
        so a re-delivered message changes nothing. An offer generated at or before the latest
        withdrawal of its resource is not stored at all, so it cannot bring the offer back nor
        refill a history the owner asked to delete.
        """
        payload = offer.to_payload().decode("utf-8")
        key = (offer.cluster, offer.member, offer.resource)

        with self._transaction("store offer") as connection:
            withdrawn_at = latest_withdrawal(connection, key)
            if withdrawn_at is not None and offer.generated_at <= withdrawn_at:
                logger.info(
                    "Ignored the offer of %s/%s/%s generated at %s: the resource was withdrawn "
                    "at %s",
                    *key,
                    offer.generated_at.isoformat(),
                    withdrawn_at.isoformat(),
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
                )
            )
            touch_member(connection, offer.cluster, offer.member, received_at)

            stored_generated_at = _current_generated_at(connection, key)
            if stored_generated_at is not None and offer.generated_at < stored_generated_at:
                logger.info(
                    "Kept the current offer of %s/%s/%s: the received one was generated at %s, "
                    "before the stored %s",
                    *key,
                    offer.generated_at.isoformat(),
                    stored_generated_at.isoformat(),
                )
                return OfferOutcome.HISTORY_ONLY

            replace_current(connection, offer, received_at, payload)
        return OfferOutcome.CURRENT

    def apply_withdrawal(self, withdrawal: Withdrawal, received_at: datetime) -> WithdrawalOutcome:
        """Remove the current offer that ``withdrawal`` takes back, unless that offer is newer.

        A withdrawal whose ``withdrawn_at`` is before the stored offer's ``generated_at`` is
        stale and changes nothing. Otherwise it is recorded as the latest withdrawal of the
        resource, the current offer goes, and with ``delete_history`` so does the resource's
        history.
        """
        key = (withdrawal.cluster, withdrawal.member, withdrawal.resource)
        with self._transaction("apply withdrawal") as connection:
            stored_generated_at = _current_generated_at(connection, key)
            if stored_generated_at is not None and stored_generated_at > withdrawal.withdrawn_at:
                return WithdrawalOutcome.STALE

            record_withdrawal(connection, withdrawal, received_at)
            removed = remove_current(connection, key)
            if withdrawal.delete_history:
                connection.execute(delete(offer_history).where(*key_condition(offer_history, key)))
        return WithdrawalOutcome.REMOVED if removed else WithdrawalOutcome.NO_OFFER

    def remove_offer(self, cluster: str, member: str, resource: str) -> bool:
        """Delete the current offer of one resource, keeping its history; return if one existed."""
        with self._transaction("remove offer") as connection:
            return remove_current(connection, (cluster, member, resource))

    def delete_expired(self, now: datetime) -> int:
        """Delete the current offers whose ``expires_at`` is at or before ``now``; return how many.

        Reads hide these offers already; this only frees the rows. The history keeps them.
        """
        with self._transaction("delete expired offers") as connection:
            rows = connection.execute(
                select(resources.c.cluster, resources.c.member, resources.c.resource).where(
                    resources.c.expires_at <= now
                )
            ).all()
            for row in rows:
                remove_current(connection, (row.cluster, row.member, row.resource))
        return len(rows)

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

        They are ordered by cluster, member and resource; ``now`` defaults to the current time.
        """
        conditions = [
            *visible_offer_conditions(viewer, now or datetime.now(UTC)),
            *resource_conditions(query),
        ]
        with self._connection("list resources") as connection:
            total = connection.execute(
                select(func.count()).select_from(resources).where(*conditions)
            ).scalar_one()
            rows = connection.execute(
                select(resources)
                .where(*conditions)
                .order_by(resources.c.cluster, resources.c.member, resources.c.resource)
                .limit(query.limit)
                .offset(query.offset)
            ).all()
            keys = [(row.cluster, row.member, row.resource) for row in rows]
            capabilities = capabilities_of(connection, keys)
            intervals = intervals_of(connection, keys)
            audiences = audience_of(connection, keys)

        clip_to = window(query)
        items = tuple(
            resource_record(row, capabilities, intervals, audiences, clip_to) for row in rows
        )
        return ResourcePage(items=items, total=total)

    def list_members(
        self, *, viewer: Viewer = ANONYMOUS, now: datetime | None = None
    ) -> list[MemberRecord]:
        """Return the members with a current offer ``viewer`` may see, and the viewer itself.

        ``resources`` counts only the offers visible to ``viewer`` at ``now``, so a member whose
        offers are all meant for others is left out instead of showing up with zero. A member
        viewer is always listed, with zero resources and no ``first_seen``/``last_seen`` when
        none of its offers has been accepted yet.
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

    # Connections

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
        try:
            with self._engine.begin() as connection:
                yield connection
        except SQLAlchemyError as error:
            raise StorageError(
                "storage_failed", operation=operation, url=self.url, detail=_first_line(error)
            ) from error


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


def _configure_sqlite_connection(dbapi_connection: Any, _record: object) -> None:
    # WAL lets the API read while ingest writes in another thread.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _first_line(error: SQLAlchemyError) -> str:
    original = getattr(error, "orig", None)
    message = str(original if original is not None else error).strip()
    return message.splitlines()[0] if message else type(error).__name__


def _current_generated_at(connection: Connection, key: ResourceKey) -> datetime | None:
    generated_at: datetime | None = connection.execute(
        select(resources.c.generated_at).where(*key_condition(resources, key))
    ).scalar_one_or_none()
    return generated_at
