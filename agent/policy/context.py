"""What a policy decision depends on besides the offer itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from agent.calendar import WorkingCalendar
from agent.policy.history import StateHistory


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """What a decision depends on besides the offer: the time, the calendar and the tags."""

    now: datetime
    calendar: WorkingCalendar
    zone: ZoneInfo
    tags: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """Tags of each internal resource id, from the agent config's ``resources.<id>.tags``."""
    history: StateHistory | None = None
    """Past machine states, needed by rules with ``delay_minutes``."""
    reading: datetime | None = None
    """The exact clock reading, at which expiry is judged; ``None`` means ``now``.

    ``now`` may be rounded for stable offers, but a share must end when its time comes.
    """

    @property
    def expiry_moment(self) -> datetime:
        """The moment at which a rule's expiry is judged."""
        return self.reading if self.reading is not None else self.now
