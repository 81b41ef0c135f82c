"""The OPC UA adapter: follows the state of every machine on one server.

A background task connects, finds the machines (``adapters.opcua.models.discovery``), reads each
machine's identification and follows its state variables through a subscription. Where the server
rejects the subscription, or some of its monitored items, the adapter polls those variables
instead. Reads and monitored-item creation stay within the server's operation limits (see
``limits`` and ``monitoring``). When the connection fails or drops, the task reconnects with
bounded exponential backoff and browses again, so namespace indexes and machines are read anew.

Machines of a lost server keep their last state while the first reconnect attempt runs. When that
attempt fails, every machine becomes ``MachineState.UNKNOWN``, with ``since`` set to the time of
that failure. A connection that stops responding without closing is detected within
``keepalive_seconds`` (see ``keepalive``) and replaced by a new client. ``readings`` decides what
Bad, Uncertain, null and badly timestamped values do to a machine's state, and ``health`` keeps
the connection state and counters that ``health()`` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import Subscription
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from adapters.base import (
    Adapter,
    AdapterContext,
    Observation,
    SourceHealth,
    cancel_task,
)
from adapters.errors import SourceUnavailableError
from adapters.opcua.asyncua_logs import demote_gone_connection_records
from adapters.opcua.connection import disconnect, make_client
from adapters.opcua.health import (
    CONNECT_FAILURES,
    CONNECTIONS_LOST,
    KEEPALIVE_TIMEOUTS,
    UNEXPECTED_ERRORS,
    ServerHealth,
)
from adapters.opcua.keepalive import KeepAliveTimeoutError, subscription_parameters
from adapters.opcua.limits import OperationLimits, read_operation_limits, read_values
from adapters.opcua.machinery import CompanionModel, MachineNodes, ServerConfigurationError
from adapters.opcua.models.discovery import discover_machines
from adapters.opcua.models.resolver import StateResolver
from adapters.opcua.monitoring import MonitoredNode, MonitorResult, monitor
from adapters.opcua.readings import (
    ConnectionLost,
    Event,
    ValueCallback,
    ValueChanged,
    assess_reading,
    connection_lost_reporter,
    follow_subscription,
    state_since,
)
from adapters.opcua.security import ClientSecurity, connect
from adapters.opcua.settings import OpcUaSettings
from adapters.opcua.tracking import (
    MachineStatuses,
    PendingMachines,
    TrackedMachine,
    assign_resources,
)
from kooperant.backoff import Backoff, BackoffPolicy

_LOGGER = logging.getLogger(__name__)

# Codes of a session or connection that ended. A subscription request failing with one of these
# is no rejection of subscriptions, so the adapter reconnects instead of falling back to polling.
_CONNECTION_ERRORS = frozenset(
    {
        StatusCodes.BadSessionClosed,
        StatusCodes.BadSessionIdInvalid,
        StatusCodes.BadSessionNotActivated,
        StatusCodes.BadSecureChannelClosed,
        StatusCodes.BadSecureChannelIdInvalid,
        StatusCodes.BadConnectionClosed,
        StatusCodes.BadCommunicationError,
        StatusCodes.BadNoCommunication,
        StatusCodes.BadServerNotConnected,
        StatusCodes.BadTimeout,
        StatusCodes.BadRequestTimeout,
        StatusCodes.BadShutdown,
        StatusCodes.BadServerHalted,
        StatusCodes.BadDisconnect,
    }
)

_CREDENTIAL_ERRORS = (
    StatusCodes.BadUserAccessDenied,
    StatusCodes.BadIdentityTokenInvalid,
    StatusCodes.BadIdentityTokenRejected,
)


class OpcUaAdapter(Adapter[OpcUaSettings]):
    """Reports the state of the machines of one OPC UA server, in any supported model."""

    settings_model = OpcUaSettings

    def __init__(self, name: str, settings: OpcUaSettings, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        self._statuses = MachineStatuses()
        self._task: asyncio.Task[None] | None = None
        self._connected = False
        self._failures_in_row = 0
        self._lost_after_connection = False
        self._last_logged_error = ""
        self._health = ServerHealth(settings.url, context.clock())
        self._max_clock_skew = timedelta(seconds=settings.max_clock_skew_seconds)
        # Kinds of data path warnings already logged; repeats after a reconnect go to debug.
        self._warned: set[str] = set()
        self._security = ClientSecurity.from_settings(settings, self.resolve_path)
        # Connection attempts that failed since start, for diagnostics.
        self.failed_attempts = 0

    async def start(self) -> None:
        """Start the background task that connects and follows the machines."""
        demote_gone_connection_records()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"opcua adapter {self.name}")

    def collect(self) -> list[Observation]:
        """Return the last known status of every machine, sorted by resource id."""
        return list(self._statuses.sorted())

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
        """Follow the server with ``client`` until it fails, and return the delay before a retry."""
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
            counters = [UNEXPECTED_ERRORS]
            if self._connected:
                counters.append(CONNECTIONS_LOST)
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
            await connect(client, self._security)
            limits = await read_operation_limits(client, url)
            machines = await discover_machines(client, url, self.settings.nodes, limits)
            tracked = self._track(machines)
            resolver = StateResolver(client)
            await self._read_states(client, tracked, resolver, limits)
            self._record_success(len(tracked))
            backoff.reset()

            subscription, polled = await self._subscribe(client, tracked, limits)
            await self._follow(client, tracked, resolver, events, subscription, polled, limits)
        except UaStatusCodeError as error:
            if error.code in _CREDENTIAL_ERRORS:
                raise ServerConfigurationError(
                    f"OPC UA server {url} rejected the credentials: {error}; check username and "
                    "password in the adapter settings"
                ) from error
            if self._connected and error.code in _CONNECTION_ERRORS:
                # A stopping server may close the session before the transport drops, and the
                # operator should read the same line for both.
                raise self._lost_error(error) from error
            raise SourceUnavailableError(f"OPC UA server {url} failed: {error}") from error
        except (OSError, TimeoutError, UaError) as error:
            if self._connected and isinstance(error, TimeoutError):
                raise self._silence_error(error) from error
            raise SourceUnavailableError(f"cannot reach OPC UA server {url}: {error!r}") from error

    def _track(self, machines: list[MachineNodes]) -> list[TrackedMachine]:
        """Assign a resource id to each machine and forget machines the server no longer has."""
        tracked = assign_resources(self.settings, machines)
        removed = self._statuses.keep_only({machine.resource for machine in tracked})
        if removed:
            _LOGGER.info("%s: machines removed: %s", self.settings.url, ", ".join(removed))
            self.context.notify_changed()
        return tracked

    async def _read_states(
        self,
        client: Client,
        tracked: list[TrackedMachine],
        resolver: StateResolver,
        limits: OperationLimits,
    ) -> None:
        reads = [
            (machine, role, node)
            for machine in tracked
            for role, node in machine.nodes.state_nodes().items()
        ]
        data_values = await read_values(client, [node for _, _, node in reads], limits)
        received = self.context.clock()
        for (machine, role, _), data_value in zip(reads, data_values, strict=True):
            self._take_reading(machine, role, data_value, received)
        for machine in tracked:
            await self._update_state(machine, resolver)

    def _take_reading(
        self, machine: TrackedMachine, role: str, data_value: ua.DataValue, received: datetime
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

    async def _update_state(self, machine: TrackedMachine, resolver: StateResolver) -> None:
        state = await resolver.resolve(machine.nodes)
        since = state_since(machine.readings) or self.context.clock()
        if self._statuses.set_state(machine, state, since):
            _LOGGER.debug("%s: %s is %s", self.settings.url, machine.resource, state.value)
            self.context.notify_changed()

    async def _subscribe(
        self,
        client: Client,
        tracked: list[TrackedMachine],
        limits: OperationLimits,
    ) -> tuple[Subscription | None, list[Node]]:
        """Subscribe to the state variables; return the subscription and the nodes to poll.

        All of them are polled when the server rejects the subscription or every monitored item,
        only the rejected ones when it rejects some items. The subscription is None when it
        monitors nothing.
        """
        nodes = [node for machine in tracked for node in machine.nodes.state_nodes().values()]
        if not nodes:
            return None, []
        try:
            # Without a handler, asyncua queues each notification instead of starting a task for
            # it. The queue is unbounded (maxsize 0), so no notification is dropped.
            subscription = await client.create_subscription(
                subscription_parameters(self.settings), None, queue_maxsize=0
            )
        except UaStatusCodeError as error:
            if error.code in _CONNECTION_ERRORS:
                raise
            self._log_polling(f"CreateSubscription failed: {error}", len(nodes), len(nodes))
            return None, nodes

        try:
            result = await monitor(
                subscription,
                self._monitored_nodes(tracked),
                limits,
                sampling_interval_ms=self.settings.sampling_interval_ms,
            )
        except UaStatusCodeError as error:
            if error.code in _CONNECTION_ERRORS:
                raise
            self._log_polling(f"CreateMonitoredItems failed: {error}", len(nodes), len(nodes))
            await _delete_subscription(subscription)
            return None, nodes

        self._log_rejected_filters(result)
        if not result.rejected:
            return subscription, []
        node, status = result.rejected[0]
        self._log_polling(
            f"the server rejected {len(result.rejected)} monitored items, first "
            f"{node.nodeid.to_string()}: {status.name}",
            len(result.rejected),
            len(nodes),
        )
        polled = [node for node, _ in result.rejected]
        if not result.item_ids:
            await _delete_subscription(subscription)
            return None, polled
        return subscription, polled

    def _monitored_nodes(self, tracked: list[TrackedMachine]) -> list[MonitoredNode]:
        """Return each state variable with its data change filter.

        Only variables of the explicit node mapping get the deadband. The companion models' state
        variables are not numeric (``CurrentState``, its ``Id``) or are enumerations whose every
        change matters (``CurrentState/Number``), so they get the trigger alone.
        """
        settings = self.settings.data_change_filter
        model_filter = settings.data_change_filter(with_deadband=False)
        mapping_filter = settings.data_change_filter(with_deadband=True)
        return [
            MonitoredNode(
                node,
                mapping_filter if machine.nodes.model is CompanionModel.MAPPING else model_filter,
            )
            for machine in tracked
            for node in machine.nodes.state_nodes().values()
        ]

    def _log_rejected_filters(self, result: MonitorResult) -> None:
        if not result.without_filter:
            return
        node, status = result.without_filter[0]
        self._warn_once(
            "filter",
            "%s: the server rejected the data change filter of %d monitored items (first %s: "
            "%s); they report every change instead",
            self.settings.url,
            len(result.without_filter),
            node.nodeid.to_string(),
            status.name,
        )

    def _warn_once(self, kind: str, message: str, *args: object) -> None:
        """Log a warning the first time for each ``kind``, and at debug level after that."""
        level = logging.DEBUG if kind in self._warned else logging.WARNING
        self._warned.add(kind)
        _LOGGER.log(level, message, *args)

    def _log_polling(self, reason: str, polled: int, total: int) -> None:
        self._warn_once(
            "polling",
            "%s: subscription failed (%s); reading %d of %d state variables every %s s instead",
            self.settings.url,
            reason,
            polled,
            total,
            self.settings.poll_interval_seconds,
        )

    async def _follow(
        self,
        client: Client,
        tracked: list[TrackedMachine],
        resolver: StateResolver,
        events: asyncio.Queue[Event],
        subscription: Subscription | None,
        polled: list[Node],
        limits: OperationLimits,
    ) -> None:
        """Follow ``subscription`` and poll ``polled`` until either fails, then raise its error.

        Each value is assessed as it arrives, and the state of each machine with new values is
        resolved once the values that arrived together are taken (``PendingMachines``).
        """
        roles = {
            node.nodeid: (machine, role)
            for machine in tracked
            for role, node in machine.nodes.state_nodes().items()
        }
        pending = PendingMachines()

        def take_value(node_id: ua.NodeId, data_value: ua.DataValue, received: datetime) -> None:
            entry = roles.get(node_id)
            if entry is None:
                return
            machine, role = entry
            self._take_reading(machine, role, data_value, received)
            pending.add(machine)

        tasks = {
            asyncio.create_task(self._follow_events(events, take_value)),
            asyncio.create_task(self._update_states(pending, resolver)),
        }
        if subscription is not None:
            follow = follow_subscription(subscription, take_value, self.context.clock, events)
            tasks.add(asyncio.create_task(follow))
        if polled:
            tasks.add(asyncio.create_task(self._poll(client, polled, events, limits)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            # A failed task raises its error here. The subscription's follower may also end
            # without one, after it queued the connection loss that another task raises.
            task.result()

    async def _poll(
        self,
        client: Client,
        nodes: list[Node],
        events: asyncio.Queue[Event],
        limits: OperationLimits,
    ) -> None:
        """Read ``nodes`` every ``poll_interval_seconds`` and queue the values as notifications.

        A lost connection reaches ``_follow_events`` through the same queue.
        """
        while True:
            await asyncio.sleep(self.settings.poll_interval_seconds)
            data_values = await read_values(client, nodes, limits)
            received = self.context.clock()
            for node, data_value in zip(nodes, data_values, strict=True):
                events.put_nowait(ValueChanged(node.nodeid, data_value, received))

    async def _follow_events(self, events: asyncio.Queue[Event], take_value: ValueCallback) -> None:
        """Take the polled values, and raise the error of a reported connection loss."""
        while True:
            event = await events.get()
            if isinstance(event, ConnectionLost):
                raise self._lost_error(event.error) from event.error
            take_value(event.node, event.data_value, event.received)

    async def _update_states(self, pending: PendingMachines, resolver: StateResolver) -> None:
        """Resolve the state of the machines with new readings, whenever there are some."""
        while True:
            await pending.waiting.wait()
            for machine in pending.take():
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
            f"OPC UA server {self.settings.url} stopped responding without closing the "
            f"connection ({error!r}; keepalive_seconds is {self.settings.keepalive_seconds})"
        )

    def _record_success(self, machine_count: int) -> None:
        _LOGGER.info(
            "connected to OPC UA server %s: machines: %d, failed attempts before: %d",
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

        # Machines keep their states while the first reconnect attempt after a loss runs.
        lost_again = self._lost_after_connection and self._failures_in_row == 2
        if lost_again and self._statuses.mark_unknown(self.context.clock()):
            self.context.notify_changed()

    def _failure_counters(self, error: SourceUnavailableError) -> list[str]:
        if not self._connected:
            return [CONNECT_FAILURES]
        if isinstance(error, KeepAliveTimeoutError):
            return [CONNECTIONS_LOST, KEEPALIVE_TIMEOUTS]
        return [CONNECTIONS_LOST]


async def _delete_subscription(subscription: Subscription) -> None:
    """Delete a subscription that monitors nothing; a failure only leaves it to expire."""
    with contextlib.suppress(UaStatusCodeError):
        await subscription.delete()
