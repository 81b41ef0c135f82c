"""The OPC UA adapter: follows the MachineryItemState of every machine on one server.

A background task connects, browses the ``Machines`` folder, reads each machine's identification
and follows its ``CurrentState`` through a subscription, or by polling where the server rejects
the subscription. When the connection fails or drops, the task reconnects with bounded
exponential backoff and browses again, so namespace indexes and machines are read anew.

Machines of a lost server keep their last state while the first reconnect attempt runs. When that
attempt fails, every machine becomes ``MachineState.UNKNOWN``, with ``since`` set to the time of
that failure. A connection that stops answering without closing is detected within
``keepalive_seconds`` (see ``keepalive``) and replaced by a new client. ``readings`` decides what
Bad, Uncertain, null and badly timestamped values do to a machine's state, and ``health`` keeps
the connection state and counters that ``health()`` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from adapters.base import (
    Adapter,
    AdapterContext,
    MachineStatus,
    Observation,
    SourceHealth,
    cancel_task,
)
from adapters.errors import SourceUnavailableError
from adapters.opcua import health
from adapters.opcua.asyncua_logs import demote_gone_connection_records
from adapters.opcua.connection import disconnect, make_client
from adapters.opcua.keepalive import KeepAliveTimeoutError, subscription_parameters
from adapters.opcua.machinery import (
    MachineNodes,
    ServerConfigurationError,
    StateResolver,
    browse_machines,
    machinery_namespace_index,
)
from adapters.opcua.readings import (
    ConnectionLost,
    Event,
    Notifications,
    Reading,
    assess_reading,
    connection_lost_reporter,
    state_since,
)
from adapters.opcua.settings import OpcUaSettings, default_resource_id
from kooperant.backoff import Backoff, BackoffPolicy
from kooperant.protocol import MachineState

_LOGGER = logging.getLogger(__name__)

_CREDENTIAL_ERRORS = (
    StatusCodes.BadUserAccessDenied,
    StatusCodes.BadIdentityTokenInvalid,
    StatusCodes.BadIdentityTokenRejected,
)


@dataclass(slots=True)
class _TrackedMachine:
    resource: str
    nodes: MachineNodes
    # The last reading of each state variable in this session, keyed like ``nodes.values``.
    readings: dict[str, Reading] = field(default_factory=dict)


class OpcUaAdapter(Adapter[OpcUaSettings]):
    """Reports the MachineryItemState of the machines of one OPC 40001 server."""

    settings_model = OpcUaSettings

    def __init__(self, name: str, settings: OpcUaSettings, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        self._statuses: dict[str, MachineStatus] = {}
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._failures_in_row = 0
        self._lost_after_connection = False
        self._last_logged_error = ""
        self._health = health.ServerHealth(settings.url, context.clock())
        self._max_clock_skew = timedelta(seconds=settings.max_clock_skew_seconds)
        # Connection attempts that failed since start, for diagnostics.
        self.failed_attempts = 0

    async def start(self) -> None:
        """Start the background task that connects and follows the machines."""
        demote_gone_connection_records()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"opcua adapter {self.name}")

    def collect(self) -> list[Observation]:
        """Return the last known status of every machine, sorted by resource id."""
        return [self._statuses[resource] for resource in sorted(self._statuses)]

    async def stop(self) -> None:
        """Cancel the background task, which disconnects within ``timeout_seconds``."""
        task, self._task = self._task, None
        await cancel_task(task)

    def health(self) -> list[SourceHealth]:
        """Return the connection state, reconnect count, last data time and error counters."""
        return [self._health.snapshot()]

    @property
    def connected(self) -> bool:
        """True while the adapter is connected and following the server."""
        return self._connected

    async def _run(self) -> None:
        # Each delay is 1 to 1.5 times its doubling base, capped at reconnect_max_seconds.
        policy = BackoffPolicy(
            minimum=self.settings.reconnect_min_seconds,
            maximum=self.settings.reconnect_max_seconds,
            jitter=0.5,
        )
        backoff = Backoff(policy)
        while True:
            events: asyncio.Queue[Event] = asyncio.Queue()
            # A new client for every attempt, so nothing of a lost session is reused.
            client = make_client(self.settings, connection_lost_reporter(events))
            try:
                delay = await self._attempt(client, events, backoff)
            finally:
                # The failure is recorded before this, because closing a session over a
                # silent link takes up to timeout_seconds.
                await disconnect(client, self.settings)
            await asyncio.sleep(delay)

    async def _attempt(
        self, client: Client, events: asyncio.Queue[Event], backoff: Backoff
    ) -> float:
        """Follow the server with ``client`` until it fails; return the delay before a retry."""
        try:
            await self._follow_server(client, events, backoff)
        except SourceUnavailableError as error:
            delay = backoff.next_delay()
            self._record_failure(error, delay)
            return delay
        except Exception as error:
            # A bug in this adapter or in asyncua is logged with its traceback and retried,
            # so that one faulty server does not stop the agent.
            delay = backoff.next_delay()
            counters = [health.UNEXPECTED_ERRORS]
            if self._connected:
                counters.append(health.CONNECTIONS_LOST)
            self._health.record_failure(self.context.clock(), repr(error), *counters)
            self._connected = False
            self.failed_attempts += 1
            _LOGGER.exception(
                "OPC UA adapter %s failed unexpectedly; retrying in %.1f s", self.name, delay
            )
            return delay
        raise AssertionError("_follow_server returned without an error")

    async def _follow_server(
        self, client: Client, events: asyncio.Queue[Event], backoff: Backoff
    ) -> None:
        """Connect, browse and follow state changes until the connection fails."""
        url = self.settings.url
        try:
            await client.connect()
            machinery = await machinery_namespace_index(client, url)
            tracked = self._track(await browse_machines(client, machinery, url))
            resolver = StateResolver(client)
            await self._read_states(client, tracked, resolver)
            self._record_success(len(tracked))
            backoff.reset()

            if await self._subscribe(client, tracked, events):
                await self._follow_notifications(tracked, resolver, events)
            else:
                await self._poll(client, tracked, resolver, events)
        except UaStatusCodeError as error:
            if error.code in _CREDENTIAL_ERRORS:
                raise ServerConfigurationError(
                    f"OPC UA server {url} rejected the credentials: {error}; check username and "
                    "password in the adapter settings"
                ) from error
            raise SourceUnavailableError(f"OPC UA server {url} failed: {error}") from error
        except (OSError, TimeoutError, UaError) as error:
            if self._connected and isinstance(error, TimeoutError):
                raise self._silence_error(error) from error
            raise SourceUnavailableError(f"cannot reach OPC UA server {url}: {error!r}") from error

    def _track(self, machines: list[MachineNodes]) -> list[_TrackedMachine]:
        """Assign a resource id to each machine and forget machines the server no longer has."""
        tracked: dict[str, _TrackedMachine] = {}
        for machine in machines:
            resource = self.settings.machines.get(machine.browse_name) or default_resource_id(
                machine.browse_name
            )
            if resource is None:
                _LOGGER.error(
                    "%s: machine %r has no letter or digit to build a resource id from; "
                    "map it under machines in the adapter settings",
                    self.settings.url,
                    machine.browse_name,
                )
            elif resource in tracked:
                _LOGGER.error(
                    "%s: machines %r and %r both map to resource %r; the second is ignored. "
                    "Map one of them under machines in the adapter settings",
                    self.settings.url,
                    tracked[resource].nodes.browse_name,
                    machine.browse_name,
                    resource,
                )
            else:
                tracked[resource] = _TrackedMachine(resource, machine)

        browse_names = {machine.browse_name for machine in machines}
        for browse_name in sorted(set(self.settings.machines) - browse_names):
            _LOGGER.warning(
                "%s: machines.%s in the adapter settings matches no machine; found: %s",
                self.settings.url,
                browse_name,
                ", ".join(sorted(browse_names)) or "none",
            )

        removed = set(self._statuses) - set(tracked)
        for resource in removed:
            del self._statuses[resource]
        if removed:
            _LOGGER.info("%s: machines removed: %s", self.settings.url, ", ".join(sorted(removed)))
            self.context.notify_changed()
        return list(tracked.values())

    async def _read_states(
        self, client: Client, tracked: list[_TrackedMachine], resolver: StateResolver
    ) -> None:
        reads = [
            (machine, role, node)
            for machine in tracked
            for role, node in machine.nodes.state_nodes().items()
        ]
        data_values = await client.read_attributes([node for _, _, node in reads])
        received = self.context.clock()
        for (machine, role, _), data_value in zip(reads, data_values, strict=True):
            self._take_reading(machine, role, data_value, received)
        for machine in tracked:
            await self._update_state(machine, resolver)

    def _take_reading(
        self, machine: _TrackedMachine, role: str, data_value: ua.DataValue, received: datetime
    ) -> None:
        """Assess one value of a state variable, count its issues and keep it for the state."""
        reading = assess_reading(
            data_value, received, self._max_clock_skew, machine.readings.get(role)
        )
        if reading.issues:
            _LOGGER.debug(
                "%s: %s %s reading flagged: %s",
                self.settings.url,
                machine.resource,
                role,
                ", ".join(sorted(reading.issues)),
            )
        self._health.record_reading(reading)
        machine.readings[role] = reading
        machine.nodes.values[role] = reading.value

    async def _update_state(self, machine: _TrackedMachine, resolver: StateResolver) -> None:
        state = await resolver.resolve(machine.nodes.values)
        self._set_state(machine, state, state_since(machine.readings) or self.context.clock())

    async def _subscribe(
        self, client: Client, tracked: list[_TrackedMachine], events: asyncio.Queue[Event]
    ) -> bool:
        """Subscribe to the state variables, or return False when the server rejects that."""
        nodes = [node for machine in tracked for node in machine.nodes.state_nodes().values()]
        if not nodes:
            return True
        try:
            subscription = await client.create_subscription(
                subscription_parameters(self.settings), Notifications(events, self.context.clock)
            )
            results = await subscription.subscribe_data_change(
                nodes, sampling_interval=ua.Double(self.settings.sampling_interval_ms)
            )
        except UaStatusCodeError as error:
            self._log_polling(repr(error))
            return False

        rejected = [result for result in results if isinstance(result, ua.StatusCode)]
        if rejected:
            self._log_polling(f"{len(rejected)} monitored items rejected, first {rejected[0]}")
            with contextlib.suppress(UaStatusCodeError):
                await subscription.delete()
            return False
        return True

    def _log_polling(self, reason: str) -> None:
        _LOGGER.warning(
            "%s: subscription failed (%s); reading states every %s s instead",
            self.settings.url,
            reason,
            self.settings.poll_interval_seconds,
        )

    async def _poll(
        self,
        client: Client,
        tracked: list[_TrackedMachine],
        resolver: StateResolver,
        events: asyncio.Queue[Event],
    ) -> None:
        """Read the states every poll interval until the client reports a lost connection."""
        while True:
            try:
                async with asyncio.timeout(self.settings.poll_interval_seconds):
                    event = await events.get()
            except TimeoutError:
                await self._read_states(client, tracked, resolver)
                continue
            if isinstance(event, ConnectionLost):
                raise self._lost_error(event.error) from event.error

    async def _follow_notifications(
        self,
        tracked: list[_TrackedMachine],
        resolver: StateResolver,
        events: asyncio.Queue[Event],
    ) -> None:
        roles = {
            node.nodeid: (machine, role)
            for machine in tracked
            for role, node in machine.nodes.state_nodes().items()
        }
        while True:
            event = await events.get()
            if isinstance(event, ConnectionLost):
                raise self._lost_error(event.error) from event.error
            if event.node not in roles:
                continue
            machine, role = roles[event.node]
            self._take_reading(machine, role, event.data_value, event.received)
            await self._update_state(machine, resolver)

    def _lost_error(self, error: Exception) -> SourceUnavailableError:
        """Return the error for a connection loss that asyncua or the subscription reported."""
        if isinstance(error, TimeoutError):
            # asyncua's watchdog read of the server state timed out.
            return self._silence_error(error)
        return SourceUnavailableError(
            f"lost connection to OPC UA server {self.settings.url}: {error!r}"
        )

    def _silence_error(self, error: TimeoutError) -> KeepAliveTimeoutError:
        return KeepAliveTimeoutError(
            f"OPC UA server {self.settings.url} stopped answering without closing the "
            f"connection ({error!r}; keepalive_seconds is {self.settings.keepalive_seconds})"
        )

    def _set_state(self, machine: _TrackedMachine, state: MachineState, since: datetime) -> None:
        """Store the machine's status. A state change sets ``since`` and notifies the agent."""
        previous = self._statuses.get(machine.resource)
        changed = previous is None or previous.state != state
        if previous is not None:
            # A state cannot begin before the previous one was stored, whatever the timestamps.
            since = previous.since if not changed else max(since, previous.since)
        self._statuses[machine.resource] = MachineStatus(
            resource=machine.resource,
            state=state,
            since=since,
            name=machine.nodes.display_name,
            identification=dict(machine.nodes.identification),
        )
        if changed:
            _LOGGER.debug("%s: %s is %s", self.settings.url, machine.resource, state.value)
            self.context.notify_changed()

    def _record_success(self, machine_count: int) -> None:
        _LOGGER.info(
            "connected to OPC UA server %s: %d machines, %d failed attempts before",
            self.settings.url,
            machine_count,
            self._failures_in_row,
        )
        self._connected = True
        self._health.record_connected(self.context.clock())
        self._failures_in_row = 0
        self._lost_after_connection = False
        self._last_logged_error = ""

    def _record_failure(self, error: SourceUnavailableError, delay: float) -> None:
        """Log the first failure of a series, a lost connection or a new configuration error."""
        self.failed_attempts += 1
        self._failures_in_row += 1
        message = str(error)
        self._health.record_failure(self.context.clock(), message, *self._failure_counters(error))

        if self._connected:
            self._connected = False
            self._lost_after_connection = True
            _LOGGER.warning("%s; reconnecting in %.1f s", message, delay)
        elif isinstance(error, ServerConfigurationError):
            if message != self._last_logged_error:
                _LOGGER.error("%s; retrying in %.1f s", message, delay)
        elif self._failures_in_row == 1:
            _LOGGER.warning("%s, retrying in %.1f s", message, delay)
        else:
            _LOGGER.debug(
                "%s (failure %d), retrying in %.1f s", message, self._failures_in_row, delay
            )
        self._last_logged_error = message

        if self._lost_after_connection and self._failures_in_row == 2:
            self._mark_unknown()

    def _failure_counters(self, error: SourceUnavailableError) -> list[str]:
        if not self._connected:
            return [health.CONNECT_FAILURES]
        if isinstance(error, KeepAliveTimeoutError):
            return [health.CONNECTIONS_LOST, health.KEEPALIVE_TIMEOUTS]
        return [health.CONNECTIONS_LOST]

    def _mark_unknown(self) -> None:
        """Mark every machine UNKNOWN: the reconnect after a lost connection failed."""
        now = self.context.clock()
        changed = False
        for resource, status in self._statuses.items():
            if status.state is not MachineState.UNKNOWN:
                self._statuses[resource] = MachineStatus(
                    resource=status.resource,
                    state=MachineState.UNKNOWN,
                    since=now,
                    name=status.name,
                    identification=status.identification,
                )
                changed = True
        if changed:
            self.context.notify_changed()
