"""Notes on what a rule changed in an offer, for ``kooperant agent preview``.

Each note has a code and its values. ``Note.english`` fills the English template below; the
preview command keeps a Polish text under the same code in its message catalogue. Values are
numbers, ids and option values such as ``shift``, never English prose, so a Polish note contains
no English. An open band therefore has a code of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Counts of one take the singular: see ``Note.english``.
_ENGLISH_SINGULAR: Mapping[str, str] = {
    "horizon": "free time limited to 1 day from now",
    "delay": "state and state_since as they were 1 minute ago",
    "delay.unknown": "state and state_since left out: no state known for 1 minute ago",
}
ENGLISH_TEMPLATES: Mapping[str, str] = {
    "publish_as": "published as {public_id}",
    "name": "name replaced by {name!r}",
    "horizon": "free time limited to {days} days from now",
    "round.intervals": "free_intervals rounded to {rounding}",
    "round.state_since": "state_since rounded down to {rounding}",
    "round.horizon": "horizon widened to the {grid} grid",
    "free_hours.recomputed": "free_hours recomputed from the changed intervals: {hours} h",
    "band.free_hours": "free_hours shown as the band [{min}, {max})",
    "band.free_hours.open": "free_hours shown as the band {min} or more",
    "band.amount": "amount {quantity} shown as the band [{min}, {max})",
    "band.amount.open": "amount {quantity} shown as the band {min} or more",
    "delay": "state and state_since as they were {minutes} minutes ago",
    "delay.unknown": "state and state_since left out: no state known for {minutes} minutes ago",
    "labels.renamed": "amount label {label!r} renamed to {public_label!r}",
    "labels.dropped": "amount label {label!r} dropped",
    "audience": "visible only to {members}",
    "expires": "share ends at {expires_at}",
    "requests.off": "capacity requests switched off: the aggregator rejects them",
}


@dataclass(frozen=True, slots=True)
class Note:
    """One change a rule made, as a message code and the values that fill its text."""

    code: str
    values: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def english(self) -> str:
        count = self.values.get("days", self.values.get("minutes"))
        if count == "1" and self.code in _ENGLISH_SINGULAR:
            return _ENGLISH_SINGULAR[self.code]
        return ENGLISH_TEMPLATES[self.code].format(**self.values)
