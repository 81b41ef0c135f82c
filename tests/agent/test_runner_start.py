"""An adapter whose start() outlives the limit, or raises a time-out of its own."""

from __future__ import annotations

import asyncio
import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest

import agent.config
import agent.runner
from adapters.base import Adapter, AdapterSettings, Observation
from adapters.registry import load_adapter_class
from agent.config import load_config
from agent.runner import Agent


class StartSettings(AdapterSettings):
    own_timeout: bool = False


class SlowStart(Adapter[StartSettings]):
    """Hangs in start(), or raises TimeoutError itself when ``own_timeout`` is set."""

    settings_model = StartSettings

    async def start(self) -> None:
        if self.settings.own_timeout:
            raise TimeoutError("connect to 127.0.0.1:4840 timed out")
        await asyncio.sleep(3600)

    def collect(self) -> list[Observation]:
        return []

    async def stop(self) -> None:
        pass


@pytest.fixture(autouse=True)
def slow_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(name: str) -> type[Adapter[Any]]:
        return SlowStart if name == "slow" else load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)
    monkeypatch.setattr(agent.runner, "START_TIMEOUT_SECONDS", 0.2)


def write_config(folder: Path, own_timeout: bool) -> Path:
    (folder / "policy.yaml").write_text("share: []\n")
    path = folder / "agent.yaml"
    text = f"""
        member: acme
        cluster: pomorskie-metal
        broker:
          url: mqtt://127.0.0.1:1
        status:
          enabled: false
        policy: policy.yaml
        adapters:
          - type: slow
            name: wolny
            own_timeout: {str(own_timeout).lower()}
    """
    path.write_text(textwrap.dedent(text))
    return path


async def test_start_past_limit_named(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    runner = Agent(load_config(write_config(tmp_path, own_timeout=False)))

    with caplog.at_level(logging.ERROR, logger="agent.runner"):
        await runner.start_adapters()
        await runner.stop_adapters()

    [record] = caplog.records
    assert record.getMessage().startswith("Adapter wolny did not return from start() within 0.2 s")
    assert record.exc_info is None


async def test_own_timeout_is_start_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runner = Agent(load_config(write_config(tmp_path, own_timeout=True)))

    with caplog.at_level(logging.ERROR, logger="agent.runner"):
        await runner.start_adapters()
        await runner.stop_adapters()

    [record] = caplog.records
    assert record.getMessage() == "Adapter wolny failed to start; its observations are left out"
    assert record.exc_info is not None
