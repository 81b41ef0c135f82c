"""The policy's transformations, with a fixed clock and a two-shift calendar in Warsaw.

The calendar has two shifts, Monday to Friday 06:00-14:00 and 14:00-22:00. The clock is Monday
2 March 2026, 09:20 in Warsaw (08:20 UTC). Expected intervals are written in local time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.calendar import Shift, WorkingCalendar
from agent.policy import Policy, PolicyContext, Rounding, Rule, StateHistory
from agent.policy.rounding import ceil_to_grid, floor_to_grid
from agent.policy.transform import to_band
from kooperant.intervals import Interval
from kooperant.protocol import Amount, Band, MachineState, Offer, ResourceKind

WARSAW = ZoneInfo("Europe/Warsaw")
WEEKDAYS = frozenset(range(5))
CALENDAR = WorkingCalendar(
    WARSAW, (Shift(WEEKDAYS, time(6), time(14)), Shift(WEEKDAYS, time(14), time(22)))
)
MONDAY = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 8, 20, tzinfo=UTC)
ALL_MACHINE_FIELDS = frozenset(
    {"name", "state", "state_since", "horizon", "free_hours", "free_intervals", "amounts"}
)


def local(day: int, wall: str) -> datetime:
    """Return the UTC moment of ``wall`` (HH:MM) in Warsaw, ``day`` days after Monday 2 March."""
    moment = datetime.combine(MONDAY + timedelta(days=day), time.fromisoformat(wall), WARSAW)
    return moment.astimezone(UTC)


def span(day: int, start: str, end: str) -> Interval:
    return Interval(local(day, start), local(day, end))


# Monday from now to the end of the second shift, Tuesday with a gap 10:07-12:00, Wednesday with
# a gap 14:00-15:30, Thursday entirely free.
FREE = (
    span(0, "09:20", "22:00"),
    span(1, "06:00", "10:07"),
    span(1, "12:00", "22:00"),
    span(2, "06:00", "14:00"),
    span(2, "15:30", "22:00"),
    span(3, "06:00", "22:00"),
)
HORIZON = Interval(NOW, NOW + timedelta(days=14))


def machine_offer(
    free: Sequence[Interval] = FREE,
    state: MachineState | None = MachineState.EXECUTING,
    since: datetime | None = None,
    amounts: tuple[Amount, ...] | None = None,
) -> Offer:
    return Offer(
        cluster="pomorskie-metal",
        member="acme",
        resource="cnc-1",
        kind=ResourceKind.MACHINE,
        generated_at=NOW,
        name="DMU 50",
        state=state,
        state_since=since if since is not None else local(0, "07:53"),
        horizon=HORIZON,
        free_hours=sum(interval.hours for interval in free),
        free_intervals=tuple(free),
        amounts=amounts,
    )


def context(history: StateHistory | None = None, now: datetime = NOW) -> PolicyContext:
    return PolicyContext(now=now, calendar=CALENDAR, zone=WARSAW, history=history)


def shared(rule: Rule, offer: Offer | None = None, history: StateHistory | None = None) -> Offer:
    decision = Policy([rule]).decide(offer or machine_offer(), context(history))
    assert decision.offer is not None, decision.reason
    return decision.offer


def rule(**options: object) -> Rule:
    fields = options.pop("fields", ALL_MACHINE_FIELDS)
    assert isinstance(fields, frozenset)
    return Rule(1, fields, resources=frozenset({"cnc-1"}), **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        pytest.param(
            Rounding.QUARTER_HOUR,
            [
                span(0, "09:30", "22:00"),
                span(1, "06:00", "10:00"),
                span(1, "12:00", "22:00"),
                span(2, "06:00", "14:00"),
                span(2, "15:30", "22:00"),
                span(3, "06:00", "22:00"),
            ],
            id="15min",
        ),
        pytest.param(
            Rounding.HOUR,
            [
                span(0, "10:00", "22:00"),
                span(1, "06:00", "10:00"),
                span(1, "12:00", "22:00"),
                span(2, "06:00", "14:00"),
                span(2, "16:00", "22:00"),
                span(3, "06:00", "22:00"),
            ],
            id="hour",
        ),
        pytest.param(
            Rounding.SHIFT,
            [
                span(0, "14:00", "22:00"),
                span(1, "14:00", "22:00"),
                span(2, "06:00", "14:00"),
                span(3, "06:00", "22:00"),
            ],
            id="shift",
        ),
        pytest.param(
            Rounding.HALF_DAY,
            [
                span(0, "12:00", "22:00"),
                span(1, "12:00", "22:00"),
                span(2, "06:00", "12:00"),
                span(3, "06:00", "22:00"),
            ],
            id="half_day",
        ),
        pytest.param(Rounding.DAY, [span(3, "06:00", "22:00")], id="day"),
    ],
)
def test_round_free_intervals(rounding: Rounding, expected: list[Interval]) -> None:
    offer = shared(rule(round=rounding))

    assert offer.free_intervals == tuple(expected)
    assert offer.free_hours == pytest.approx(sum(interval.hours for interval in expected))


@pytest.mark.parametrize(
    ("rounding", "since", "expected"),
    [
        (Rounding.QUARTER_HOUR, local(0, "07:53"), local(0, "07:45")),
        (Rounding.HOUR, local(0, "07:53"), local(0, "07:00")),
        (Rounding.HALF_DAY, local(0, "07:53"), local(0, "00:00")),
        (Rounding.HALF_DAY, local(0, "15:10"), local(0, "12:00")),
        (Rounding.SHIFT, local(0, "07:53"), local(0, "06:00")),
        (Rounding.SHIFT, local(0, "15:10"), local(0, "14:00")),
        (Rounding.SHIFT, local(5, "10:37"), local(5, "10:00")),
        (Rounding.DAY, local(0, "15:10"), local(0, "00:00")),
    ],
    ids=["15min", "hour", "half_day-am", "half_day-pm", "shift-1", "shift-2", "shift-off", "day"],
)
def test_round_state_since_down(rounding: Rounding, since: datetime, expected: datetime) -> None:
    offer = shared(rule(round=rounding), machine_offer(since=since))

    assert offer.state_since == expected


@pytest.mark.parametrize(
    ("rounding", "start", "end"),
    [
        (Rounding.QUARTER_HOUR, local(0, "09:15"), local(14, "09:30")),
        (Rounding.HOUR, local(0, "09:00"), local(14, "10:00")),
        (Rounding.HALF_DAY, local(0, "00:00"), local(15, "00:00")),
        (Rounding.SHIFT, local(0, "00:00"), local(15, "00:00")),
        (Rounding.DAY, local(0, "00:00"), local(15, "00:00")),
    ],
    ids=["15min", "hour", "half_day", "shift", "day"],
)
def test_round_widens_horizon(rounding: Rounding, start: datetime, end: datetime) -> None:
    offer = shared(rule(round=rounding))

    assert offer.horizon == Interval(start, end)


def test_horizon_days_clips_free_time() -> None:
    offer = shared(rule(horizon_days=2))

    assert offer.free_intervals == (
        span(0, "09:20", "22:00"),
        span(1, "06:00", "10:07"),
        span(1, "12:00", "22:00"),
        span(2, "06:00", "09:20"),
    )
    assert offer.horizon == Interval(NOW, local(2, "09:20"))
    assert offer.free_hours == pytest.approx(12 + 40 / 60 + 4 + 7 / 60 + 10 + 3 + 20 / 60)


def test_horizon_days_then_round_hour() -> None:
    offer = shared(rule(horizon_days=2, round=Rounding.HOUR))

    assert offer.free_intervals == (
        span(0, "10:00", "22:00"),
        span(1, "06:00", "10:00"),
        span(1, "12:00", "22:00"),
        span(2, "06:00", "09:00"),
    )
    assert offer.horizon == Interval(local(0, "09:00"), local(2, "10:00"))
    assert offer.free_hours == 29.0


def test_horizon_beyond_offer_keeps_it() -> None:
    offer = shared(rule(horizon_days=30))

    assert offer.free_intervals == FREE
    assert offer.horizon == HORIZON


def test_free_hours_recomputed_without_intervals() -> None:
    fields = frozenset({"free_hours"})

    offer = shared(rule(round=Rounding.SHIFT, fields=fields))

    assert offer.free_hours == 40.0
    assert offer.free_intervals is None


@pytest.mark.parametrize(
    ("value", "edges", "expected"),
    [
        (0.0, (0, 8, 20), Band(0, 8)),
        (7.99, (0, 8, 20), Band(0, 8)),
        (8.0, (0, 8, 20), Band(8, 20)),
        (19.5, (0, 8, 20), Band(8, 20)),
        (20.0, (0, 8, 20), Band(20, None)),
        (1000.0, (0, 8, 20), Band(20, None)),
        (3.0, (5, 10), Band(0, 5)),
        (5.0, (5,), Band(5, None)),
        (-1.0, (0, 5), Band(0, 5)),
        (-1.0, (0,), Band(0, None)),
    ],
)
def test_band_of_value(value: float, edges: tuple[float, ...], expected: Band) -> None:
    assert to_band(value, edges) == expected


def test_free_hours_band_replaces_hours() -> None:
    offer = shared(rule(round=Rounding.SHIFT, bands={"free_hours": (0, 8, 20, 40, 80)}))

    assert offer.free_hours is None
    assert offer.free_hours_band == Band(40, 80)


def test_free_hours_band_unlisted_stays_out() -> None:
    fields = frozenset({"name"})

    offer = shared(rule(bands={"free_hours": (0, 8)}, fields=fields))

    assert offer.free_hours is None
    assert offer.free_hours_band is None


AMOUNTS = (
    Amount("disk_free", 120.5, "GiB", label="/"),
    Amount("disk_free", 512.0, "GiB", label="/srv/kadry"),
    Amount("pallet_places", 137.0, "places"),
)


def test_amount_band_replaces_value() -> None:
    banded = rule(bands={"pallet_places": (0, 50, 100, 200)}, labels={"/": "/"})
    offer = shared(banded, machine_offer(amounts=AMOUNTS))

    assert offer.amounts is not None
    assert offer.amounts[2] == Amount("pallet_places", None, "places", band=Band(100, 200))
    assert offer.amounts[0] == AMOUNTS[0]


def test_band_notes_open_and_closed() -> None:
    banded = rule(
        bands={"free_hours": (0, 8), "pallet_places": (0, 50, 100, 200)},
        fields=frozenset({"free_hours", "amounts"}),
    )

    decision = Policy([banded]).decide(machine_offer(amounts=AMOUNTS[2:]), context())

    assert [(note.code, dict(note.values)) for note in decision.notes] == [
        ("band.amount", {"quantity": "pallet_places", "min": "100", "max": "200"}),
        ("band.free_hours.open", {"min": "8"}),
    ]
    assert decision.transformations == (
        "amount pallet_places shown as the band [100, 200)",
        "free_hours shown as the band 8 or more",
    )


def test_labels_renamed_or_dropped() -> None:
    offer = shared(rule(labels={"/": "system"}), machine_offer(amounts=AMOUNTS))

    assert offer.amounts is not None
    assert [amount.label for amount in offer.amounts] == ["system", None, None]
    assert [amount.value for amount in offer.amounts] == [120.5, 512.0, 137.0]


def test_labels_unset_drops_labels() -> None:
    offer = shared(rule(), machine_offer(amounts=AMOUNTS))

    assert offer.amounts is not None
    assert [amount.label for amount in offer.amounts] == [None, None, None]
    assert [amount.value for amount in offer.amounts] == [120.5, 512.0, 137.0]


def history_of_states() -> StateHistory:
    history = StateHistory()
    history.record("cnc-1", MachineState.EXECUTING, local(0, "09:00"))
    history.record("cnc-1", MachineState.NOT_EXECUTING, local(0, "09:10"))
    return history


@pytest.mark.parametrize(
    ("minutes", "state", "since"),
    [
        (5, MachineState.NOT_EXECUTING, local(0, "09:10")),
        (10, MachineState.NOT_EXECUTING, local(0, "09:10")),
        (15, MachineState.EXECUTING, local(0, "09:00")),
        (20, MachineState.EXECUTING, local(0, "09:00")),
        (21, None, None),
    ],
)
def test_delay_shows_older_state(
    minutes: int, state: MachineState | None, since: datetime | None
) -> None:
    offer = machine_offer(state=MachineState.NOT_EXECUTING, since=local(0, "09:10"))

    public = shared(rule(delay_minutes=minutes), offer, history_of_states())

    assert public.state == state
    assert public.state_since == since


def test_delay_without_history_omits_state() -> None:
    public = shared(rule(delay_minutes=5))

    assert public.state is None
    assert public.state_since is None


def test_delay_then_round_state_since() -> None:
    offer = machine_offer(state=MachineState.NOT_EXECUTING, since=local(0, "09:10"))

    public = shared(rule(delay_minutes=15, round=Rounding.HOUR), offer, history_of_states())

    assert public.state is MachineState.EXECUTING
    assert public.state_since == local(0, "09:00")


def test_hour_grid_is_local_time() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    moment = datetime(2026, 3, 2, 8, 20, tzinfo=UTC)

    assert floor_to_grid(moment, 60, kolkata) == datetime(2026, 3, 2, 7, 30, tzinfo=UTC)
    assert ceil_to_grid(moment, 60, kolkata) == datetime(2026, 3, 2, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize("minutes", [15, 60, 720, 1440])
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 10, 25, 0, 50, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 10, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 5, tzinfo=UTC),
    ],
    ids=["fall-back-cest", "fall-back-cet", "spring-forward"],
)
def test_grid_around_clock_change(moment: datetime, minutes: int) -> None:
    floor = floor_to_grid(moment, minutes, WARSAW)
    ceil = ceil_to_grid(moment, minutes, WARSAW)

    assert floor <= moment <= ceil
    for rounded in (floor, ceil):
        wall = rounded.astimezone(WARSAW)
        assert (wall.hour * 60 + wall.minute) % minutes == 0, wall
        assert wall.second == 0


def test_notes_name_each_change() -> None:
    declared = rule(
        round=Rounding.SHIFT,
        horizon_days=7,
        bands={"free_hours": (0, 8, 20, 40, 80)},
        audience=("formy-sa", "metal-works"),
        expires=date(2026, 3, 31),
    )

    decision = Policy([declared]).decide(machine_offer(), context())

    assert decision.transformations == (
        "free time limited to 7 days from now",
        "free_intervals rounded to shift",
        "free_hours recomputed from the changed intervals: 40 h",
        "horizon widened to the day grid",
        "state_since rounded down to shift",
        "free_hours shown as the band [40, 80)",
        "visible only to formy-sa, metal-works",
        "share ends at 2026-04-01T00:00:00+02:00",
    )


def test_notes_skip_unlisted_fields() -> None:
    declared = rule(round=Rounding.HOUR, labels={"/": "system"}, fields=frozenset({"name"}))

    decision = Policy([declared]).decide(machine_offer(amounts=AMOUNTS), context())

    assert decision.transformations == ()
