"""The server's operation limits, and reads split into requests that stay within them.

OPC UA servers publish how many nodes one request may carry below
``Server/ServerCapabilities/OperationLimits`` (OPC 10000-5, ServerCapabilitiesType). A request
with more nodes fails as a whole with ``BadTooManyOperations``. ``read_operation_limits`` reads the
limits once per session, and ``read_values`` splits a read into batches of ``MaxNodesPerRead``.
``adapters.opcua.monitoring`` batches monitored-item creation by ``MaxMonitoredItemsPerCall``.

The adapter browses and translates browse paths one node per request, so ``MaxNodesPerBrowse`` and
``MaxNodesPerTranslateBrowsePathsToNodeIds`` cannot be exceeded. They are read and logged so that
code which starts to browse several nodes at once finds them here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaStatusCodeError

_LOGGER = logging.getLogger(__name__)

_Item = TypeVar("_Item")

_LIMIT_NODE_IDS = {
    "max_nodes_per_read": ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
    "max_monitored_items_per_call": (
        ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall
    ),
    "max_nodes_per_browse": ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse,
    "max_nodes_per_translate": (
        ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds
    ),
}


@dataclass(frozen=True, slots=True)
class OperationLimits:
    """Maximum number of nodes per request for each service; None means no limit."""

    max_nodes_per_read: int | None = None
    max_monitored_items_per_call: int | None = None
    max_nodes_per_browse: int | None = None
    max_nodes_per_translate: int | None = None


NO_LIMITS = OperationLimits()


async def read_operation_limits(client: Client, url: str) -> OperationLimits:
    """Read the OperationLimits of the connected server.

    A limit that is missing, has a Bad status, is not an integer or is 0 means no limit, because
    OPC 10000-5 defines 0 as no limit for these variables. Each limit is read in its own request,
    because a server with ``MaxNodesPerRead`` below 4 would reject one read of all of them.
    """
    values: dict[str, int | None] = {}
    for name, identifier in _LIMIT_NODE_IDS.items():
        node = client.get_node(ua.NodeId(ua.Int32(identifier), ua.Int16(0)))
        try:
            [data_value] = await client.read_attributes([node])
        except UaStatusCodeError as error:
            # A server that fails the whole read of an optional variable has no usable limit.
            _LOGGER.debug("%s: reading %s failed: %s; assuming no limit", url, name, error)
            values[name] = None
        else:
            values[name] = _limit_value(data_value)

    limits = OperationLimits(**values)
    _LOGGER.debug("%s: operation limits %s (None means no limit)", url, limits)
    return limits


def _limit_value(data_value: ua.DataValue) -> int | None:
    if data_value.StatusCode is not None and not data_value.StatusCode.is_good():
        return None
    value = None if data_value.Value is None else data_value.Value.Value
    # bool is an int in Python, but no server publishes a limit as a Boolean on purpose.
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return value


def batches(items: Sequence[_Item], size: int | None) -> Iterator[Sequence[_Item]]:
    """Yield consecutive slices of at most ``size`` items; ``size=None`` yields one slice."""
    if not items:
        return
    step = len(items) if size is None else size
    if step <= 0:
        raise ValueError(f"invalid batch size {size}: expected a positive number or None")
    for start in range(0, len(items), step):
        yield items[start : start + step]


async def read_values(
    client: Client, nodes: Sequence[Node], limits: OperationLimits
) -> list[ua.DataValue]:
    """Read the Value attribute of ``nodes`` in requests of at most ``MaxNodesPerRead`` nodes."""
    data_values: list[ua.DataValue] = []
    for batch in batches(nodes, limits.max_nodes_per_read):
        data_values.extend(await client.read_attributes(batch))
    return data_values
