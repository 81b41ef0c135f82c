"""The connection state and error counters of one OPC UA server, for ``Adapter.health()``.

States: ``CONNECTING`` from the start until the first attempt ends, ``CONNECTED`` from a
successful connection (machines browsed and read) until it fails, and ``DISCONNECTED`` from a
failed attempt or a lost connection until the next success. ``since`` changes only with the
state, so a server that is down shows when it went down, not when the last retry failed.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from adapters.base import ConnectionState, SourceHealth
from adapters.opcua.readings import Reading, ReadingIssue

CONNECT_FAILURES = "connect_failures"
CONNECTIONS_LOST = "connections_lost"
KEEPALIVE_TIMEOUTS = "keepalive_timeouts"
UNEXPECTED_ERRORS = "unexpected_errors"

COUNTER_NAMES = (
    CONNECT_FAILURES,
    CONNECTIONS_LOST,
    KEEPALIVE_TIMEOUTS,
    UNEXPECTED_ERRORS,
    *(issue.value for issue in ReadingIssue),
)


class ServerHealth:
    """Health of one server, updated by the adapter task and read by ``health()``."""

    def __init__(self, source: str, now: datetime) -> None:
        self.source = source
        self.state = ConnectionState.CONNECTING
        self.since = now
        self.reconnects = 0
        self.last_data: datetime | None = None
        self.detail: str | None = None
        self._counters: Counter[str] = Counter()
        self._was_connected = False

    def record_connected(self, now: datetime) -> None:
        """Record a successful connection, which is a reconnect when an earlier one existed."""
        if self._was_connected:
            self.reconnects += 1
        self._was_connected = True
        self._set_state(ConnectionState.CONNECTED, now)

    def record_failure(self, now: datetime, detail: str, *counters: str) -> None:
        """Record a failed attempt or a lost connection under ``counters``, with its message."""
        for counter in counters:
            self._counters[counter] += 1
        self.detail = detail
        self._set_state(ConnectionState.DISCONNECTED, now)

    def record_reading(self, reading: Reading) -> None:
        """Count the reading's issues and take its receive time as the time of the last data."""
        for issue in reading.issues:
            self._counters[issue.value] += 1
        self.last_data = reading.received

    def snapshot(self) -> SourceHealth:
        """Return the health as a ``SourceHealth``, with every counter present."""
        return SourceHealth(
            source=self.source,
            state=self.state,
            since=self.since,
            reconnects=self.reconnects,
            last_data=self.last_data,
            errors={name: self._counters[name] for name in COUNTER_NAMES},
            detail=self.detail,
        )

    def _set_state(self, state: ConnectionState, now: datetime) -> None:
        if state is not self.state:
            self.state = state
            self.since = now
