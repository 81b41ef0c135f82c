"""Adapters that each break one life-cycle rule, for the tests of the conformance kit.

``Healthy`` follows every rule. Each subclass overrides one method to break one rule, so a test
that expects a rule id can only pass because of that override.
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from adapters.base import (
    Adapter,
    AdapterContext,
    AdapterSettings,
    ConnectionState,
    Observation,
    ResourceAmounts,
    SourceHealth,
    cancel_task,
)
from kooperant.protocol import Amount, ResourceKind


class HealthySettings(AdapterSettings):
    resource: str
    free_gib: float = 10.0


class Healthy(Adapter[HealthySettings]):
    """Offer a fixed amount of storage from the settings."""

    settings_model: ClassVar[type[AdapterSettings]] = HealthySettings

    def __init__(self, name: str, settings: HealthySettings, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(asyncio.sleep(3600), name="healthy ticker")

    def collect(self) -> list[Observation]:
        amount = Amount("free", self.settings.free_gib, "GiB")
        return [ResourceAmounts(self.settings.resource, ResourceKind.STORAGE, (amount,))]

    async def stop(self) -> None:
        task, self.task = self.task, None
        await cancel_task(task)


class LooseSettings(AdapterSettings):
    model_config = ConfigDict(frozen=True, extra="ignore")

    resource: str


class AcceptsUnknownKeys(Healthy):
    settings_model = LooseSettings


class MutableSettings(AdapterSettings):
    model_config = ConfigDict(frozen=False, extra="forbid")

    resource: str


class MutableSettingsAdapter(Healthy):
    settings_model = MutableSettings


class LooseMachine(BaseModel):
    """A nested model written without AdapterSettings: it ignores a misspelt key."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tag: str = "M1"


class NestedLooseSettings(AdapterSettings):
    resource: str
    free_gib: float = 1.0
    machines: tuple[LooseMachine, ...] = ()


class NestedLooseAdapter(Healthy):
    settings_model = NestedLooseSettings


class InfiniteSettings(AdapterSettings):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=True)

    resource: str


class AcceptsInfinity(Healthy):
    settings_model = InfiniteSettings


class ReadsFileInInit(Healthy):
    def __init__(self, name: str, settings: HealthySettings, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        self.text = Path(__file__).read_text(encoding="utf-8")


class CreatesConfigDirInInit(Healthy):
    def __init__(self, name: str, settings: HealthySettings, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        # mkdir is audited as os.mkdir, so this breaks the rule twice; the event is reported.
        context.config_dir.mkdir(parents=True)


class OpensSocketInInit(Healthy):
    def __init__(self, name: str, settings: HealthySettings, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        self.probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.probe.close()


class HangsInStart(Healthy):
    async def start(self) -> None:
        await asyncio.sleep(3600)


class RaisesInStart(Healthy):
    async def start(self) -> None:
        raise ConnectionRefusedError("source at 127.0.0.1:9 refused the connection")


class ReturnsTuple(Healthy):
    def collect(self) -> list[Observation]:
        return tuple(super().collect())  # type: ignore[return-value]


class ReturnsForeignItem(Healthy):
    def collect(self) -> list[Observation]:
        return [{"resource": self.settings.resource}]  # type: ignore[list-item]


class BadResourceId(Healthy):
    def collect(self) -> list[Observation]:
        amount = Amount("free", 1.0, "GiB")
        return [ResourceAmounts("hall/b", ResourceKind.STORAGE, (amount,))]


class InfiniteAmount(Healthy):
    def collect(self) -> list[Observation]:
        amount = Amount("free", math.inf, "GiB")
        return [ResourceAmounts(self.settings.resource, ResourceKind.STORAGE, (amount,))]


class ReadsFileInCollect(Healthy):
    def collect(self) -> list[Observation]:
        Path(__file__).read_bytes()
        return super().collect()


class SlowCollect(Healthy):
    def collect(self) -> list[Observation]:
        time.sleep(0.3)
        return super().collect()


class RaisesInCollect(Healthy):
    def collect(self) -> list[Observation]:
        raise KeyError("machine-7")


class BlocksLoopInTask(Healthy):
    async def start(self) -> None:
        self.task = asyncio.create_task(self._block(), name="blocking poller")

    async def _block(self) -> None:
        await asyncio.sleep(0.05)
        time.sleep(0.8)  # noqa: ASYNC251 - the blocking call under test
        await asyncio.sleep(3600)


class NaiveHealthTime(Healthy):
    def health(self) -> list[SourceHealth]:
        return [SourceHealth("meter.json", ConnectionState.CONNECTED, datetime(2026, 3, 2, 6))]


class HealthNotList(Healthy):
    def health(self) -> list[SourceHealth]:
        return {"meter.json": "ok"}  # type: ignore[return-value]


class WithheldByName(Healthy):
    def withheld_kinds(self) -> Mapping[ResourceKind, str]:
        return {"machine": "plan not read"}  # type: ignore[dict-item]


class HangsInStop(Healthy):
    async def stop(self) -> None:
        await asyncio.sleep(3600)


class LeavesTaskRunning(Healthy):
    async def stop(self) -> None:
        pass


class NeedsStartBeforeStop(Healthy):
    async def stop(self) -> None:
        assert self.task is not None, "stop() before start()"
        await super().stop()


class ForgetsTaskOfCancelledStart(Healthy):
    async def start(self) -> None:
        task = asyncio.create_task(asyncio.sleep(3600), name="early ticker")
        await asyncio.sleep(0.1)
        # A cancel during the sleep leaves the task unknown to stop().
        self.task = task


def settings_of(**extra: Any) -> dict[str, Any]:
    return {"resource": "store-1", **extra}
