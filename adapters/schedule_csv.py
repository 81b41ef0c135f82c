"""The names of the production plan adapter from before it read XLSX, kept for older imports.

Configs with ``type: schedule_csv`` load the same class as ``type: schedule``; new code imports
from ``adapters.schedule``.
"""

from adapters.exports.identifiers import slugify_code as slugify_machine_code
from adapters.schedule import (
    ScheduleAdapter as ScheduleCsvAdapter,
)
from adapters.schedule import (
    ScheduleColumns,
    parse_schedule,
    read_schedule,
)
from adapters.schedule import (
    ScheduleSettings as ScheduleCsvSettings,
)

__all__ = [
    "ScheduleColumns",
    "ScheduleCsvAdapter",
    "ScheduleCsvSettings",
    "parse_schedule",
    "read_schedule",
    "slugify_machine_code",
]
