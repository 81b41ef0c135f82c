"""Upkeep of ``offer_history``: partitions ahead of time and the retention period.

Several ``server ingest`` workers and one ``server run`` may share a database. Only the sweep of
``server run`` calls ``maintain_history``, and it takes an advisory lock first, so a second
server on the same database skips the work while the first one does it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from server.storage.locking import try_lock
from server.storage.partitions import (
    MONTHS_AHEAD,
    HistoryLayout,
    Partition,
    ensure_partitions,
    history_layout,
)
from server.storage.retention import PruneCounts, prune_history

logger = logging.getLogger(__name__)

MAINTENANCE_LOCK = "offer_history maintenance"


@dataclass(frozen=True)
class MaintenanceResult:
    """Changes made by one ``maintain_history`` run; ``prune`` is ``None`` when kept forever."""

    created: tuple[Partition, ...]
    prune: PruneCounts | None


def maintain_history(
    connection: Connection, now: datetime, retention_days: int
) -> MaintenanceResult | None:
    """Create missing monthly partitions and delete history older than ``retention_days``.

    ``retention_days=0`` keeps the history forever. Returns ``None`` without changing anything
    when another process holds the maintenance lock. Run it inside a write transaction.
    """
    if not try_lock(connection, MAINTENANCE_LOCK):
        logger.debug("Skipped history maintenance: another process has its advisory lock")
        return None

    created: list[Partition] = []
    if history_layout(connection) is HistoryLayout.PARTITIONED:
        created = ensure_partitions(connection, now, MONTHS_AHEAD)
    for partition in created:
        logger.info("Created history partition %s", partition.name)

    prune = None
    if retention_days > 0:
        prune = prune_history(connection, now - timedelta(days=retention_days))
        removed = prune.dropped_partitions or prune.deleted_history_rows
        level = logging.INFO if removed or prune.deleted_capacity_days else logging.DEBUG
        logger.log(
            level,
            "Pruned history older than %s (retention %d days): %d partitions dropped, "
            "%d history rows and %d capacity days deleted",
            prune.kept_from.isoformat(),
            retention_days,
            len(prune.dropped_partitions),
            prune.deleted_history_rows,
            prune.deleted_capacity_days,
        )
    return MaintenanceResult(created=tuple(created), prune=prune)
