"""The ``it_team`` adapter: free person-days per skill from an IT team's calendar export.

Every new version of the export is read once it has stopped changing, and each team becomes a
``ResourceAmounts`` of kind ``it_team`` with one ``person_days`` amount per skill, counted over the
next ``horizon_days`` from today in the agent's time zone. Because the count starts today, the
current file is parsed again when the date changes. The settings and the parser
``read_team_calendar`` live in ``adapters.it_team_calendar``.

Until the calendar has been read once, IT team offers are withheld, because without it they would
show no free days at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

from adapters.base import Observation
from adapters.exports.adapter import ExportAdapter
from adapters.it_team_calendar import Horizon, ItTeamColumns, ItTeamSettings, read_team_calendar
from kooperant.protocol import ResourceKind

__all__ = ["Horizon", "ItTeamAdapter", "ItTeamColumns", "ItTeamSettings", "read_team_calendar"]


class ItTeamAdapter(ExportAdapter[ItTeamSettings]):
    """Follow an IT team calendar export and report the team's free person-days per skill."""

    settings_model = ItTeamSettings
    export_description = "IT team calendar"
    withheld_until_read = frozenset({ResourceKind.IT_TEAM})

    _parsed_for: date | None = None
    """First day of the horizon of the last parse, whether or not the parse succeeded."""

    def today(self) -> date:
        """Return the current date in the agent's time zone, by the context's clock."""
        return self.context.clock().astimezone(self.context.timezone).date()

    async def poll(self) -> None:
        if self._parsed_for is not None and self._parsed_for != self.today():
            self.request_reparse()
        await super().poll()

    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        today = self.today()
        self._parsed_for = today
        horizon = Horizon(today, self.settings.horizon_days, frozenset(self.settings.holidays))
        return list(read_team_calendar(files["path"], self.settings, horizon))
