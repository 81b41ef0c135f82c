"""Tests of the OPC UA data path: operation limits, batched requests, deadband and polling.

Three kinds of server are used. node-opcua enforces the OperationLimits it publishes and rejects
filters the way the specification describes. The asyncua Machinery server (from the nodeset
files) lets a test count the nodes in each request. A plain asyncua server built here carries a
numeric variable for the deadband.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, Server, ua
from asyncua.common.callback import CallbackService, CallbackType, ServerItemCallback
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeNotif
from asyncua.common.utils import ServiceError
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError
from pydantic import ValidationError

from adapters.opcua import OpcUaAdapter, OpcUaSettings
from adapters.opcua.browse import browse_server
from adapters.opcua.limits import NO_LIMITS, OperationLimits, batches, read_operation_limits
from adapters.opcua.limits import read_values as read_batched_values
from adapters.opcua.models.discovery import discover_machines
from adapters.opcua.monitoring import DataChangeFilterSettings, MonitoredNode, monitor
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState
from tests.support.machinery_server import MachineryTestServer, MachineSpec, machinery_server
from tests.support.node_opcua_server import node_opcua_server
from tests.support.opcua_recording import has_state, statuses, wait_until

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ADAPTER_LOGGER = "adapters.opcua.adapter"

MACHINES = (
    MachineSpec("Mill-A1", "Hermle", "C 42 U", "H-4201", "Executing"),
    MachineSpec("Lathe B2", "Mazak", "QTU 250", "MZ-2502", "NotExecuting"),
    MachineSpec("Press-03", "Schuler", "MSD 400", "SCH-0403", "OutOfService"),
)

# A poll interval no test waits for, so a change seen in time came from the subscription.
NO_POLLING = {"poll_interval_seconds": 600}


def polling_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == ADAPTER_LOGGER
        and record.levelno == logging.WARNING
        and "subscription failed" in record.getMessage()
    ]


@pytest.fixture
async def connected_client() -> AsyncIterator[Callable[[str], Any]]:
    """A factory of connected asyncua clients that are all disconnected after the test."""
    clients: list[Client] = []

    async def connect(url: str) -> Client:
        client = Client(url, timeout=5)
        await client.connect()
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.disconnect()


class Notifications:
    """Subscription handler that keeps each notified value."""

    def __init__(self) -> None:
        self.values: list[object] = []

    def datachange_notification(self, node: Node, val: object, data: DataChangeNotif) -> None:
        self.values.append(val)


# Batching


def test_batches_split_by_size() -> None:
    assert list(batches([1, 2, 3, 4, 5], 2)) == [[1, 2], [3, 4], [5]]


def test_batches_without_limit_one_slice() -> None:
    assert list(batches([1, 2, 3], None)) == [[1, 2, 3]]


def test_batches_empty_nothing() -> None:
    assert list(batches([], 2)) == []


def test_batches_zero_size_rejected() -> None:
    with pytest.raises(ValueError, match="invalid batch size 0"):
        list(batches([1], 0))


# node-opcua enforces its OperationLimits


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_opcua_limits_read(connected_client: Callable[[str], Any]) -> None:
    async with node_opcua_server(
        MACHINES, max_nodes_per_read=2, max_monitored_items_per_call=2
    ) as server:
        client = await connected_client(server.endpoint)
        limits = await read_operation_limits(client, server.endpoint)

    assert limits.max_nodes_per_read == 2
    assert limits.max_monitored_items_per_call == 2
    # node-opcua publishes 0 for the limits it was not given, which means no limit.
    assert limits.max_nodes_per_browse is None
    assert limits.max_nodes_per_translate is None


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_opcua_oversized_read_rejected(connected_client: Callable[[str], Any]) -> None:
    async with node_opcua_server(MACHINES, max_nodes_per_read=2) as server:
        client = await connected_client(server.endpoint)
        limits = await read_operation_limits(client, server.endpoint)
        machines = await discover_machines(client, server.endpoint, limits=limits)
        nodes = [node for machine in machines for node in machine.state_nodes().values()]

        with pytest.raises(UaStatusCodeError) as rejection:
            await client.read_attributes(nodes)
        data_values = await read_batched_values(client, nodes, limits)

    assert len(nodes) == 9
    assert rejection.value.code == StatusCodes.BadTooManyOperations
    assert len(data_values) == 9
    assert all(data_value.StatusCode.is_good() for data_value in data_values)
    assert [machine.identification["SerialNumber"] for machine in machines] == [
        "H-4201",
        "MZ-2502",
        "SCH-0403",
    ]


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_opcua_small_limits_browsed() -> None:
    async with node_opcua_server(MACHINES, max_nodes_per_read=2) as server:
        result = await browse_server(server.endpoint, timeout_seconds=5)

    by_name = {machine.browse_name: machine for machine in result.machines}
    assert sorted(by_name) == ["Lathe B2", "Mill-A1", "Press-03"]
    assert by_name["Press-03"].state is MachineState.OUT_OF_SERVICE
    assert by_name["Lathe B2"].identification["Model"] == "QTU 250"


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_opcua_small_limits_machines_followed(
    running_adapters: Callable[..., OpcUaAdapter], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=ADAPTER_LOGGER)
    async with node_opcua_server(
        MACHINES, max_nodes_per_read=2, max_monitored_items_per_call=2
    ) as server:
        adapter = running_adapters(
            server.endpoint, publishing_interval_ms=100, sampling_interval_ms=50, **NO_POLLING
        )
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3)

        await server.set_state("Press-03", "Executing")
        await wait_until(has_state(adapter, "press-03", MachineState.EXECUTING))
        # In one CI run node-opcua dropped the connection here ("transport lost"). After the
        # reconnect the other machines read Unknown until their first notification.
        await wait_until(has_state(adapter, "mill-a1", MachineState.EXECUTING))
        await wait_until(has_state(adapter, "lathe-b2", MachineState.NOT_EXECUTING))

    found = statuses(adapter)
    assert found["mill-a1"].state is MachineState.EXECUTING
    assert found["lathe-b2"].state is MachineState.NOT_EXECUTING
    assert found["press-03"].identification == {
        "Manufacturer": "Schuler",
        "Model": "MSD 400",
        "SerialNumber": "SCH-0403",
    }
    assert polling_warnings(caplog) == []


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_opcua_rejected_items_polled(
    running_adapters: Callable[..., OpcUaAdapter], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=ADAPTER_LOGGER)
    # 3 machines have 9 state variables, so the server rejects the last 4 monitored items.
    async with node_opcua_server(MACHINES, max_monitored_items_per_subscription=5) as server:
        adapter = running_adapters(
            server.endpoint,
            publishing_interval_ms=100,
            sampling_interval_ms=50,
            poll_interval_seconds=0.2,
        )
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3)

        await server.set_state("Mill-A1", "OutOfService")
        await server.set_state("Press-03", "NotExecuting")
        await wait_until(has_state(adapter, "mill-a1", MachineState.OUT_OF_SERVICE))
        await wait_until(has_state(adapter, "press-03", MachineState.NOT_EXECUTING))

    warnings = polling_warnings(caplog)
    assert len(warnings) == 1
    assert "BadTooManyMonitoredItems" in warnings[0]
    assert "reading 4 of 9 state variables" in warnings[0]


@pytest.mark.usefixtures("node_opcua_installed")
async def test_node_opcua_rejected_filter_dropped(connected_client: Callable[[str], Any]) -> None:
    absolute = DataChangeFilterSettings(deadband_type="Absolute", deadband_value=1)
    percent = DataChangeFilterSettings(deadband_type="Percent", deadband_value=10)
    async with node_opcua_server(MACHINES[:1]) as server:
        client = await connected_client(server.endpoint)
        [machine] = await discover_machines(client, server.endpoint)
        current_state = machine.variables["item_state"]
        state_number = machine.variables["item_state.number"]
        subscription = await client.create_subscription(100, Notifications())
        # A deadband on the LocalizedText CurrentState is not allowed, and Percent needs the
        # EURange that the UInt32 Number lacks.
        result = await monitor(
            subscription,
            [
                MonitoredNode(current_state, absolute.data_change_filter(with_deadband=True)),
                MonitoredNode(state_number, percent.data_change_filter(with_deadband=True)),
            ],
            NO_LIMITS,
            sampling_interval_ms=50,
        )

    dropped = {node.nodeid: status.value for node, status in result.without_filter}
    assert dropped == {
        current_state.nodeid: StatusCodes.BadFilterNotAllowed,
        state_number.nodeid: StatusCodes.BadMonitoredItemFilterUnsupported,
    }
    assert set(result.item_ids) == {current_state.nodeid, state_number.nodeid}
    assert result.rejected == []


# asyncua server with small OperationLimits: count the nodes per request


class RequestSizes:
    """Server callbacks that record the node count of each client Read and CreateMonitoredItems."""

    def __init__(self, server: Server) -> None:
        self.reads: list[int] = []
        self.monitored_item_calls: list[int] = []
        server.subscribe_server_callback(CallbackType.PreRead, self._read)
        server.subscribe_server_callback(CallbackType.ItemSubscriptionCreated, self._created)

    def _read(self, event: ServerItemCallback, dispatcher: CallbackService) -> None:
        if event.is_external:
            self.reads.append(len(event.request_params.NodesToRead))

    def _created(self, event: ServerItemCallback, dispatcher: CallbackService) -> None:
        if event.is_external:
            self.monitored_item_calls.append(len(event.request_params.ItemsToCreate))


LIMIT_PREFIX = "Server_ServerCapabilities_OperationLimits_"


async def set_operation_limits(
    server: MachineryTestServer, *, read: int, monitored_items: int
) -> None:
    for name, value in (("MaxNodesPerRead", read), ("MaxMonitoredItemsPerCall", monitored_items)):
        node = server.server.get_node(ua.NodeId(getattr(ObjectIds, LIMIT_PREFIX + name)))
        await node.write_value(ua.Variant(value, ua.VariantType.UInt32))


@pytest.mark.nodesets
async def test_asyncua_requests_within_limits(
    nodesets_dir: Path, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    async with machinery_server(nodesets_dir, MACHINES) as server:
        await set_operation_limits(server, read=2, monitored_items=2)
        sizes = RequestSizes(server.server)
        adapter = running_adapters(
            server.endpoint, publishing_interval_ms=100, sampling_interval_ms=50, **NO_POLLING
        )
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3)
        await server.set_state("Lathe B2", "Executing")
        await wait_until(has_state(adapter, "lathe-b2", MachineState.EXECUTING))

    assert max(sizes.reads) == 2
    assert max(sizes.monitored_item_calls) == 2
    # Each machine has CurrentState, its Id and its Number.
    assert sum(sizes.monitored_item_calls) == 9
    assert statuses(adapter)["press-03"].identification["SerialNumber"] == "SCH-0403"


@pytest.mark.nodesets
async def test_asyncua_without_limits_one_request(
    nodesets_dir: Path, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    async with machinery_server(nodesets_dir, MACHINES) as server:
        sizes = RequestSizes(server.server)
        adapter = running_adapters(server.endpoint, **NO_POLLING)
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3)

    assert max(sizes.reads) == 9
    assert sizes.monitored_item_calls == [9]


async def test_asyncua_limits_zero_bad_missing_none(
    numeric_server: tuple[str, Node], connected_client: Callable[[str], Any]
) -> None:
    endpoint, variable = numeric_server
    server_nodes = variable.session

    def limit_node(name: str) -> Node:
        return Node(server_nodes, ua.NodeId(getattr(ObjectIds, LIMIT_PREFIX + name)))

    await limit_node("MaxNodesPerRead").write_value(ua.Variant(0, ua.VariantType.UInt32))
    await limit_node("MaxMonitoredItemsPerCall").write_value(ua.Variant(7, ua.VariantType.UInt32))
    await limit_node("MaxNodesPerBrowse").write_value(
        ua.DataValue(
            ua.Variant(5, ua.VariantType.UInt32),
            StatusCode=ua.StatusCode(StatusCodes.BadOutOfService),
        )
    )
    await limit_node("MaxNodesPerTranslateBrowsePathsToNodeIds").delete()

    client = await connected_client(endpoint)
    limits = await read_operation_limits(client, endpoint)

    assert limits.max_nodes_per_read is None
    assert limits.max_monitored_items_per_call == 7
    assert limits.max_nodes_per_browse is None
    assert limits.max_nodes_per_translate is None


# Polling fallback


@pytest.mark.nodesets
async def test_asyncua_subscription_rejected_polled(
    nodesets_dir: Path,
    running_adapters: Callable[..., OpcUaAdapter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=ADAPTER_LOGGER)
    async with machinery_server(nodesets_dir, MACHINES) as server:
        # The server then rejects CreateSubscription with BadTooManySubscriptions.
        server.server.iserver.max_subscriptions = 0
        adapter = running_adapters(server.endpoint, poll_interval_seconds=0.2)
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3)

        await server.set_state("Mill-A1", "NotAvailable")
        await wait_until(has_state(adapter, "mill-a1", MachineState.NOT_AVAILABLE))
        await server.set_state("Mill-A1", "Executing")
        await wait_until(has_state(adapter, "mill-a1", MachineState.EXECUTING))

    warnings = polling_warnings(caplog)
    assert len(warnings) == 1
    assert "BadTooManySubscriptions" in warnings[0]
    assert "reading 9 of 9 state variables every 0.2 s" in warnings[0]


@pytest.mark.nodesets
async def test_asyncua_monitored_items_rejected_polled(
    nodesets_dir: Path,
    running_adapters: Callable[..., OpcUaAdapter],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.WARNING, logger=ADAPTER_LOGGER)

    async def reject(params: ua.CreateMonitoredItemsParameters) -> None:
        raise ServiceError(StatusCodes.BadServiceUnsupported)

    async with machinery_server(nodesets_dir, MACHINES) as server:
        subscriptions = server.server.iserver.subscription_service
        monkeypatch.setattr(subscriptions, "create_monitored_items", reject)
        adapter = running_adapters(server.endpoint, poll_interval_seconds=0.2)
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3)

        await server.set_state("Press-03", "Executing")
        await wait_until(has_state(adapter, "press-03", MachineState.EXECUTING))
        # The subscription that monitors nothing was deleted again.
        remaining = dict(subscriptions.subscriptions)

    warnings = polling_warnings(caplog)
    assert len(warnings) == 1
    assert "CreateMonitoredItems failed" in warnings[0]
    assert "BadServiceUnsupported" in warnings[0]
    assert "reading 9 of 9 state variables" in warnings[0]
    assert remaining == {}


@pytest.mark.nodesets
async def test_asyncua_closed_session_reconnects(
    nodesets_dir: Path,
    running_adapters: Callable[..., OpcUaAdapter],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A session that ends while the adapter subscribes is a lost connection, not a server
    # without subscriptions, so the adapter connects again and does not poll.
    caplog.set_level(logging.WARNING, logger=ADAPTER_LOGGER)
    subscriptions_made = 0

    async with machinery_server(nodesets_dir, MACHINES) as server:
        subscriptions = server.server.iserver.subscription_service
        create_monitored_items = subscriptions.create_monitored_items

        async def close_once(params: ua.CreateMonitoredItemsParameters) -> object:
            nonlocal subscriptions_made
            subscriptions_made += 1
            if subscriptions_made == 1:
                raise ServiceError(StatusCodes.BadSessionClosed)
            return await create_monitored_items(params)

        monkeypatch.setattr(subscriptions, "create_monitored_items", close_once)
        adapter = running_adapters(
            server.endpoint,
            poll_interval_seconds=60,
            reconnect_min_seconds=0.1,
            reconnect_max_seconds=0.3,
        )
        await adapter.start()
        await wait_until(lambda: subscriptions_made == 2)

        await server.set_state("Press-03", "Executing")
        await wait_until(has_state(adapter, "press-03", MachineState.EXECUTING))
        [health] = adapter.health()

    assert polling_warnings(caplog) == []
    assert health.errors["connections_lost"] == 1
    assert health.reconnects == 1


# Deadband on a numeric variable


@pytest.fixture
async def numeric_server() -> AsyncIterator[tuple[str, Node]]:
    """A plain asyncua server with one Double variable, and that variable's server-side node."""
    endpoint = f"opc.tcp://127.0.0.1:{free_tcp_port()}"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    namespace = await server.register_namespace("urn:kooperant:test:deadband")
    variable = await server.nodes.objects.add_variable(
        ua.NodeId("SpindleSpeed", namespace),
        ua.QualifiedName("SpindleSpeed", namespace),
        ua.Variant(100.0, ua.VariantType.Double),
    )
    async with server:
        yield endpoint, variable


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"deadband_type": "Absolute", "deadband_value": 5}, [100.0, 110.0]),
        ({}, [100.0, 102.0, 110.0]),
    ],
    ids=["absolute-5", "no-deadband"],
)
async def test_deadband_small_changes_suppressed(
    numeric_server: tuple[str, Node],
    connected_client: Callable[[str], Any],
    settings: dict[str, Any],
    expected: list[float],
) -> None:
    endpoint, variable = numeric_server
    filter_settings = DataChangeFilterSettings(**settings)
    client = await connected_client(endpoint)
    notifications = Notifications()
    subscription = await client.create_subscription(50, notifications)
    result = await monitor(
        subscription,
        [
            MonitoredNode(
                client.get_node(variable.nodeid),
                filter_settings.data_change_filter(with_deadband=True),
            )
        ],
        NO_LIMITS,
        sampling_interval_ms=0,
    )
    await wait_until(lambda: notifications.values == [100.0])

    await variable.write_value(ua.Variant(102.0, ua.VariantType.Double))
    await variable.write_value(ua.Variant(110.0, ua.VariantType.Double))
    await wait_until(lambda: 110.0 in notifications.values)

    assert result.rejected == []
    assert result.without_filter == []
    assert notifications.values == expected


def test_filter_without_deadband_keeps_trigger() -> None:
    settings = DataChangeFilterSettings(
        trigger="StatusValueTimestamp", deadband_type="Absolute", deadband_value=2.5
    )

    with_deadband = settings.data_change_filter(with_deadband=True)
    without_deadband = settings.data_change_filter(with_deadband=False)

    assert with_deadband.Trigger == ua.DataChangeTrigger.StatusValueTimestamp
    assert with_deadband.DeadbandType == ua.DeadbandType.Absolute
    assert with_deadband.DeadbandValue == 2.5
    assert without_deadband.Trigger == ua.DataChangeTrigger.StatusValueTimestamp
    assert without_deadband.DeadbandType == ua.DeadbandType.None_
    assert without_deadband.DeadbandValue == 0


# Settings


@pytest.mark.parametrize(
    ("section", "location", "message"),
    [
        (
            {"deadband_type": "Absolute", "deadband_value": -1},
            ("data_change_filter",),
            "invalid deadband_value -1.0: expected a number of 0 or more",
        ),
        (
            {"deadband_type": "Absolute", "deadband_value": "nan"},
            ("data_change_filter", "deadband_value"),
            "Input should be a finite number",
        ),
        (
            {"deadband_type": "Percent", "deadband_value": 150},
            ("data_change_filter",),
            "invalid deadband_value 150.0 for deadband_type Percent: expected 0 to 100",
        ),
        (
            {"deadband_value": 2},
            ("data_change_filter",),
            "deadband_value 2.0 has no effect with deadband_type None",
        ),
        (
            {"deadband_type": "Relative"},
            ("data_change_filter", "deadband_type"),
            "'None', 'Absolute' or 'Percent'",
        ),
        (
            {"trigger": "Status"},
            ("data_change_filter", "trigger"),
            "'StatusValue' or 'StatusValueTimestamp'",
        ),
        (
            {"deadband": 2},
            ("data_change_filter", "deadband"),
            "Extra inputs are not permitted",
        ),
    ],
    ids=["negative", "nan", "percent-over-100", "value-without-type", "type", "trigger", "extra"],
)
def test_settings_bad_filter_rejected(
    section: dict[str, Any], location: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as rejection:
        OpcUaSettings(url="opc.tcp://127.0.0.1:4840", data_change_filter=section)

    [error] = rejection.value.errors()
    assert error["loc"] == location
    assert message in error["msg"]


def test_settings_filter_defaults() -> None:
    settings = OpcUaSettings(url="opc.tcp://127.0.0.1:4840")

    assert settings.data_change_filter.trigger == "StatusValue"
    assert settings.data_change_filter.deadband_type == "None"
    assert settings.data_change_filter.deadband_value == 0


def test_settings_percent_bounds_accepted() -> None:
    for value in (0, 100):
        section = {"deadband_type": "Percent", "deadband_value": value}
        settings = OpcUaSettings(url="opc.tcp://127.0.0.1:4840", data_change_filter=section)
        assert settings.data_change_filter.deadband_value == value


def test_operation_limits_default_none() -> None:
    assert OperationLimits() == NO_LIMITS
    assert NO_LIMITS.max_nodes_per_read is None
