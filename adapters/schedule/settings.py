"""Settings of the ``schedule`` adapter: where the plan is, its columns, dates and machine codes."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, field_validator

from adapters.base import AdapterSettings
from adapters.exports.identifiers import check_resource_map
from adapters.exports.tables import TableSettings


class ScheduleColumns(AdapterSettings):
    """Header text of each column in the export; matching ignores case and outer spaces."""

    order: str = "Zlecenie"
    machine: str = "Maszyna"
    start: str = "Początek"
    end: str = "Koniec"
    hours: str = Field(
        default="Godziny",
        description="Optional duration in hours, used when the end cell or column is absent.",
    )


class ScheduleSettings(TableSettings):
    """Settings of the ``schedule`` adapter (also registered as ``schedule_csv``)."""

    date_format: str = Field(
        default="%d.%m.%Y %H:%M",
        description="strptime format of date cells written as text; XLSX date cells need none.",
    )
    columns: ScheduleColumns = Field(default_factory=ScheduleColumns)
    machines: dict[str, str] = Field(
        default_factory=dict,
        description="ERP machine code to resource id; other codes are turned into ids.",
    )

    @field_validator("date_format")
    @classmethod
    def _check_date_format(cls, value: str) -> str:
        sample = datetime(2026, 12, 31, 23, 59)
        try:
            parsed = datetime.strptime(sample.strftime(value), value)
        except ValueError as error:
            raise ValueError(
                f"date_format {value!r} cannot parse its own output: {error}"
            ) from None
        if parsed.date() != sample.date():
            raise ValueError(f"date_format {value!r} must contain day, month and year")
        return value

    @field_validator("machines")
    @classmethod
    def _check_machines(cls, value: dict[str, str]) -> dict[str, str]:
        return check_resource_map(value, "machine")
