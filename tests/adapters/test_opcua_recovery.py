"""Tests of the OPC UA adapter's recovery, reading quality and health against asyncua servers.

A half-open link is made with ``RecordingProxy.stop_forwarding``: the sockets stay open but no
byte passes, so only the keep-alive can notice.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from asyncua import Node, Server, ua
from asyncua.ua.object_ids import ObjectIds
from pydantic import ValidationError

from adapters.base import ConnectionState
from adapters.opcua import OpcUaAdapter, OpcUaSettings
from adapters.opcua.asyncua_logs import GoneConnectionFilter
from adapters.opcua.health import COUNTER_NAMES
from adapters.opcua.keepalive import subscription_parameters, watchdog_interval_seconds
from adapters.opcua.machinery import MACHINERY_URI, MACHINES_FOLDER_ID, node_id
from adapters.opcua.readings import Reading, ReadingIssue, assess_reading
from kooperant.demo.machine_park import MachinePark, add_object_node
from kooperant.net import free_tcp_port
from kooperant.protocol import MachineState
from tests.support.opcua_recording import (
    FAST_RECONNECT,
    in_state,
    server_health,
    statuses,
    wait_until,
)
from tests.support.recording_proxy import RecordingProxy

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

FAST_SUBSCRIPTION = {"publishing_interval_ms": 100, "sampling_interval_ms": 50}
HALF_OPEN_DEADLINE_SECONDS = 30.0
SKEW = timedelta(seconds=300)
NOW = datetime(2026, 12, 7, 7, 0, tzinfo=UTC)


# Reading quality, unit by unit.


def data_value(
    value: object = ua.LocalizedText("Executing"),
    status: int = ua.StatusCodes.Good,
    source_time: datetime | None = NOW,
) -> ua.DataValue:
    return ua.DataValue(
        Value=ua.Variant(value),
        StatusCode=ua.StatusCode(status),
        SourceTimestamp=source_time,
    )


def reading(value: object, received: datetime) -> Reading:
    return Reading(value, received, received, frozenset())


@pytest.mark.parametrize(
    ("case", "issues", "usable", "trusted"),
    [
        (data_value(), set(), True, True),
        (data_value(status=ua.StatusCodes.BadCommunicationError), {"bad_status"}, False, False),
        (
            data_value(status=ua.StatusCodes.UncertainLastUsableValue),
            {"uncertain_status"},
            True,
            True,
        ),
        (data_value(value=None), {"null_value"}, False, False),
        (data_value(source_time=None), {"missing_source_timestamp"}, True, False),
        (
            data_value(source_time=datetime(1601, 1, 1, tzinfo=UTC)),
            {"missing_source_timestamp"},
            True,
            False,
        ),
        (
            data_value(source_time=NOW + timedelta(days=1)),
            {"future_source_timestamp"},
            True,
            False,
        ),
        (data_value(source_time=NOW + timedelta(seconds=299)), set(), True, True),
        # A first reading may be old: the value has not changed since then.
        (data_value(source_time=NOW - timedelta(days=30)), set(), True, True),
    ],
)
def test_assess_reading_cases(
    case: ua.DataValue, issues: set[str], usable: bool, trusted: bool
) -> None:
    result = assess_reading(case, NOW, SKEW, None)

    assert set(result.issues) == issues
    assert (result.value is not None) is usable
    expected_time = case.SourceTimestamp if trusted else NOW
    assert result.time == expected_time
    assert result.received == NOW


def test_assess_reading_changed_value_too_old() -> None:
    previous = reading(ua.LocalizedText("NotExecuting"), NOW - timedelta(minutes=1))
    case = data_value(source_time=NOW - timedelta(days=1))

    result = assess_reading(case, NOW, SKEW, previous)

    assert result.issues == {ReadingIssue.PAST_SOURCE_TIMESTAMP}
    assert result.time == NOW
    assert result.value == ua.LocalizedText("Executing")


def test_assess_reading_unchanged_value_keeps_old_time() -> None:
    previous = reading(ua.LocalizedText("Executing"), NOW - timedelta(minutes=1))
    case = data_value(source_time=NOW - timedelta(days=1))

    result = assess_reading(case, NOW, SKEW, previous)

    assert result.issues == set()
    assert result.time == NOW - timedelta(days=1)


def test_assess_reading_naive_timestamp_is_utc() -> None:
    case = data_value(source_time=(NOW - timedelta(hours=1)).replace(tzinfo=None))

    result = assess_reading(case, NOW, SKEW, None)

    assert result.time == NOW - timedelta(hours=1)
    assert result.time.tzinfo is UTC


# Keep-alive settings.


def test_keepalive_parameters_default() -> None:
    settings = OpcUaSettings(url="opc.tcp://127.0.0.1:4840")
    parameters = subscription_parameters(settings)

    assert watchdog_interval_seconds(settings) == 5.0
    assert parameters.RequestedPublishingInterval == 250.0
    assert parameters.RequestedMaxKeepAliveCount == 120
    assert parameters.RequestedLifetimeCount == 360


def test_keepalive_parameters_slow_publishing() -> None:
    settings = OpcUaSettings(
        url="opc.tcp://127.0.0.1:4840", keepalive_seconds=1, publishing_interval_ms=10_000
    )
    parameters = subscription_parameters(settings)

    assert parameters.RequestedMaxKeepAliveCount == 1
    assert parameters.RequestedLifetimeCount == 3


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("keepalive_seconds", 0.5),
        ("keepalive_seconds", 301),
        ("keepalive_seconds", "soon"),
        ("max_clock_skew_seconds", 0),
        ("max_clock_skew_seconds", -5),
    ],
)
def test_settings_invalid_recovery_value(key: str, value: object) -> None:
    with pytest.raises(ValidationError) as raised:
        OpcUaSettings(url="opc.tcp://127.0.0.1:4840", **{key: value})

    assert key in str(raised.value)


# Reading quality against a server.


NOT_EXECUTING_TEXT = ua.Variant(ua.LocalizedText("NotExecuting"), ua.VariantType.LocalizedText)


@asynccontextmanager
async def single_machine_server(
    initial: ua.Variant = NOT_EXECUTING_TEXT, *, accept_subscriptions: bool = True
) -> AsyncIterator[tuple[str, Node]]:
    """Run a server with one machine, ``Mill``, whose state is only the CurrentState text.

    Yield the endpoint and the CurrentState node, which tests write whole DataValues to.
    asyncua's server rejects a write of a null value to a variable that has a value, so a test
    of a null value passes it as ``initial``. ``accept_subscriptions=False`` makes the server
    reject CreateSubscription with BadTooManySubscriptions, so the adapter polls.
    """
    endpoint = f"opc.tcp://127.0.0.1:{free_tcp_port()}"
    server = Server()
    await server.init()
    server.set_endpoint(endpoint)
    if not accept_subscriptions:
        server.iserver.max_subscriptions = 0
    machinery = await server.register_namespace(MACHINERY_URI)
    own = await server.register_namespace("urn:kooperant:test:quality")

    folder = await add_object_node(
        server.nodes.objects,
        node_id(MACHINES_FOLDER_ID, machinery),
        ua.QualifiedName("Machines", machinery),
        type_definition=ObjectIds.FolderType,
    )
    machine = await add_object_node(folder, node_id("Mill", own), ua.QualifiedName("Mill", own))
    item_state = await machine.add_object(
        node_id("Mill.MachineryItemState", own), ua.QualifiedName("MachineryItemState", machinery)
    )
    current_state = await item_state.add_variable(
        node_id("Mill.CurrentState", own),
        ua.QualifiedName("CurrentState", 0),
        initial,
        datatype=ua.NodeId(ObjectIds.LocalizedText),
    )
    async with server:
        yield endpoint, current_state


def state_value(
    state: str | None,
    status: int = ua.StatusCodes.Good,
    source_time: datetime | None = None,
) -> ua.DataValue:
    variant = (
        ua.Variant(None, ua.VariantType.Null)
        if state is None
        else ua.Variant(ua.LocalizedText(state, "en"), ua.VariantType.LocalizedText)
    )
    return ua.DataValue(
        Value=variant,
        StatusCode=ua.StatusCode(status),
        SourceTimestamp=source_time,
        ServerTimestamp=datetime.now(UTC),
    )


async def test_quality_cases_change_state_and_count(
    running_adapters: Callable[..., OpcUaAdapter],
) -> None:
    async with single_machine_server() as (endpoint, current_state):
        two_hours_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
        await current_state.write_value(state_value("Executing", source_time=two_hours_ago))
        adapter = running_adapters(endpoint, **FAST_SUBSCRIPTION)
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 1)

        async def write_and_wait(value: ua.DataValue, state: MachineState) -> tuple[Any, ...]:
            before = datetime.now(UTC)
            await current_state.write_value(value)
            await wait_until(lambda: statuses(adapter)["mill"].state is state)
            return before, statuses(adapter)["mill"].since, datetime.now(UTC)

        # An old timestamp on the first reading is trusted: the machine has run for two hours.
        assert statuses(adapter)["mill"].state is MachineState.EXECUTING
        assert statuses(adapter)["mill"].since == two_hours_ago

        bad = state_value("NotExecuting", ua.StatusCodes.BadCommunicationError, datetime.now(UTC))
        before, since, after = await write_and_wait(bad, MachineState.UNKNOWN)
        assert before <= since <= after

        uncertain_time = datetime.now(UTC)
        uncertain = state_value(
            "NotExecuting", ua.StatusCodes.UncertainLastUsableValue, uncertain_time
        )
        _, since, _ = await write_and_wait(uncertain, MachineState.NOT_EXECUTING)
        assert since == uncertain_time

        before, since, after = await write_and_wait(
            state_value("Executing", source_time=None), MachineState.EXECUTING
        )
        assert before <= since <= after

        tomorrow = datetime.now(UTC) + timedelta(days=1)
        before, since, after = await write_and_wait(
            state_value("NotExecuting", source_time=tomorrow), MachineState.NOT_EXECUTING
        )
        assert before <= since <= after

        yesterday = datetime.now(UTC) - timedelta(days=1)
        before, since, after = await write_and_wait(
            state_value("Executing", source_time=yesterday), MachineState.EXECUTING
        )
        assert before <= since <= after

        health = server_health(adapter)

    assert health.errors["bad_status"] == 1
    assert health.errors["uncertain_status"] == 1
    assert health.errors["null_value"] == 0
    assert health.errors["missing_source_timestamp"] == 1
    assert health.errors["future_source_timestamp"] == 1
    assert health.errors["past_source_timestamp"] == 1
    assert health.last_data is not None
    assert health.last_data >= yesterday + timedelta(days=1)


async def test_quality_bad_status_on_initial_read(
    running_adapters: Callable[..., OpcUaAdapter],
) -> None:
    async with single_machine_server() as (endpoint, current_state):
        await current_state.write_value(
            state_value("Executing", ua.StatusCodes.BadNoCommunication, datetime.now(UTC))
        )
        adapter = running_adapters(endpoint, **FAST_SUBSCRIPTION)
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 1)

        assert statuses(adapter)["mill"].state is MachineState.UNKNOWN
        assert server_health(adapter).errors["bad_status"] >= 1


async def test_quality_null_value_on_initial_read(
    running_adapters: Callable[..., OpcUaAdapter],
) -> None:
    async with single_machine_server(ua.Variant(None, ua.VariantType.Null)) as (endpoint, _):
        adapter = running_adapters(endpoint, **FAST_SUBSCRIPTION)
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 1)

        assert statuses(adapter)["mill"].state is MachineState.UNKNOWN
        assert server_health(adapter).errors["null_value"] >= 1
        assert server_health(adapter).errors["bad_status"] == 0


# Connection health and recovery.


async def test_health_across_connect_loss_reconnect(
    caplog: pytest.LogCaptureFixture, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    caplog.set_level(logging.DEBUG, logger="adapters.opcua")
    port = free_tcp_port()
    adapter = running_adapters(f"opc.tcp://127.0.0.1:{port}", **FAST_RECONNECT)
    started = datetime.now(UTC)
    initial = server_health(adapter)
    assert initial.state is ConnectionState.CONNECTING
    assert initial.source == f"opc.tcp://127.0.0.1:{port}"
    assert set(initial.errors) == set(COUNTER_NAMES)
    assert not any(initial.errors.values())

    await adapter.start()
    await wait_until(lambda: server_health(adapter).errors["connect_failures"] >= 2)
    down = server_health(adapter)
    assert down.state is ConnectionState.DISCONNECTED
    assert down.since >= started
    assert down.detail is not None and "cannot reach" in down.detail
    assert down.last_data is None

    async with MachinePark(port=port, change_interval_seconds=60):
        await wait_until(in_state(adapter, ConnectionState.CONNECTED))
        first = server_health(adapter)
        assert first.reconnects == 0
        assert first.last_data is not None
        assert first.since > down.since

        caplog.clear()
    await wait_until(in_state(adapter, ConnectionState.DISCONNECTED))
    lost = server_health(adapter)
    assert lost.errors["connections_lost"] == 1
    assert lost.errors["keepalive_timeouts"] == 0

    async with MachinePark(port=port, change_interval_seconds=60):
        await wait_until(in_state(adapter, ConnectionState.CONNECTED))
        again = server_health(adapter)
        state_lines = [
            record.getMessage()
            for record in caplog.records
            if record.name.startswith("adapters.opcua") and record.levelno >= logging.INFO
        ]

    assert again.reconnects == 1
    assert again.errors["connections_lost"] == 1
    assert again.last_data is not None and again.last_data > first.last_data
    assert len([line for line in state_lines if "reconnecting in" in line]) == 1
    assert len([line for line in state_lines if line.startswith("connected to")]) == 1


async def test_server_stop_logs_one_warning(
    caplog: pytest.LogCaptureFixture, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    port = free_tcp_port()
    adapter = running_adapters(f"opc.tcp://127.0.0.1:{port}", **FAST_SUBSCRIPTION)
    async with MachinePark(port=port, change_interval_seconds=60):
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3)
        caplog.clear()
        caplog.set_level(logging.WARNING)

    await wait_until(lambda: server_health(adapter).errors["connect_failures"] >= 2, 10.0)

    warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.name for record in warnings] == ["adapters.opcua.adapter"], [
        record.getMessage() for record in warnings
    ]
    assert "reconnecting in" in warnings[0].getMessage()


async def test_half_open_link_replaced(
    caplog: pytest.LogCaptureFixture, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    async with (
        MachinePark(change_interval_seconds=60) as park,
        RecordingProxy("127.0.0.1", park.port).running() as proxy,
    ):
        adapter = running_adapters(f"opc.tcp://127.0.0.1:{proxy.port}")
        await adapter.start()
        await wait_until(lambda: len(adapter.collect()) == 3, 10.0)
        caplog.clear()
        caplog.set_level(logging.WARNING)

        proxy.stop_forwarding()
        detected = await wait_until(
            in_state(adapter, ConnectionState.DISCONNECTED), HALF_OPEN_DEADLINE_SECONDS
        )
        print(f"asyncua half-open link detected after {detected:.1f} s")
        health = server_health(adapter)
        assert health.errors["keepalive_timeouts"] == 1
        assert health.errors["connections_lost"] == 1
        assert health.detail is not None and "stopped responding" in health.detail

        proxy.resume_forwarding()
        await park.set_state("PRESS-03", MachineState.OUT_OF_SERVICE)
        await wait_until(
            lambda: statuses(adapter)["press-03"].state is MachineState.OUT_OF_SERVICE, 30.0
        )
        assert server_health(adapter).state is ConnectionState.CONNECTED
        assert server_health(adapter).reconnects == 1
        warnings = [record for record in caplog.records if record.levelno >= logging.WARNING]

    assert [record.name for record in warnings] == ["adapters.opcua.adapter"], [
        record.getMessage() for record in warnings
    ]
    assert "stopped responding" in warnings[0].getMessage()


async def test_half_open_link_detected_while_polling(
    caplog: pytest.LogCaptureFixture, running_adapters: Callable[..., OpcUaAdapter]
) -> None:
    # A keep-alive of 2 s keeps the test short. The poll interval is longer than the test, so
    # only the watchdog, which runs without a subscription, can detect the silent link.
    async with single_machine_server(accept_subscriptions=False) as (endpoint, current_state):
        server_port = urlsplit(endpoint).port
        assert server_port is not None
        async with RecordingProxy("127.0.0.1", server_port).running() as proxy:
            adapter = running_adapters(
                f"opc.tcp://127.0.0.1:{proxy.port}", keepalive_seconds=2, poll_interval_seconds=60
            )
            await adapter.start()
            await wait_until(lambda: len(adapter.collect()) == 1, 10.0)
            assert statuses(adapter)["mill"].state is MachineState.NOT_EXECUTING
            # The subscription is tried after the first read, so its warning may come later.
            await wait_until(lambda: "state variables every 60" in caplog.text, 10.0)
            polling = [line for line in caplog.messages if "state variables every 60" in line]
            assert len(polling) == 1
            assert "BadTooManySubscriptions" in polling[0]

            proxy.stop_forwarding()
            detected = await wait_until(in_state(adapter, ConnectionState.DISCONNECTED), 10.0)
            print(f"half-open link detected while polling after {detected:.1f} s")
            assert server_health(adapter).errors["keepalive_timeouts"] == 1

            proxy.resume_forwarding()
            await current_state.write_value(state_value("Executing", source_time=datetime.now(UTC)))
            await wait_until(
                lambda: statuses(adapter)["mill"].state is MachineState.EXECUTING, 30.0
            )
            assert server_health(adapter).reconnects == 1


def test_gone_connection_filter_keeps_other_records() -> None:
    gone_filter = GoneConnectionFilter()
    logger_name = "asyncua.client.ua_session.UaSession"
    crash = logging.LogRecord(
        logger_name,
        logging.ERROR,
        __file__,
        1,
        "Publish iteration crashed; retrying in 1s",
        (),
        None,
    )
    try:
        raise ValueError("decoding failed")
    except ValueError as error:
        crash.exc_info = (type(error), error, error.__traceback__)
    teardown_record = logging.LogRecord(
        logger_name,
        logging.WARNING,
        __file__,
        1,
        "close_session was called but connection is closed",
        (),
        None,
    )

    assert gone_filter.filter(crash) is True
    assert crash.levelno == logging.ERROR
    gone_filter.filter(teardown_record)
    assert teardown_record.levelno == logging.DEBUG


@pytest.mark.parametrize(
    ("result", "level"),
    [
        ("BadCertificateUntrusted", logging.DEBUG),
        ("BadUserAccessDenied", logging.DEBUG),
        ("BadSessionClosed", logging.DEBUG),
        ("BadNodeIdUnknown", logging.WARNING),
    ],
)
def test_gone_connection_filter_service_faults(result: str, level: int) -> None:
    fault = logging.LogRecord(
        "asyncua.client.ua_client.UASocketProtocol",
        logging.WARNING,
        __file__,
        1,
        "ServiceFault (%s, diagnostics: %s) from server received %s",
        (result, "DiagnosticInfo()", "in response to ActivateSessionRequest"),
        None,
    )

    GoneConnectionFilter().filter(fault)

    assert fault.levelno == level


@pytest.mark.parametrize(
    ("logger_name", "message", "level"),
    [
        ("asyncua.uaprotocol", "Received an error: %s", logging.WARNING),
        ("asyncua.client.ua_client.UASocketProtocol", "Received an error: %r", logging.CRITICAL),
        (
            "asyncua.client.ua_client.UASocketProtocol",
            "Got error status from server: %s",
            logging.ERROR,
        ),
    ],
)
def test_gone_connection_filter_server_error_messages(
    logger_name: str, message: str, level: int
) -> None:
    error = "ErrorMessage(Error=StatusCode(value=2156003328), Reason='BadTcpInternalError')"
    record = logging.LogRecord(logger_name, level, __file__, 1, message, (error,), None)

    GoneConnectionFilter().filter(record)

    assert record.levelno == logging.DEBUG
