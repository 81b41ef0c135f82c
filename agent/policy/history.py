"""Past machine states, so that a rule with ``delay_minutes`` can show an older state.

The runner records the state and ``state_since`` of every machine offer in each cycle. A rule
with ``delay_minutes: 30`` then shows the state that was in force 30 minutes ago, which hides
exactly when a machine stopped or started. The history lives in memory only, so after a restart
the agent knows no earlier state and such a rule leaves state and state_since out until enough
time has passed.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime

from kooperant.protocol import MachineState


class StateHistory:
    """Machine states per resource, each with the moment it began, sorted by that moment."""

    def __init__(self) -> None:
        self._changes: dict[str, list[tuple[datetime, MachineState]]] = {}

    def record(self, resource: str, state: MachineState, since: datetime) -> None:
        """Store that ``resource`` is in ``state`` from ``since`` on.

        Recording the same state and ``since`` again, as every cycle does, changes nothing.
        A later change recorded with an earlier ``since`` replaces the changes after it,
        because the source has corrected its own history.
        """
        since = since.astimezone(UTC)
        changes = self._changes.setdefault(resource, [])
        index = bisect.bisect_right(changes, since, key=lambda change: change[0])
        if index > 0 and changes[index - 1] == (since, state):
            return
        if index > 0 and changes[index - 1][0] == since:
            index -= 1
        del changes[index:]
        changes.append((since, state))

    def state_at(self, resource: str, moment: datetime) -> tuple[MachineState, datetime] | None:
        """Return the state in force at ``moment`` and when it began, or None if unknown."""
        changes = self._changes.get(resource, [])
        index = bisect.bisect_right(changes, moment.astimezone(UTC), key=lambda change: change[0])
        if index == 0:
            return None
        since, state = changes[index - 1]
        return state, since

    def prune(self, before: datetime) -> None:
        """Forget the states that ended before ``before``; ``state_at`` from then on is kept."""
        before = before.astimezone(UTC)
        for resource, changes in list(self._changes.items()):
            index = bisect.bisect_right(changes, before, key=lambda change: change[0])
            if index > 1:
                del changes[: index - 1]
            if not changes:
                del self._changes[resource]
