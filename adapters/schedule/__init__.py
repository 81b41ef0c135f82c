"""The production plan adapter, registered as ``schedule`` and, for older configs, ``schedule_csv``.

``settings`` holds the settings model, ``plan`` the parser of the export's rows and ``adapter``
the ``ExportAdapter`` subclass that follows the export.
"""

from adapters.schedule.adapter import ScheduleAdapter
from adapters.schedule.plan import (
    FALLBACK_DATE_FORMATS,
    parse_schedule,
    read_schedule,
    schedule_from_rows,
)
from adapters.schedule.settings import ScheduleColumns, ScheduleSettings

__all__ = [
    "FALLBACK_DATE_FORMATS",
    "ScheduleAdapter",
    "ScheduleColumns",
    "ScheduleSettings",
    "parse_schedule",
    "read_schedule",
    "schedule_from_rows",
]
