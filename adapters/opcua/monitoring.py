"""Monitored items: the DataChangeFilter settings and item creation within the server's limits.

``DataChangeFilterSettings`` is the ``data_change_filter`` section of the adapter settings. It
becomes an OPC UA DataChangeFilter (OPC 10000-4, 7.22.2). The trigger selects which changes are
reported, and a deadband suppresses value changes smaller than ``deadband_value``. ``Absolute``
compares the change with the value itself, ``Percent`` with that percentage of the variable's
EURange. Only an AnalogItem has an EURange, so servers reject ``Percent`` on other variables.

``monitor`` creates the monitored items in calls of at most ``MaxMonitoredItemsPerCall`` items.
When the server rejects an item's filter, the item is created again without a filter, so the
server reports every change of its value and status, the default for items without a filter.
Polling would report the same changes later and with more traffic, so such items are not polled.
Items rejected for other reasons are returned to the caller, which polls them.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from asyncua import ua
from asyncua.common.node import Node
from asyncua.common.subscription import Subscription
from asyncua.ua.attribute_ids import AttributeIds
from asyncua.ua.status_codes import StatusCodes
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.opcua.limits import OperationLimits, batches

_LOGGER = logging.getLogger(__name__)

# Status codes with which a server rejects the filter of one monitored item, not the item itself.
FILTER_REJECTIONS = frozenset(
    {
        StatusCodes.BadFilterNotAllowed,
        StatusCodes.BadMonitoredItemFilterInvalid,
        StatusCodes.BadMonitoredItemFilterUnsupported,
        StatusCodes.BadDeadbandFilterInvalid,
    }
)

# asyncua keys the monitored items of a subscription by client handle, and its own helpers
# number them upward from 201, so this range stays clear of them.
_client_handles = itertools.count(1_000_000_000)


class DataChangeFilterSettings(BaseModel):
    """The ``data_change_filter`` section: when the server reports a changed value."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    trigger: Literal["StatusValue", "StatusValueTimestamp"] = Field(
        "StatusValue",
        description="Report changes of status and value, or also of the source timestamp.",
    )
    deadband_type: Literal["None", "Absolute", "Percent"] = Field(
        "None", description="None, Absolute (in the variable's unit) or Percent of its EURange."
    )
    deadband_value: float = Field(
        0.0, description="Smallest change that is reported; 0 reports every change."
    )

    @model_validator(mode="after")
    def _check_deadband(self) -> DataChangeFilterSettings:
        value = self.deadband_value
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"invalid deadband_value {value}: expected a number of 0 or more")
        if self.deadband_type == "Percent" and value > 100:
            raise ValueError(
                f"invalid deadband_value {value} for deadband_type Percent: expected 0 to 100"
            )
        if self.deadband_type == "None" and value != 0:
            raise ValueError(
                f"deadband_value {value} has no effect with deadband_type None; set "
                "deadband_type to Absolute or Percent, or remove deadband_value"
            )
        return self

    def data_change_filter(self, *, with_deadband: bool) -> ua.DataChangeFilter:
        """Build the filter; ``with_deadband=False`` keeps the trigger and drops the deadband.

        Servers reject a deadband on a variable that is not numeric (OPC 10000-4, 7.22.2), and on
        a numeric state such as ``CurrentState/Number`` a deadband would hide state changes.
        """
        data_change_filter = ua.DataChangeFilter()
        data_change_filter.Trigger = ua.DataChangeTrigger[self.trigger]
        if with_deadband and self.deadband_type != "None":
            data_change_filter.DeadbandType = ua.UInt32(ua.DeadbandType[self.deadband_type])
            data_change_filter.DeadbandValue = ua.Double(self.deadband_value)
        return data_change_filter


@dataclass(frozen=True, slots=True)
class MonitoredNode:
    """A variable to monitor and the filter to request for it; None requests no filter."""

    node: Node
    filter: ua.DataChangeFilter | None = None


@dataclass(slots=True)
class MonitorResult:
    """The outcome of ``monitor`` for each requested node."""

    # Monitored item id per node the server accepted.
    item_ids: dict[ua.NodeId, int] = field(default_factory=dict)
    # Nodes the server rejected, with the status code of the rejection.
    rejected: list[tuple[Node, ua.StatusCode]] = field(default_factory=list)
    # Nodes accepted only without their filter, with the status code that rejected the filter.
    without_filter: list[tuple[Node, ua.StatusCode]] = field(default_factory=list)


async def monitor(
    subscription: Subscription,
    items: Sequence[MonitoredNode],
    limits: OperationLimits,
    *,
    sampling_interval_ms: float,
) -> MonitorResult:
    """Create a monitored item on the Value of each node, in calls within ``limits``.

    Raises ``UaStatusCodeError`` when the server rejects a CreateMonitoredItems call as a whole,
    for example with ``BadServiceUnsupported``.
    """
    result = MonitorResult()
    retries: list[MonitoredNode] = []
    for item, outcome in zip(
        items, await _create(subscription, items, limits, sampling_interval_ms), strict=True
    ):
        if not isinstance(outcome, ua.StatusCode):
            result.item_ids[item.node.nodeid] = outcome
        elif item.filter is not None and outcome.value in FILTER_REJECTIONS:
            result.without_filter.append((item.node, outcome))
            retries.append(MonitoredNode(item.node))
        else:
            result.rejected.append((item.node, outcome))

    if retries:
        outcomes = await _create(subscription, retries, limits, sampling_interval_ms)
        for item, outcome in zip(retries, outcomes, strict=True):
            if isinstance(outcome, ua.StatusCode):
                result.rejected.append((item.node, outcome))
            else:
                result.item_ids[item.node.nodeid] = outcome
    return result


async def _create(
    subscription: Subscription,
    items: Sequence[MonitoredNode],
    limits: OperationLimits,
    sampling_interval_ms: float,
) -> list[int | ua.StatusCode]:
    # NOTE: asyncua 2.1's create_monitored_items returns only the item ids, so the sampling
    # interval that the server revised for each item is not available here.
    outcomes: list[int | ua.StatusCode] = []
    for batch in batches(items, limits.max_monitored_items_per_call):
        requests = [_create_request(item, sampling_interval_ms) for item in batch]
        outcomes.extend(await subscription.create_monitored_items(requests))
    return outcomes


def _create_request(
    item: MonitoredNode, sampling_interval_ms: float
) -> ua.MonitoredItemCreateRequest:
    read_value_id = ua.ReadValueId()
    read_value_id.NodeId = item.node.nodeid
    read_value_id.AttributeId = AttributeIds.Value

    parameters = ua.MonitoringParameters()
    parameters.ClientHandle = ua.UInt32(next(_client_handles))
    parameters.SamplingInterval = ua.Double(sampling_interval_ms)
    # 0 requests the server's default queue size, as asyncua's subscribe_data_change does.
    parameters.QueueSize = ua.UInt32(0)
    parameters.DiscardOldest = True
    if item.filter is not None:
        parameters.Filter = item.filter

    request = ua.MonitoredItemCreateRequest()
    request.ItemToMonitor = read_value_id
    request.MonitoringMode = ua.MonitoringMode.Reporting
    request.RequestedParameters = parameters
    return request
