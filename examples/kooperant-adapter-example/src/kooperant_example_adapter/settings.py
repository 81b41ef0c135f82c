"""Settings of the ``example_silo`` adapter: the gateway file and the silos it reports."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.base import AdapterSettings
from kooperant.protocol import IDENTIFIER_PATTERN


class Silo(BaseModel):
    """One silo: the gateway tag of its level and the resource it is offered as."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    tag: str = Field(min_length=1, description="Tag of the level reading in the gateway file.")
    resource: str = Field(pattern=IDENTIFIER_PATTERN, description="Resource id of the silo.")
    capacity_m3: float = Field(gt=0, description="Usable volume of the silo, in m³.")
    display_name: str | None = Field(default=None, description="Shown on the dashboard.")


class SiloSettings(AdapterSettings):
    """The ``example_silo`` section of the agent config."""

    path: Path = Field(description="The gateway's JSON file, relative to the agent config.")
    silos: tuple[Silo, ...] = Field(min_length=1)
    poll_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    max_age_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Readings older than this, by the file's written_at, are not offered.",
    )

    @model_validator(mode="after")
    def _check_unique(self) -> SiloSettings:
        for key in ("tag", "resource"):
            values = [getattr(silo, key) for silo in self.silos]
            repeated = sorted({value for value in values if values.count(value) > 1})
            if repeated:
                raise ValueError(f"silos: {key} {', '.join(repeated)} is listed more than once")
        return self
