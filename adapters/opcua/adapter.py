"""The OPC UA adapter: follows the MachineryItemState of every machine on one server.

A background task connects, browses the ``Machines`` folder, reads each machine's identification
and follows its ``CurrentState`` through a subscription, or by polling where the server rejects
the subscription. When the connection fails or drops, the task reconnects with bounded
exponential backoff and browses again, so namespace indexes and machines are read anew.

Machines of a lost server keep their last state while the first reconnect attempt runs. When that
attempt fails, every machine becomes ``MachineState.UNKNOWN``, with ``since`` set to the time of
that failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from adapters.base import Adapter, AdapterContext, MachineStatus, Observation, cancel_task
from adapters.errors import SourceUnavailableError
from adapters.opcua.connection import disconnect, make_client
from adapters.opcua.machinery import (
    MachineNodes,
    ServerConfigurationError,
    StateResolver,
    browse_machines,
    data_value_content,
    machinery_namespace_index,
)
from adapters.opcua.security import ClientSecurity, connect
from adapters.opcua.settings import OpcUaSettings, default_resource_id
from kooperant.backoff import Backoff, BackoffPolicy
from kooperant.protocol import MachineState

_LOGGER = logging.getLogger(__name__)

_CREDENTIAL_ERRORS = (
    StatusCodes.BadUserAccessDenied,
    StatusCodes.BadIdentityTokenInvalid,
    StatusCodes.BadIdentityTokenRejected,
)


@dataclass(frozen=True, slots=True)
class _ValueChanged:
    node: ua.NodeId
    value: object


@dataclass(frozen=True, slots=True)
class _ConnectionLost:
    error: Exception


_Event = _ValueChanged | _ConnectionLost


class _Notifications:
    """Subscription handler that queues each notification for the adapter task."""

    def __init__(self, queue: asyncio.Queue[_Event]) -> None:
        self._queue = queue

    def datachange_notification(self, node: Node, val: object, data: DataChangeNotif) -> None:
        self._queue.put_nowait(_ValueChanged(node.nodeid, val))

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        # The server reports BadTimeout or BadShutdown here when the subscription ends.
        error = ConnectionError(f"subscription ended with status {status.Status}")
        self._queue.put_nowait(_ConnectionLost(error))


@dataclass(slots=True)
class _TrackedMachine:
    resource: str
    nodes: MachineNodes


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
        self._security = ClientSecurity.from_settings(settings, self.resolve_path)
        # Connection attempts that failed since start, for diagnostics.
        self.failed_attempts = 0

    async def start(self) -> None:
        """Start the background task that connects and follows the machines."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"opcua adapter {self.name}")

    def collect(self) -> list[Observation]:
        """Return the last known status of every machine, sorted by resource id."""
        return [self._statuses[resource] for resource in sorted(self._statuses)]

    async def stop(self) -> None:
        """Cancel the background task, which disconnects within ``timeout_seconds``."""
        task, self._task = self._task, None
        await cancel_task(task)

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
            try:
                await self._follow_server(backoff)
            except SourceUnavailableError as error:
                delay = backoff.next_delay()
                self._record_failure(error, delay)
                await asyncio.sleep(delay)
            except Exception:
                # A bug in this adapter or in asyncua is logged with its traceback and retried,
                # so that one faulty server does not stop the agent.
                delay = backoff.next_delay()
                self._connected = False
                self.failed_attempts += 1
                _LOGGER.exception(
                    "OPC UA adapter %s failed unexpectedly; retrying in %.1f s", self.name, delay
                )
                await asyncio.sleep(delay)

    async def _follow_server(self, backoff: Backoff) -> None:
        """Connect, browse and follow state changes until the connection fails."""
        url = self.settings.url
        events: asyncio.Queue[_Event] = asyncio.Queue()

        async def report_lost(error: Exception) -> None:
            events.put_nowait(_ConnectionLost(error))

        client = make_client(self.settings, report_lost)
        try:
            await connect(client, self._security)
            machinery = await machinery_namespace_index(client, url)
            tracked = self._track(await browse_machines(client, machinery, url))
            resolver = StateResolver(client)
            await self._read_states(client, tracked, resolver)
            self._record_success(len(tracked))
            backoff.reset()

            if await self._subscribe(client, tracked, events):
                await self._follow_notifications(tracked, resolver, events)
            else:
                await self._poll(client, tracked, resolver)
        except UaStatusCodeError as error:
            if error.code in _CREDENTIAL_ERRORS:
                raise ServerConfigurationError(
                    f"OPC UA server {url} rejected the credentials: {error}; check username and "
                    "password in the adapter settings"
                ) from error
            raise SourceUnavailableError(f"OPC UA server {url} failed: {error}") from error
        except (OSError, TimeoutError, UaError) as error:
            raise SourceUnavailableError(f"cannot reach OPC UA server {url}: {error!r}") from error
        finally:
            await disconnect(client, self.settings)

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
        for (machine, role, _), data_value in zip(reads, data_values, strict=True):
            machine.nodes.values[role] = data_value_content(data_value)
        for machine in tracked:
            self._set_state(machine, await resolver.resolve(machine.nodes.values))

    async def _subscribe(
        self, client: Client, tracked: list[_TrackedMachine], events: asyncio.Queue[_Event]
    ) -> bool:
        """Subscribe to the state variables, or return False when the server rejects that."""
        nodes = [node for machine in tracked for node in machine.nodes.state_nodes().values()]
        if not nodes:
            return True
        try:
            subscription = await client.create_subscription(
                self.settings.publishing_interval_ms, _Notifications(events)
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
        self, client: Client, tracked: list[_TrackedMachine], resolver: StateResolver
    ) -> None:
        while True:
            await asyncio.sleep(self.settings.poll_interval_seconds)
            await self._read_states(client, tracked, resolver)

    async def _follow_notifications(
        self,
        tracked: list[_TrackedMachine],
        resolver: StateResolver,
        events: asyncio.Queue[_Event],
    ) -> None:
        roles = {
            node.nodeid: (machine, role)
            for machine in tracked
            for role, node in machine.nodes.state_nodes().items()
        }
        while True:
            event = await events.get()
            if isinstance(event, _ConnectionLost):
                raise SourceUnavailableError(
                    f"lost connection to OPC UA server {self.settings.url}: {event.error!r}"
                ) from event.error
            if event.node not in roles:
                continue
            machine, role = roles[event.node]
            machine.nodes.values[role] = event.value
            self._set_state(machine, await resolver.resolve(machine.nodes.values))

    def _set_state(self, machine: _TrackedMachine, state: MachineState) -> None:
        """Store the machine's status. A state change restarts ``since`` and notifies the agent."""
        previous = self._statuses.get(machine.resource)
        changed = previous is None or previous.state != state
        since = self.context.clock() if changed or previous is None else previous.since
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
        self._failures_in_row = 0
        self._lost_after_connection = False
        self._last_logged_error = ""

    def _record_failure(self, error: SourceUnavailableError, delay: float) -> None:
        """Log the first failure of a series, a lost connection or a new configuration error."""
        self.failed_attempts += 1
        self._failures_in_row += 1
        message = str(error)

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
