"""The running agent's view of the stored requests: what is held, and counts for the status.

``RequestReader`` reads table ``requests`` again whenever SQLite's ``data_version`` shows that
another connection committed, as ``WithdrawalReader`` does for withdrawals, so ``accept`` and
``release`` in another process change the offers within a poll. A failed read is logged once, and
the requests read before stay in force.
"""

from __future__ import annotations

import logging
from datetime import datetime

from agent.errors import AuditLogError
from agent.holds import Hold, current_holds
from agent.requests import HoldEnd, RequestState, RequestStateError, RequestStore, StoredRequest
from agent.status import RequestCounts
from agent.table_watch import TableWatch

logger = logging.getLogger(__name__)


class RequestReader:
    """The stored requests as last read from ``store``."""

    def __init__(self, store: RequestStore) -> None:
        self._store = store
        self.current: tuple[StoredRequest, ...] = ()
        self._watch = TableWatch(store.data_version, "the stored requests")

    def poll(self, now: datetime) -> bool:
        """Read the table if another connection committed since the last poll.

        Returns whether the holds at ``now`` changed.
        """
        if not self._watch.changed():
            return False
        before = self.holds(now)
        self.read()
        return self.holds(now) != before

    def read(self) -> None:
        try:
            stored = tuple(self._store.read())
        except AuditLogError as error:
            self._watch.failed(error)
            return
        self._watch.succeeded()
        self.current = stored

    def holds(self, now: datetime) -> tuple[Hold, ...]:
        """Return the holds in force at ``now``."""
        return current_holds(self.current, now)

    def counts(self, now: datetime, invalid: int) -> RequestCounts:
        """Return the open and held requests at ``now``, with ``invalid`` dropped ones."""
        open_count = sum(
            1 for item in self.current if item.state is RequestState.OPEN and not item.expired(now)
        )
        return RequestCounts(open_count, len(self.holds(now)), invalid)

    def end_scheduled(self, request_ids: tuple[str, ...], now: datetime) -> None:
        """Record that the ERP schedule now covers the slots of ``request_ids``."""
        for request_id in request_ids:
            try:
                self._store.end_hold(request_id, HoldEnd.SCHEDULED, now)
            except RequestStateError:
                # The owner released it in the meantime, which ends it just as well.
                continue
            except AuditLogError as error:
                logger.error("Cannot end the hold of request %s: %s", request_id, error)
                continue
            logger.info("The ERP schedule covers the slot of request %s; its hold ends", request_id)
        self.read()
