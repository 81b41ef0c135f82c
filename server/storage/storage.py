"""The aggregator's database: current offers, history, members and rejected messages.

All methods are synchronous SQLAlchemy Core calls; async callers run them with
``asyncio.to_thread``. Database errors surface as ``server.errors`` exceptions that name the URL
with its password masked.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    create_engine,
    delete,
    event,
    exists,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from kooperant.intervals import Interval, clip, total_hours
from kooperant.protocol import Offer, ResourceKind
from server.errors import DatabaseUnavailableError, SchemaOutdatedError, StorageError
from server.storage.connection_errors import unavailable_error
from server.storage.records import (
    MemberRecord,
    RejectedRecord,
    ResourcePage,
    ResourceQuery,
    ResourceRecord,
)
from server.storage.tables import (
    free_intervals,
    members,
    offer_history,
    rejected_messages,
    resource_capabilities,
    resources,
)
from server.storage.urls import mask_password, parse_database_url

logger = logging.getLogger(__name__)

MAX_REJECTED_PAYLOAD_BYTES = 64 * 1024
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)

ResourceKey = tuple[str, str, str]


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

    def migrate(self) -> None:
        """Upgrade the schema to the newest Alembic revision; a no-op when it is current."""
        try:
            with self._engine.begin() as connection:
                config = _alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
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

    def store_offer(self, offer: Offer, received_at: datetime) -> None:
        """Append ``offer`` to the history and make it current unless a newer one is stored.

        The current row, its capabilities and its free intervals are replaced together in one
        transaction. An offer with the same ``generated_at`` as the stored one replaces it, so a
        re-delivered message changes nothing.
        """
        payload = offer.to_payload().decode("utf-8")
        key = (offer.cluster, offer.member, offer.resource)

        with self._transaction("store offer") as connection:
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
            _touch_member(connection, offer.cluster, offer.member, received_at)

            stored_generated_at = connection.execute(
                select(resources.c.generated_at).where(*_key_condition(resources, key))
            ).scalar_one_or_none()
            if stored_generated_at is not None and offer.generated_at < stored_generated_at:
                logger.info(
                    "Kept the current offer of %s/%s/%s: the received one was generated at %s, "
                    "before the stored %s",
                    *key,
                    offer.generated_at.isoformat(),
                    stored_generated_at.isoformat(),
                )
                return

            _replace_current(connection, offer, received_at, payload)

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

    def list_resources(self, query: ResourceQuery) -> ResourcePage:
        """Return the current offers matching ``query``, ordered by cluster, member, resource."""
        conditions = _resource_conditions(query)
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
            capabilities = _capabilities_of(connection, keys)
            intervals = _intervals_of(connection, keys)

        window = _window(query)
        items = tuple(_resource_record(row, capabilities, intervals, window) for row in rows)
        return ResourcePage(items=items, total=total)

    def list_members(self) -> list[MemberRecord]:
        """Return every member seen, with the number of resources it currently offers."""
        counts = (
            select(
                resources.c.cluster,
                resources.c.member,
                func.count().label("resources"),
            )
            .group_by(resources.c.cluster, resources.c.member)
            .subquery()
        )
        statement = (
            select(members, func.coalesce(counts.c.resources, 0).label("resources"))
            .outerjoin(
                counts,
                (counts.c.cluster == members.c.cluster) & (counts.c.member == members.c.member),
            )
            .order_by(members.c.cluster, members.c.member)
        )
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

    def list_rejected(self, limit: int = 50) -> list[RejectedRecord]:
        """Return the latest ``limit`` rejected messages, newest first."""
        statement = (
            select(rejected_messages)
            .order_by(rejected_messages.c.received_at.desc(), rejected_messages.c.id.desc())
            .limit(limit)
        )
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
            .where(*_key_condition(offer_history, (cluster, member, resource)))
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


def _key_condition(table: Any, key: ResourceKey) -> list[ColumnElement[bool]]:
    cluster, member, resource = key
    return [table.c.cluster == cluster, table.c.member == member, table.c.resource == resource]


def _touch_member(connection: Connection, cluster: str, member: str, seen: datetime) -> None:
    condition = (members.c.cluster == cluster) & (members.c.member == member)
    last_seen = connection.execute(
        select(members.c.last_seen).where(condition)
    ).scalar_one_or_none()
    if last_seen is None:
        connection.execute(
            insert(members).values(cluster=cluster, member=member, first_seen=seen, last_seen=seen)
        )
    elif seen > last_seen:
        connection.execute(update(members).where(condition).values(last_seen=seen))


def _replace_current(
    connection: Connection, offer: Offer, received_at: datetime, payload: str
) -> None:
    key = (offer.cluster, offer.member, offer.resource)
    for table in (resources, resource_capabilities, free_intervals):
        connection.execute(delete(table).where(*_key_condition(table, key)))

    connection.execute(
        insert(resources).values(
            cluster=offer.cluster,
            member=offer.member,
            resource=offer.resource,
            kind=str(offer.kind),
            name=offer.name,
            state=str(offer.state) if offer.state is not None else None,
            state_since=offer.state_since,
            free_hours=offer.free_hours,
            horizon_start=offer.horizon.start if offer.horizon else None,
            horizon_end=offer.horizon.end if offer.horizon else None,
            generated_at=offer.generated_at,
            received_at=received_at,
            payload=payload,
        )
    )
    capability_rows = [
        {"cluster": key[0], "member": key[1], "resource": key[2], "capability": capability}
        for capability in sorted(set(offer.capabilities or ()))
    ]
    if capability_rows:
        connection.execute(insert(resource_capabilities), capability_rows)
    interval_rows = [
        {
            "cluster": key[0],
            "member": key[1],
            "resource": key[2],
            "start": interval.start,
            "end": interval.end,
        }
        for interval in offer.free_intervals or ()
    ]
    if interval_rows:
        connection.execute(insert(free_intervals), interval_rows)


def _resource_conditions(query: ResourceQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.kind is not None:
        conditions.append(resources.c.kind == query.kind)
    if query.member is not None:
        conditions.append(resources.c.member == query.member)

    same_resource_capability = [
        resource_capabilities.c.cluster == resources.c.cluster,
        resource_capabilities.c.member == resources.c.member,
        resource_capabilities.c.resource == resources.c.resource,
    ]
    for capability in query.capabilities:
        conditions.append(
            exists().where(
                *same_resource_capability, resource_capabilities.c.capability == capability
            )
        )

    if query.window_start is not None or query.window_end is not None:
        overlap = [
            free_intervals.c.cluster == resources.c.cluster,
            free_intervals.c.member == resources.c.member,
            free_intervals.c.resource == resources.c.resource,
        ]
        if query.window_start is not None:
            overlap.append(free_intervals.c.end > query.window_start)
        if query.window_end is not None:
            overlap.append(free_intervals.c.start < query.window_end)
        conditions.append(exists().where(*overlap))
    return conditions


def _capabilities_of(
    connection: Connection, keys: Sequence[ResourceKey]
) -> dict[ResourceKey, list[str]]:
    found: dict[ResourceKey, list[str]] = defaultdict(list)
    if not keys:
        return found
    table = resource_capabilities
    rows = connection.execute(
        select(table.c.cluster, table.c.member, table.c.resource, table.c.capability)
        .where(tuple_(table.c.cluster, table.c.member, table.c.resource).in_(keys))
        .order_by(table.c.capability)
    ).all()
    for row in rows:
        found[(row.cluster, row.member, row.resource)].append(row.capability)
    return found


def _intervals_of(
    connection: Connection, keys: Sequence[ResourceKey]
) -> dict[ResourceKey, list[Interval]]:
    found: dict[ResourceKey, list[Interval]] = defaultdict(list)
    if not keys:
        return found
    table = free_intervals
    rows = connection.execute(
        select(table.c.cluster, table.c.member, table.c.resource, table.c.start, table.c.end)
        .where(tuple_(table.c.cluster, table.c.member, table.c.resource).in_(keys))
        .order_by(table.c.start)
    ).all()
    for row in rows:
        found[(row.cluster, row.member, row.resource)].append(Interval(row.start, row.end))
    return found


def _window(query: ResourceQuery) -> Interval | None:
    if query.window_start is None and query.window_end is None:
        return None
    return Interval(query.window_start or _EARLIEST, query.window_end or _LATEST)


def _resource_record(
    row: Row[Any],
    capabilities: dict[ResourceKey, list[str]],
    intervals: dict[ResourceKey, list[Interval]],
    window: Interval | None,
) -> ResourceRecord:
    key = (row.cluster, row.member, row.resource)
    is_machine = row.kind == ResourceKind.MACHINE
    free = intervals.get(key, []) if is_machine else []
    free_hours = row.free_hours if is_machine else None
    if window is not None and is_machine:
        free = clip(free, window)
        free_hours = total_hours(free)

    horizon = None
    if row.horizon_start is not None and row.horizon_end is not None:
        horizon = Interval(row.horizon_start, row.horizon_end)
    amounts = json.loads(row.payload).get("amounts", [])

    return ResourceRecord(
        cluster=row.cluster,
        member=row.member,
        resource=row.resource,
        kind=row.kind,
        name=row.name,
        capabilities=tuple(capabilities.get(key, [])),
        state=row.state,
        state_since=row.state_since,
        free_hours=free_hours,
        free_intervals=tuple(free),
        horizon=horizon,
        amounts=tuple(amounts),
        generated_at=row.generated_at,
        received_at=row.received_at,
    )
