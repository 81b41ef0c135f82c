"""The quality of state readings, and the subscription follower that delivers them.

Every value of a state variable (``CurrentState``, its ``Id`` and ``Number``) arrives as a
DataValue, from a read or from a subscription notification, and ``assess_reading`` turns it into
a ``Reading``. Each case below is counted per server in the adapter's health:

- **Bad status**: the value is ignored. The machine's state comes from its other state variables
  and is ``MachineState.UNKNOWN`` when none of them has a usable value.
- **Uncertain status**: the value is used and the reading is flagged.
- **Good status with a null value**: treated like a Bad one, the value is ignored.
- **No source timestamp**: the value is used, with the agent's receive time as its time.
- **Source timestamp more than ``max_clock_skew_seconds`` after the receive time**: the value is
  used, with the receive time.
- **Source timestamp in the past**: a source timestamp records when the value last changed, so an
  old one is normal for a value that has not changed. Only a *changed* value is checked. It cannot
  have changed before the previous reading of the same variable in this session still showed the
  old value, so a timestamp more than ``max_clock_skew_seconds`` before that reading's receive
  time is not trusted, and the receive time is used. The first reading of a session is not
  checked for the past, because a new session has no earlier reading to compare with.

A state change takes its ``since`` from the reading times of the machine's variables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from asyncua import ua
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription

# asyncua 2.1 decodes an OPC UA DateTime of 0, which means "no time", as 1601-01-01 UTC.
_NO_TIME = datetime(1601, 1, 2, tzinfo=UTC)


class ReadingIssue(StrEnum):
    """A flagged property of one reading. Each value is the name of a health counter."""

    BAD_STATUS = "bad_status"
    UNCERTAIN_STATUS = "uncertain_status"
    NULL_VALUE = "null_value"
    MISSING_SOURCE_TIMESTAMP = "missing_source_timestamp"
    FUTURE_SOURCE_TIMESTAMP = "future_source_timestamp"
    PAST_SOURCE_TIMESTAMP = "past_source_timestamp"


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of a state variable as assessed: ``value`` is None when it must not be used.

    ``time`` is the trusted source timestamp, or the receive time where there is none.
    """

    value: object
    received: datetime
    time: datetime
    issues: frozenset[ReadingIssue]


def assess_reading(
    data_value: ua.DataValue,
    received: datetime,
    max_clock_skew: timedelta,
    previous: Reading | None,
) -> Reading:
    """Assess ``data_value`` received at ``received``, given the variable's ``previous`` reading.

    ``received`` must be timezone-aware. See the module docstring for what each case does.
    """
    status = data_value.StatusCode
    if status is not None and status.is_bad():
        return Reading(None, received, received, frozenset({ReadingIssue.BAD_STATUS}))

    value = None if data_value.Value is None else data_value.Value.Value
    issues: set[ReadingIssue] = set()
    if status is not None and status.is_uncertain():
        issues.add(ReadingIssue.UNCERTAIN_STATUS)
    if value is None:
        issues.add(ReadingIssue.NULL_VALUE)
        return Reading(None, received, received, frozenset(issues))

    source_time = _aware(data_value.SourceTimestamp)
    time = received
    if source_time is None or source_time < _NO_TIME:
        issues.add(ReadingIssue.MISSING_SOURCE_TIMESTAMP)
    elif source_time > received + max_clock_skew:
        issues.add(ReadingIssue.FUTURE_SOURCE_TIMESTAMP)
    elif (
        previous is not None
        and previous.value != value
        and source_time < previous.received - max_clock_skew
    ):
        issues.add(ReadingIssue.PAST_SOURCE_TIMESTAMP)
    else:
        time = source_time
    return Reading(value, received, time, frozenset(issues))


def _aware(moment: datetime | None) -> datetime | None:
    # asyncua 2.1 returns aware UTC datetimes; a naive one from another version is UTC too.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def state_since(readings: dict[str, Reading]) -> datetime | None:
    """Return the time of the latest of a machine's readings, the ``since`` of a state change."""
    return max((reading.time for reading in readings.values()), default=None)


@dataclass(frozen=True, slots=True)
class ValueChanged:
    """A data change notification of one state variable, stamped with the receive time."""

    node: ua.NodeId
    data_value: ua.DataValue
    received: datetime


@dataclass(frozen=True, slots=True)
class ConnectionLost:
    """The client or the subscription reported that the connection ended."""

    error: Exception


Event = ValueChanged | ConnectionLost


def connection_lost_reporter(
    queue: asyncio.Queue[Event],
) -> Callable[[Exception], Coroutine[None, None, None]]:
    """Return a ``connection_lost_callback`` for asyncua that queues a ``ConnectionLost``."""

    async def report(error: Exception) -> None:
        queue.put_nowait(ConnectionLost(error))

    return report


ValueCallback = Callable[[ua.NodeId, ua.DataValue, datetime], None]


async def follow_subscription(
    subscription: Subscription,
    on_value: ValueCallback,
    clock: Callable[[], datetime],
    queue: asyncio.Queue[Event],
) -> None:
    """Pass each data change of ``subscription`` to ``on_value``, with its receive time.

    The subscription must be in asyncua's iterator mode (created without a handler), where a
    notification costs a queue entry instead of a task per monitored item. A status change,
    such as BadTimeout or BadShutdown when the subscription ends, and the end of the iteration
    queue a ``ConnectionLost`` on ``queue``, where asyncua's own connection losses arrive too.
    """
    async for event in subscription:
        if isinstance(event, DataChangeEvent):
            on_value(event.node.nodeid, event.data.monitored_item.Value, clock())
        elif isinstance(event, StatusChangeEvent):
            error = ConnectionError(f"subscription ended with status {event.notification.Status}")
            queue.put_nowait(ConnectionLost(error))
    queue.put_nowait(ConnectionLost(ConnectionError("the subscription was closed")))
