"""The IT team calendar (kalendarz zespołu): settings and parser of a CSV or XLSX export.

Each row is one booked period of one person: person, skills, first and last day, the kind of
booking (project, leave) and optionally the share of each working day it takes. A row without
dates only lists a person and their skills, so that the team's roster is complete. The parser
adds up, per team and skill, the working days that the team's people have free in the horizon.

Person names are used only to group rows, because they must not leave the company. No observation
contains them, and no error message quotes the person cell: errors name the line instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pydantic import Field, field_validator

from adapters.base import AdapterSettings, ResourceAmounts
from adapters.errors import ExportFormatError
from adapters.exports.columns import DATE_FORMATS, ColumnLayout, cell_text
from adapters.exports.identifiers import slugify_code
from adapters.exports.polish_csv import parse_decimal
from adapters.exports.tables import TableRow, TableSettings, read_table
from kooperant.protocol import IDENTIFIER_PATTERN, Amount, ResourceKind

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
_SKILL_SEPARATORS = re.compile(r"[,;\n]")
DAYS_DECIMALS = 2
OPTIONAL_COLUMNS = ("kind", "percent", "hours", "team")
DEFAULT_BOOKING_KINDS = (
    "projekt",
    "urlop",
    "szkolenie",
    "delegacja",
    "zwolnienie lekarskie",
    "L4",
    "wolne",
)


def _check_resource_id(value: str, setting: str) -> str:
    """Return ``value`` if it is a valid resource id; ``setting`` names it in the error."""
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"{setting} {value!r} is not a valid resource id: use 1 to 64 letters, digits, '.', "
            "'_' or '-', starting with a letter or digit"
        )
    return value


class ItTeamColumns(AdapterSettings):
    """Header text of each column; matching ignores case and outer spaces."""

    person: str = "Osoba"
    skills: str = Field(
        default="Umiejętności", description="Skills separated by ',', ';' or line breaks."
    )
    start: str = Field(default="Od", description="First booked day.")
    end: str = Field(default="Do", description="Last booked day, inclusive.")
    kind: str = Field(
        default="Rodzaj", description="Optional kind of booking, one of 'booking_kinds'."
    )
    percent: str = Field(default="Procent", description="Optional share of each working day.")
    hours: str = Field(default="Godziny", description="Optional hours booked per working day.")
    team: str = Field(default="Zespół", description="Optional team of the person.")


class ItTeamSettings(TableSettings):
    """Settings of the ``it_team`` adapter."""

    columns: ItTeamColumns = Field(default_factory=ItTeamColumns)
    resource: str | None = Field(
        default=None, description="Resource id of the team when the export has no team column."
    )
    teams: dict[str, str] = Field(
        default_factory=dict,
        description="Team name in the export to resource id; other names are turned into ids.",
    )
    horizon_days: int = Field(
        default=14, ge=1, le=366, description="Calendar days counted, starting with today."
    )
    holidays: tuple[date, ...] = Field(
        default=(), description="Days off on which nobody works, e.g. 2026-12-24."
    )
    hours_per_day: float = Field(
        default=8, gt=0, le=24, description="Working hours of a whole day, for 'Godziny'."
    )
    booking_kinds: tuple[str, ...] = Field(
        default=DEFAULT_BOOKING_KINDS,
        min_length=1,
        description="Accepted words of the kind column; every one of them is booked time.",
    )
    date_format: str = Field(
        default="%d.%m.%Y", description="Date format of text cells; ISO dates are accepted too."
    )

    @field_validator("resource")
    @classmethod
    def _check_resource(cls, value: str | None) -> str | None:
        return None if value is None else _check_resource_id(value, "resource")

    @field_validator("teams")
    @classmethod
    def _check_teams(cls, value: dict[str, str]) -> dict[str, str]:
        for name, resource in value.items():
            _check_resource_id(resource, f"team {name!r} maps to")
        return {name.strip(): resource for name, resource in value.items()}


@dataclass(frozen=True, slots=True)
class Horizon:
    """The working days counted: weekdays from ``first`` on, without holidays."""

    first: date
    days: int
    holidays: frozenset[date] = frozenset()

    def working_days(self) -> list[date]:
        candidates = (self.first + timedelta(days=offset) for offset in range(self.days))
        return [day for day in candidates if day.weekday() < 5 and day not in self.holidays]


@dataclass(slots=True)
class _Person:
    """One person's rows added up: team, skills and the booked share of each working day."""

    line: int
    team: str
    booked: list[float]
    skills: dict[str, str] = field(default_factory=dict)
    """Skill label by its case-folded form, so that "PLC" and "plc" count as one skill."""

    def free_days(self) -> float:
        # Bookings that overlap add up to at most the whole day, so none is subtracted twice.
        return sum(1.0 - min(1.0, share) for share in self.booked)


@dataclass(slots=True)
class _Team:
    name: str | None
    people: list[_Person] = field(default_factory=list)


def read_team_calendar(
    path: Path, settings: ItTeamSettings, horizon: Horizon
) -> list[ResourceAmounts]:
    """Read the calendar at ``path`` into one ``ResourceAmounts`` per team, sorted by team id.

    Each team gets ``Amount("person_days", free, "days", label=<skill>)`` per skill: the free
    working days in ``horizon`` of the people with that skill, rounded to 2 decimals. Raises
    ``ExportFormatError`` for an invalid export and ``OSError`` when the file cannot be read.
    """
    rows = read_table(path, settings)
    header = next(rows, None)
    if header is None:
        raise ExportFormatError(
            path, "the file is empty; expected a header row and one row per booked period"
        )
    layout = ColumnLayout(header, path, settings.columns, optional=OPTIONAL_COLUMNS)
    if not layout.has("team") and settings.resource is None:
        raise ExportFormatError(
            path,
            f"the header has no column {settings.columns.team!r}, and 'resource' is not set; "
            "set 'resource' to the team's id in the adapter settings, or add a team column",
            line=header.line,
        )

    teams = _read_people(_CalendarRows(layout, settings, horizon), rows)
    return [_team_amounts(resource, teams[resource]) for resource in sorted(teams)]


def _read_people(reader: _CalendarRows, rows: Iterator[TableRow]) -> dict[str, _Team]:
    people: dict[str, _Person] = {}
    teams: dict[str, _Team] = {}
    for row in rows:
        key = " ".join(reader.person(row).split()).casefold()
        resource, team_name = reader.team(row)
        person = people.get(key)
        if person is None:
            person = _Person(row.line, resource, [0.0] * len(reader.working_days))
            people[key] = person
            team = teams.setdefault(resource, _Team(team_name))
            team.people.append(person)
            team.name = team.name or team_name
        elif person.team != resource:
            raise reader.error(
                row,
                "team",
                f"the person of this line is in team {resource!r} here but in {person.team!r} "
                f"on line {person.line}; a person must belong to one team",
            )
        for skill in reader.skills(row):
            person.skills.setdefault(skill.casefold(), skill)
        reader.book(row, person)
    return teams


def _team_amounts(resource: str, team: _Team) -> ResourceAmounts:
    free_by_skill: dict[str, float] = {}
    labels: dict[str, str] = {}
    for person in team.people:
        free = person.free_days()
        for key, label in person.skills.items():
            labels.setdefault(key, label)
            free_by_skill[key] = free_by_skill.get(key, 0.0) + free

    amounts = tuple(
        Amount("person_days", round(free_by_skill[key], DAYS_DECIMALS), "days", label=labels[key])
        for key in sorted(labels)
    )
    return ResourceAmounts(resource, ResourceKind.IT_TEAM, amounts, name=team.name)


class _CalendarRows:
    """Reader of one row's values, which books the row's period on the person's working days."""

    def __init__(self, layout: ColumnLayout, settings: ItTeamSettings, horizon: Horizon) -> None:
        self.layout = layout
        self.settings = settings
        self.working_days = horizon.working_days()
        self.day_index = {day: index for index, day in enumerate(self.working_days)}
        self.kinds = {kind.strip().casefold() for kind in settings.booking_kinds}
        self.formats = (settings.date_format, *DATE_FORMATS)

    def person(self, row: TableRow) -> str:
        return self.layout.text(row, "person", "person")

    def team(self, row: TableRow) -> tuple[str, str | None]:
        """Return the team's resource id and its name in the export (None without a column)."""
        name = self.layout.optional_text(row, "team")
        if name is None:
            if self.settings.resource is None:
                raise self.error(row, "team", "empty team; set 'resource' for rows without one")
            return self.settings.resource, None

        resource = self.settings.teams.get(name) or slugify_code(name)
        if not _IDENTIFIER.fullmatch(resource):
            raise self.error(
                row,
                "team",
                f"team {name!r} cannot be turned into a resource id; "
                "map it in 'teams' in the adapter settings",
            )
        return resource, name

    def skills(self, row: TableRow) -> list[str]:
        text = self.layout.optional_text(row, "skills") or ""
        return [skill.strip() for skill in _SKILL_SEPARATORS.split(text) if skill.strip()]

    def book(self, row: TableRow, person: _Person) -> None:
        """Add the row's booked share to each of the person's working days in its period."""
        if not self._has_dates(row):
            self._check_roster_row(row)
            return

        for column, label in (("start", "first day"), ("end", "last day")):
            if not cell_text(self.layout.cell(row, column)):
                raise self.error(
                    row, column, f"empty {label}; a booking needs its first and last day"
                )
        start = self.layout.date(row, "start", "first day", self.formats)
        end = self.layout.date(row, "end", "last day", self.formats)
        if end < start:
            raise self.error(
                row, "end", f"last day {end:%d.%m.%Y} is before first day {start:%d.%m.%Y}"
            )
        self._check_kind(row)
        share = self._share(row)

        if not self.working_days:
            return
        day = max(start, self.working_days[0])
        last = min(end, self.working_days[-1])
        while day <= last:
            index = self.day_index.get(day)
            if index is not None:
                person.booked[index] += share
            day += timedelta(days=1)

    def _has_dates(self, row: TableRow) -> bool:
        return any(cell_text(self.layout.cell(row, column)) for column in ("start", "end"))

    def _check_roster_row(self, row: TableRow) -> None:
        """Reject a row that describes a booking but has no dates."""
        for column in ("kind", "percent", "hours"):
            if cell_text(self.layout.cell(row, column)):
                raise self.error(
                    row,
                    "start",
                    f"a booking without dates; fill {self.settings.columns.start!r} and "
                    f"{self.settings.columns.end!r}, or leave the whole booking empty to only "
                    "list the person",
                )

    def _check_kind(self, row: TableRow) -> None:
        kind = self.layout.optional_text(row, "kind")
        if kind is not None and kind.casefold() not in self.kinds:
            accepted = ", ".join(repr(word) for word in self.settings.booking_kinds)
            raise self.error(
                row,
                "kind",
                f"unknown kind of booking {kind!r}: expected one of {accepted} "
                "(add it to 'booking_kinds' in the adapter settings)",
            )

    def _share(self, row: TableRow) -> float:
        """Return the share of each working day that the row books: 1.0 for a whole day."""
        percent = cell_text(self.layout.cell(row, "percent"))
        hours = cell_text(self.layout.cell(row, "hours"))
        if percent and hours:
            raise self.error(
                row,
                "hours",
                f"both {self.settings.columns.percent!r} and {self.settings.columns.hours!r} "
                "are filled; give the booked part of the day in one of them",
            )
        if percent:
            return self._percent_share(row, percent)
        if hours:
            return self._hours_share(row)
        return 1.0

    def _percent_share(self, row: TableRow, text: str) -> float:
        # "50 %" and 50 are percentages. A value up to 1 without a sign is a fraction, because an
        # XLSX cell formatted as 50 % contains 0.5.
        value = parse_decimal(text.removesuffix("%").strip())
        if value is None:
            raise self.error(
                row,
                "percent",
                f"invalid share of the day {text!r}: expected a percentage such as 50 or 50 %, "
                "or a fraction such as 0,5",
            )
        share = value / 100 if text.endswith("%") or value > 1 else value
        if not 0 <= share <= 1:
            raise self.error(
                row, "percent", f"invalid share of the day {text!r}: must be from 0 to 100 %"
            )
        return share

    def _hours_share(self, row: TableRow) -> float:
        hours = self.layout.number(row, "hours", "hours per day", minimum=0)
        limit = self.settings.hours_per_day
        if hours > limit:
            raise self.error(
                row,
                "hours",
                f"{hours:g} hours is more than a working day of {limit:g} hours; give the hours "
                "booked on each working day, or change 'hours_per_day'",
            )
        return hours / limit

    def error(self, row: TableRow, field: str, message: str) -> ExportFormatError:
        return self.layout.error(row, field, message)
