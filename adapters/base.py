"""The adapter interface: what a connector implements and what it reports.

Life cycle, driven by the agent for every adapter instance:

1. **Validate**: the agent builds ``settings_model`` from the adapter's section of the config.
   Invalid settings stop the agent before anything starts. ``__init__`` must not do I/O.
2. **Start**: ``await start()`` begins following the source, usually in background tasks. A source
   that is unreachable at start is not an error: ``start`` returns and the adapter keeps retrying
   with bounded backoff, so the other adapters run meanwhile.
3. **Collect**: ``collect()`` returns a snapshot of what the adapter currently knows. It is called
   often, must be cheap and must not block on I/O. When something changed that should be published
   soon (a machine changed state, a new export arrived), the adapter calls
   ``context.notify_changed()``.
4. **Stop**: ``await stop()`` releases connections and tasks; the agent waits at most
   ``STOP_TIMEOUT_SECONDS`` for it.

Settings models forbid unknown keys, so a misspelt key is reported instead of ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from adapters.exports.progress import ReadProgressCallback
from kooperant.intervals import Interval
from kooperant.protocol import Amount, MachineState, Price, ResourceKind

STOP_TIMEOUT_SECONDS = 10.0
RECANCEL_SECONDS = 0.5


class AdapterSettings(BaseModel):
    """Base of every adapter's settings model: frozen, unknown keys rejected."""

    # Infinity and NaN pass every bound check and then fail deep inside timers and libraries.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """The current state of one machine as its controller reports it."""

    resource: str
    state: MachineState
    since: datetime
    name: str | None = None
    identification: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkOrder:
    """One scheduled order that keeps a machine busy from ``interval.start`` to ``interval.end``."""

    order_id: str
    interval: Interval


@dataclass(frozen=True, slots=True)
class ScheduledWork:
    """The orders scheduled on one machine, as read from a production plan."""

    resource: str
    orders: tuple[WorkOrder, ...]


@dataclass(frozen=True, slots=True)
class ResourceAmounts:
    """Measured free amounts of a non-machine resource, for example a host's disk and memory."""

    resource: str
    kind: ResourceKind
    amounts: tuple[Amount, ...]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SupplyStock:
    """The stock of one supply (material or part) that a member may sell, from an ERP system.

    ``price``, ``suppliers`` and ``customers`` are commercial data, which the owner's policy lets
    out only when a rule lists them by name.
    """

    resource: str
    name: str | None
    amounts: tuple[Amount, ...]
    price: Price | None = None
    suppliers: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()


Observation = MachineStatus | ScheduledWork | ResourceAmounts | SupplyStock


class ConnectionState(StrEnum):
    """The state of an adapter's connection to one of its sources."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """The health of one source an adapter follows (an OPC UA server, a watched file), for status.

    ``source`` names it without credentials, ``since`` is when ``state`` began, ``reconnects``
    counts connections made again after a loss, ``last_data`` is when the source last delivered a
    value and ``errors`` counts failures and flagged readings by name. ``detail`` is the last error,
    in English. ``detail_code`` and ``detail_values`` identify common errors, such as a missing
    export file, so that the command line can word them in the user's language
    (``agent/source_details.py`` lists the codes). ``stale`` is set when the data in use is older
    than the adapter's configured limit.
    """

    source: str
    state: ConnectionState
    since: datetime
    reconnects: int = 0
    last_data: datetime | None = None
    errors: Mapping[str, int] = field(default_factory=dict)
    detail: str | None = None
    stale: bool = False
    detail_code: str | None = None
    detail_values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """Context the agent gives each adapter: member, time zone, folder, clock and change signal."""

    member: str
    timezone: ZoneInfo
    config_dir: Path
    notify_changed: Callable[[], None]
    clock: Callable[[], datetime]
    read_progress: ReadProgressCallback | None = None
    """Callback for how much of a file an export adapter has read, for a terminal display.

    It is called from the parser's worker thread. None in ``kooperant agent run``, where export
    adapters log the progress of a long parse instead.
    """


SettingsT = TypeVar("SettingsT", bound=AdapterSettings)


class Adapter(ABC, Generic[SettingsT]):
    """Base class of every adapter; see the module docstring for the life cycle."""

    settings_model: ClassVar[type[AdapterSettings]]

    def __init__(self, name: str, settings: SettingsT, context: AdapterContext) -> None:
        self.name = name
        self.settings = settings
        self.context = context

    @abstractmethod
    async def start(self) -> None:
        """Begin following the source; return promptly even if the source is unreachable."""

    @abstractmethod
    def collect(self) -> list[Observation]:
        """Return a snapshot of the current observations without blocking."""

    @abstractmethod
    async def stop(self) -> None:
        """Release connections and background tasks."""

    def health(self) -> list[SourceHealth]:
        """Return the health of each source this adapter follows; cheap, without I/O.

        Adapters without a connection to watch return an empty list, the default.
        """
        return []

    def withheld_kinds(self) -> Mapping[ResourceKind, str]:
        """Return the kinds whose offers must not be published now, each with the reason.

        An adapter whose data bounds other offers uses this while it has no valid data: a
        production plan that was never read would make every machine look free, so the schedule
        adapter withholds machine offers until it has read its export once.
        """
        return {}

    def resolve_path(self, path: Path) -> Path:
        """Return ``path`` relative to the directory of the agent config, unless absolute."""
        return path if path.is_absolute() else self.context.config_dir / path


async def cancel_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel an adapter's background ``task`` and wait until it has ended, for use in ``stop``.

    ``None`` (a task never started or already stopped) is ignored. An error that ended the task
    before the cancel is raised here. The cancel is repeated until the task ends, because on
    Python 3.11 ``asyncio.wait_for`` (used inside client libraries such as asyncua) drops a
    cancellation that arrives in the loop step where its inner wait completes.
    """
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)
    with contextlib.suppress(asyncio.CancelledError):
        await task
