"""The changes a rule makes to an offer before it leaves: ids, free time, state, amounts, bands.

``transform_offer`` applies every option of the rule to the whole offer, so that ``free_hours``
can be recomputed from intervals the rule does not share. The caller then removes the fields the
rule does not list. Notes are made only for fields the rule lists, because the others never leave.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from agent.policy.context import PolicyContext
from agent.policy.notes import Note
from agent.policy.rounding import horizon_grid, round_down, round_free_time, widen_horizon
from agent.policy.rules import Rule
from kooperant.intervals import Interval, clip, total_hours
from kooperant.protocol import Amount, Band, Offer

FREE_HOURS = "free_hours"


def transform_offer(offer: Offer, rule: Rule, context: PolicyContext) -> tuple[Offer, list[Note]]:
    """Return ``offer`` changed as ``rule`` declares, with notes on the fields it lists."""
    notes: list[Note] = []
    changes: dict[str, Any] = {}

    changes["resource"] = rule.public_id(offer.resource)
    if rule.publish_as is not None:
        notes.append(Note("publish_as", {"public_id": rule.publish_as}))
    if rule.name is not None and "name" in rule.fields:
        changes["name"] = rule.name
        notes.append(Note("name", {"name": rule.name}))

    changes.update(_free_time(offer, rule, context, notes))
    changes.update(_state(offer, rule, context, notes))
    if offer.amounts is not None:
        changes["amounts"] = _amounts(offer.amounts, rule, notes)
    changes.update(_free_hours_band(changes.get(FREE_HOURS, offer.free_hours), rule, notes))

    changes["audience"] = rule.audience
    if rule.audience is not None:
        notes.append(Note("audience", {"members": ", ".join(rule.audience)}))
    changes["expires_at"] = rule.expires_at(context.zone)
    if changes["expires_at"] is not None:
        notes.append(Note("expires", {"expires_at": changes["expires_at"].isoformat()}))
    changes["accepts_requests"] = rule.accepts_requests
    if not rule.accepts_requests:
        notes.append(Note("requests.off"))
    # Several amounts may share a label, and each rename is worth one note.
    return dataclasses.replace(offer, **changes), list(dict.fromkeys(notes))


def to_band(value: float, edges: Sequence[float]) -> Band:
    """Return the band of ``edges`` that contains ``value``.

    ``Band(e[i], e[i+1])`` contains ``e[i] <= value < e[i+1]``; a value at or above the last edge
    gets ``Band(last, None)``. A value below the first edge gets ``Band(0, first)``, unless the
    first edge is 0, when a negative value falls into the first band.
    """
    if value < edges[0] and edges[0] > 0:
        return Band(0.0, edges[0])
    index = max(bisect.bisect_right(edges, value) - 1, 0)
    upper = edges[index + 1] if index + 1 < len(edges) else None
    return Band(edges[index], upper)


def _free_time(
    offer: Offer, rule: Rule, context: PolicyContext, notes: list[Note]
) -> dict[str, Any]:
    if rule.round is None and rule.horizon_days is None:
        return {}
    changes: dict[str, Any] = {}
    limit = None if rule.horizon_days is None else context.now + timedelta(days=rule.horizon_days)

    if limit is not None and _lists_any(rule, "free_intervals", FREE_HOURS, "horizon"):
        notes.append(Note("horizon", {"days": str(rule.horizon_days)}))

    if offer.free_intervals is not None:
        intervals = list(offer.free_intervals)
        if limit is not None:
            intervals = clip(intervals, Interval(context.now, max(limit, context.now)))
        if rule.round is not None:
            intervals = round_free_time(intervals, rule.round, context.calendar)
            if "free_intervals" in rule.fields:
                notes.append(Note("round.intervals", {"rounding": rule.round.value}))
        changes["free_intervals"] = tuple(intervals)
        changes[FREE_HOURS] = total_hours(intervals)
        if FREE_HOURS in rule.fields and changes[FREE_HOURS] != offer.free_hours:
            hours = f"{changes[FREE_HOURS]:g}"
            notes.append(Note("free_hours.recomputed", {"hours": hours}))

    if offer.horizon is not None:
        horizon = offer.horizon
        if limit is not None:
            horizon = Interval(horizon.start, max(horizon.start, min(horizon.end, limit)))
        if rule.round is not None:
            horizon = widen_horizon(horizon, rule.round, context.zone)
            if horizon != offer.horizon and "horizon" in rule.fields:
                notes.append(Note("round.horizon", {"grid": horizon_grid(rule.round)}))
        changes["horizon"] = horizon
    return changes


def _state(offer: Offer, rule: Rule, context: PolicyContext, notes: list[Note]) -> dict[str, Any]:
    listed = _lists_any(rule, "state", "state_since")
    state = offer.state
    since = offer.state_since

    if rule.delay_minutes is not None and (state is not None or since is not None):
        minutes = str(rule.delay_minutes)
        moment = context.now - timedelta(minutes=rule.delay_minutes)
        found = (
            None if context.history is None else context.history.state_at(offer.resource, moment)
        )
        state, since = found if found is not None else (None, None)
        if listed:
            notes.append(Note("delay" if found else "delay.unknown", {"minutes": minutes}))

    if rule.round is not None and since is not None:
        rounded = round_down(since, rule.round, context.calendar)
        if rounded != since and "state_since" in rule.fields:
            notes.append(Note("round.state_since", {"rounding": rule.round.value}))
        since = rounded
    return {"state": state, "state_since": since}


def _amounts(amounts: Sequence[Amount], rule: Rule, notes: list[Note]) -> tuple[Amount, ...]:
    listed = "amounts" in rule.fields
    result = []
    for amount in amounts:
        # Labels name internal things (mount points, halls, people), so only mapped ones leave.
        label = amount.label
        if amount.label is not None:
            label = (rule.labels or {}).get(amount.label)
            if listed and label is None:
                notes.append(Note("labels.dropped", {"label": amount.label}))
            elif listed and label is not None:
                values = {"label": amount.label, "public_label": label}
                notes.append(Note("labels.renamed", values))

        edges = rule.bands.get(amount.quantity)
        if edges is not None and amount.value is not None:
            band = to_band(amount.value, edges)
            result.append(Amount(amount.quantity, None, amount.unit, label, band))
            if listed:
                notes.append(_band_note("band.amount", band, quantity=amount.quantity))
        else:
            result.append(dataclasses.replace(amount, label=label))
    return tuple(result)


def _free_hours_band(hours: float | None, rule: Rule, notes: list[Note]) -> dict[str, Any]:
    edges = rule.bands.get(FREE_HOURS)
    if edges is None or hours is None:
        return {}
    band = to_band(hours, edges)
    if FREE_HOURS in rule.fields:
        notes.append(_band_note("band.free_hours", band))
    return {FREE_HOURS: None, "free_hours_band": band}


def _lists_any(rule: Rule, *fields: str) -> bool:
    return not rule.fields.isdisjoint(fields)


def _band_note(code: str, band: Band, **values: str) -> Note:
    """Return the note that a value is shown as ``band``; an open band gets ``code.open``."""
    values["min"] = f"{band.min:g}"
    if band.max is None:
        return Note(f"{code}.open", values)
    values["max"] = f"{band.max:g}"
    return Note(code, values)
