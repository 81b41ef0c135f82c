"""Settings of the ``host`` adapter: resource, mounts, reserve, sampling window and cgroups."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from adapters.base import AdapterSettings
from kooperant.protocol import IDENTIFIER_PATTERN

# Upper bounds well above any useful value: larger numbers overflow asyncio's timers and
# datetime arithmetic instead of being rejected with the key.
MAX_INTERVAL_SECONDS = 86_400.0
MAX_WINDOW_SECONDS = 7 * 86_400.0
MAX_MOUNT_TIMEOUT_SECONDS = 3600.0

DEFAULT_CGROUP_ROOT = Path("/sys/fs/cgroup")


def _default_mounts() -> tuple[str, ...]:
    return ("C:\\",) if os.name == "nt" else ("/",)


class HostReserve(BaseModel):
    """Capacity the owner keeps back for the host's own work; never offered."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    cores: float = Field(default=0.0, ge=0, description="Logical CPU cores kept back.")
    memory_gib: float = Field(default=0.0, ge=0, description="Memory kept back, in GiB.")
    disk_gib: float = Field(default=0.0, ge=0, description="Disk kept back on each mount, in GiB.")


class HostSettings(AdapterSettings):
    """Settings of the ``host`` adapter."""

    resource: str = Field(pattern=IDENTIFIER_PATTERN, description="Resource id of this host.")
    # Not ``name``: the agent config uses that key for the adapter instance's own name.
    display_name: str | None = Field(default=None, description="Display name of the host.")
    mounts: tuple[str, ...] = Field(
        default_factory=_default_mounts,
        min_length=1,
        description="Paths whose file systems are reported in disk_free, network shares included.",
    )
    reserve: HostReserve = Field(default_factory=HostReserve)
    sample_interval_seconds: float = Field(
        default=5.0, gt=0, le=MAX_INTERVAL_SECONDS, description="Seconds between two samples."
    )
    window_seconds: float = Field(
        default=300.0,
        gt=0,
        le=MAX_WINDOW_SECONDS,
        description="Seconds of samples whose mean is offered as cpu_free and memory_free.",
    )
    mount_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=MAX_MOUNT_TIMEOUT_SECONDS,
        description="Time limit of reading one mount's free space; a slower mount is left out.",
    )
    cgroup: Literal["auto", "off"] = Field(
        default="auto",
        description="auto: bound CPU and memory by the cgroup limits of a container; off: ignore.",
    )
    cgroup_root: Path = Field(
        default=DEFAULT_CGROUP_ROOT,
        description="Folder where the cgroup file systems are mounted; relative to the config.",
    )

    @field_validator("mounts")
    @classmethod
    def _check_mounts(cls, mounts: tuple[str, ...]) -> tuple[str, ...]:
        for mount in mounts:
            if not mount.strip():
                raise ValueError("a mount path is empty; give an absolute path such as /srv/data")
        duplicates = sorted({mount for mount in mounts if mounts.count(mount) > 1})
        if duplicates:
            raise ValueError(f"mount {duplicates[0]!r} is listed more than once; list it once")
        return mounts

    @model_validator(mode="after")
    def _check_window(self) -> HostSettings:
        if self.window_seconds < self.sample_interval_seconds:
            raise ValueError(
                f"window_seconds ({self.window_seconds}) is shorter than "
                f"sample_interval_seconds ({self.sample_interval_seconds}), so the window "
                "would hold no sample; make the window at least as long as the interval"
            )
        return self
