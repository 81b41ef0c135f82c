"""One rule of the owner's policy: which resources it selects and how their offers are changed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from kooperant.protocol import COMMERCIAL_FIELDS, OPTIONAL_FIELDS, ResourceKind

MAX_DELAY_MINUTES = 7 * 24 * 60
"""The largest ``delay_minutes`` a rule may set, and so how long the state history must reach."""
MAX_HORIZON_DAYS = 366

ALL_FIELDS = "all"
"""The ``fields`` entry that stands for every optional field except the commercial ones."""


class Rounding(StrEnum):
    """Granularity of free time and state_since: 15min, hour, half_day, shift or day."""

    QUARTER_HOUR = "15min"
    HOUR = "hour"
    HALF_DAY = "half_day"
    SHIFT = "shift"
    DAY = "day"


def expand_fields(names: Iterable[str]) -> frozenset[str]:
    """Return the offer fields ``names`` permits, ``all`` standing for every non-commercial one."""
    expanded: set[str] = set()
    for name in names:
        if name == ALL_FIELDS:
            expanded.update(item for item in OPTIONAL_FIELDS if item not in COMMERCIAL_FIELDS)
        else:
            expanded.add(name)
    return frozenset(expanded)


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of the policy's ``share`` list and where it is written.

    A rule selects a resource when every selector it has matches: ``resources`` (ids),
    ``kinds`` and ``tags`` (tags of the agent config's ``resources.<id>.tags``, any one of them).
    An empty selector matches everything, and a loaded rule has at least one non-empty selector.
    """

    number: int
    """Position in the ``share`` list, counting from 1."""
    fields: frozenset[str]
    """Offer fields that may leave, with ``all`` already expanded."""
    resources: frozenset[str] = frozenset()
    kinds: frozenset[ResourceKind] = frozenset()
    tags: frozenset[str] = frozenset()
    publish_as: str | None = None
    """Public id used in the topic and payload instead of the single id in ``resources``."""
    name: str | None = None
    """Public display name replacing the offer's own name."""
    round: Rounding | None = None
    bands: Mapping[str, tuple[float, ...]] = field(default_factory=dict, hash=False)
    """Band edges per field: ``free_hours`` or an amount quantity."""
    horizon_days: int | None = None
    delay_minutes: int | None = None
    labels: Mapping[str, str] | None = field(default=None, hash=False)
    """Amount label renames; every label not listed here is dropped, also when this is ``None``."""
    audience: tuple[str, ...] | None = None
    """Sorted member ids that may see the offer; ``None`` is the whole cluster."""
    expires: date | datetime | None = None
    """A date (the share ends at the end of that local day) or a date-time with an offset."""
    accepts_requests: bool = True
    """Whether the offer takes capacity requests, from the rule's ``requests`` key."""
    source: Path | None = None
    line: int | None = None
    key_lines: Mapping[str, int] = field(default_factory=dict, hash=False, compare=False)
    """Line of each key of the rule in the policy file, e.g. ``{"expires": 12}``."""

    @property
    def key(self) -> str:
        """Key path of the rule in the policy file, e.g. ``share[0]`` for rule 1."""
        return f"share[{self.number - 1}]"

    def line_of(self, key: str) -> int | None:
        """Return the line of ``key`` in this rule, or the rule's own line if it is not known."""
        return self.key_lines.get(key, self.line)

    @property
    def location(self) -> str:
        """``file:line`` of the rule, or ``rule N`` when the rule was not read from a file."""
        if self.source is None:
            return f"rule {self.number}"
        if self.line is None:
            return str(self.source)
        return f"{self.source}:{self.line}"

    def matches(self, resource: str, kind: ResourceKind, tags: frozenset[str]) -> bool:
        """Return whether every selector of the rule matches this resource."""
        if self.resources and resource not in self.resources:
            return False
        if self.kinds and kind not in self.kinds:
            return False
        return not self.tags or not self.tags.isdisjoint(tags)

    def public_id(self, resource: str) -> str:
        """Return the id ``resource`` is published under by this rule."""
        return self.publish_as or resource

    def expires_at(self, zone: ZoneInfo) -> datetime | None:
        """Return the moment the share ends; a plain date ends at midnight after it in ``zone``."""
        if self.expires is None:
            return None
        if isinstance(self.expires, datetime):
            return self.expires
        next_day = self.expires + timedelta(days=1)
        return datetime.combine(next_day, time(0), tzinfo=zone)

    def expired(self, now: datetime, zone: ZoneInfo) -> bool:
        """Return whether the share ended at or before ``now``."""
        end = self.expires_at(zone)
        return end is not None and now >= end
