"""Fixtures for the adapter tests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from adapters.opcua import OpcUaAdapter, OpcUaSettings
from tests.support.node_opcua_server import unavailable_reason
from tests.support.opcua_recording import Recorder


@pytest.fixture
async def running_adapters() -> AsyncIterator[Callable[..., OpcUaAdapter]]:
    """A factory of OPC UA adapters for ``url``, all stopped after the test; ``start`` is yours."""
    adapters: list[OpcUaAdapter] = []

    def make(url: str, recorder: Recorder | None = None, **settings: Any) -> OpcUaAdapter:
        context = (recorder or Recorder()).context
        adapter = OpcUaAdapter("machines", OpcUaSettings(url=url, **settings), context)
        adapters.append(adapter)
        return adapter

    yield make
    for adapter in adapters:
        await adapter.stop()


@pytest.fixture
def node_opcua_installed() -> None:
    """Skip, or fail under KOOPERANT_REQUIRE_SERVICES=1, where the node-opcua server cannot run."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("KOOPERANT_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (KOOPERANT_REQUIRE_SERVICES=1)")
    pytest.skip(reason)
