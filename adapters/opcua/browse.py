"""Browsing an OPC UA server once, for ``kooperant agent browse``.

``browse_server`` connects anonymously without security, finds the machines of every supported
companion model with the adapter's own code in ``models.discovery``, and returns them as plain
values. Every
failure raises a ``BrowseError`` with a ``BrowseFailure`` code, so the command can word it in the
user's language. The asyncua error is chained as the cause.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaError, UaStatusCodeError
from pydantic import ValidationError

from adapters.errors import AdapterError
from adapters.opcua.connection import SESSION_TIMEOUT_MS
from adapters.opcua.limits import batches, read_operation_limits, read_values
from adapters.opcua.machinery import (
    CompanionModel,
    MachineNodes,
    NoMachineryError,
    NoMachinesFolderError,
    content_text,
    data_value_content,
)
from adapters.opcua.models.discovery import discover_machines
from adapters.opcua.models.resolver import StateResolver
from adapters.opcua.settings import OpcUaSettings, default_resource_id
from kooperant.net import mask_url_credentials
from kooperant.protocol import MachineState

_LOGGER = logging.getLogger(__name__)

# Status codes with which a server turns down an anonymous session or an unsecured channel.
_REJECTION_CODES = (
    StatusCodes.BadUserAccessDenied,
    StatusCodes.BadIdentityTokenInvalid,
    StatusCodes.BadIdentityTokenRejected,
    StatusCodes.BadSecurityPolicyRejected,
    StatusCodes.BadSecurityModeRejected,
    StatusCodes.BadSecurityChecksFailed,
)


# Maximum length of a resource id, as kooperant.protocol.check_identifier enforces it.
RESOURCE_ID_MAX_LENGTH = 64


class BrowseFailure(StrEnum):
    """Reason why ``browse_server`` could not list the machines."""

    INVALID_URL = "invalid_url"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    NO_MACHINERY = "no_machinery"
    NO_MACHINES_FOLDER = "no_machines_folder"
    REJECTED = "rejected"
    FAILED = "failed"


class BrowseError(AdapterError):
    """Raised when a server cannot be browsed. Any password in ``url`` is masked."""

    def __init__(self, failure: BrowseFailure, url: str, detail: str) -> None:
        self.failure = failure
        self.url = mask_url_credentials(url)
        self.detail = detail
        super().__init__(f"cannot browse {self.url} ({failure.value}): {detail}")


@dataclass(frozen=True, slots=True)
class StateVariable:
    """One state variable of a machine: its role, NodeId as text and value as text."""

    role: str
    node_id: str
    value: str | None


@dataclass(frozen=True, slots=True)
class BrowsedMachine:
    """One machine as the server reports it now."""

    browse_name: str
    display_name: str
    identification: dict[str, str]
    model: CompanionModel
    # The state variables in the order the adapter reads them.
    variables: tuple[StateVariable, ...]
    # The state the adapter would report from those variables.
    state: MachineState

    @property
    def current_state(self) -> StateVariable | None:
        """``MachineryItemState/CurrentState``, where the machine has it."""
        return next((item for item in self.variables if item.role == "item_state"), None)


@dataclass(frozen=True, slots=True)
class BrowseProgress:
    """How far ``browse_server`` has got on a server, for a progress display."""

    machines_found: int
    values_read: int
    """State values read so far. They are read in batches once every machine is found."""
    values_total: int | None
    """All state values to read, or None while machines are still being found."""


BrowseProgressCallback = Callable[[BrowseProgress], None]


@dataclass(frozen=True, slots=True)
class BrowseResult:
    """The machines of one server, in the order of the ``Machines`` folder."""

    url: str
    machines: tuple[BrowsedMachine, ...]


def check_browse_url(url: str) -> None:
    """Raise ``BrowseError`` unless the adapter settings would accept ``url``."""
    try:
        OpcUaSettings.model_validate({"url": url})
    except ValidationError as error:
        detail = "; ".join(str(item["msg"]) for item in error.errors())
        raise BrowseError(BrowseFailure.INVALID_URL, url, detail) from error


async def browse_server(
    url: str, timeout_seconds: float, progress: BrowseProgressCallback | None = None
) -> BrowseResult:
    """Connect to ``url``, list its machines and disconnect.

    ``timeout_seconds`` limits connecting and each request, as it does in the adapter settings.
    ``progress``, when given, is called after each machine found and each batch of state values
    read, with counts that never decrease. Raises ``BrowseError``.
    """
    check_browse_url(url)
    client = Client(url, timeout=timeout_seconds)
    client.session_timeout = SESSION_TIMEOUT_MS
    try:
        await client.connect()
    except (OSError, UaError) as error:
        raise _convert(error, url, timeout_seconds) from error

    try:
        return BrowseResult(url, tuple(await _read_machines(client, url, progress)))
    except (OSError, UaError) as error:
        raise _convert(error, url, timeout_seconds) from error
    finally:
        await _disconnect(client, url, timeout_seconds)


async def _read_machines(
    client: Client, url: str, progress: BrowseProgressCallback | None
) -> list[BrowsedMachine]:
    found = 0

    def machine_found(_: MachineNodes) -> None:
        nonlocal found
        found += 1
        if progress is not None:
            progress(BrowseProgress(found, 0, None))

    try:
        limits = await read_operation_limits(client, url)
        machines = await discover_machines(client, url, limits=limits, on_machine=machine_found)
    except NoMachineryError as error:
        raise BrowseError(BrowseFailure.NO_MACHINERY, url, str(error)) from error
    except NoMachinesFolderError as error:
        raise BrowseError(BrowseFailure.NO_MACHINES_FOLDER, url, str(error)) from error

    reads = [
        (machine, role, node)
        for machine in machines
        for role, node in machine.state_nodes().items()
    ]
    nodes = [node for _, _, node in reads]
    data_values: list[ua.DataValue] = []
    for batch in batches(nodes, limits.max_nodes_per_read):
        data_values += await read_values(client, batch, limits)
        if progress is not None:
            progress(BrowseProgress(len(machines), len(data_values), len(nodes)))
    for (machine, role, _), data_value in zip(reads, data_values, strict=True):
        machine.values[role] = data_value_content(data_value)

    resolver = StateResolver(client)
    browsed = []
    for machine in machines:
        variables = tuple(
            StateVariable(role, node.nodeid.to_string(), content_text(machine.values.get(role)))
            for role, node in machine.state_nodes().items()
        )
        browsed.append(
            BrowsedMachine(
                browse_name=machine.browse_name,
                display_name=machine.display_name,
                identification=dict(machine.identification),
                model=machine.model,
                variables=variables,
                state=await resolver.resolve(machine),
            )
        )
    return browsed


def _convert(error: OSError | UaError, url: str, timeout_seconds: float) -> BrowseError:
    """Sort an error of connecting or reading by what the operator has to check."""
    # TimeoutError is a subclass of OSError, so it is tested first.
    if isinstance(error, TimeoutError):
        detail = f"no response within {timeout_seconds:g} s"
        return BrowseError(BrowseFailure.TIMEOUT, url, detail)
    if isinstance(error, UaStatusCodeError) and error.code in _REJECTION_CODES:
        return BrowseError(BrowseFailure.REJECTED, url, str(error))
    # asyncua 2.1 raises a plain UaError with this text when the server offers no endpoint
    # without security, which is a rejection of the unsecured connection browse makes.
    if str(error).startswith("No matching endpoints"):
        return BrowseError(BrowseFailure.REJECTED, url, "the server offers only secured endpoints")
    if isinstance(error, OSError):
        return BrowseError(BrowseFailure.UNREACHABLE, url, error.strerror or repr(error))
    return BrowseError(BrowseFailure.FAILED, url, str(error) or repr(error))


async def _disconnect(client: Client, url: str, timeout_seconds: float) -> None:
    # The machines are already read, so a failed disconnect only leaves a session that the
    # server closes when it times out.
    try:
        async with asyncio.timeout(timeout_seconds):
            await client.disconnect()
    except (OSError, TimeoutError, UaError) as error:
        _LOGGER.debug("disconnect from %s failed: %r", mask_url_credentials(url), error)


def suggested_resources(machines: tuple[BrowsedMachine, ...]) -> dict[str, str]:
    """Return a distinct, valid resource id per browse name, for the ``machines`` map.

    The id is ``default_resource_id`` of the browse name, which the adapter uses for unlisted
    machines. A browse name without letters or digits gets ``machine-N`` (N counts from 1 in
    folder order), and a repeated id gets ``-2``, ``-3`` appended.
    """
    resources: dict[str, str] = {}
    used_ids: set[str] = set()
    for number, machine in enumerate(machines, start=1):
        base = default_resource_id(machine.browse_name) or f"machine-{number}"
        resource = base
        suffix = 2
        while resource in used_ids:
            resource = f"{base[: RESOURCE_ID_MAX_LENGTH - len(str(suffix)) - 1]}-{suffix}"
            suffix += 1
        used_ids.add(resource)
        resources[machine.browse_name] = resource
    return resources
