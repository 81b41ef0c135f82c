"""Properties of Policy.decide for arbitrary offers and arbitrary valid rules (hypothesis).

Whatever the offer and the rules, a payload contains only the envelope and the fields the
applying rule permits, and commercial fields only when the rule names them. Every value is
transformed as declared. Rounded free time lies inside the original free time and on the grid or
block boundaries, horizon-limited time lies inside [now, now + N days), and bands contain the
true value. A resource no rule matches produces no offer.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.calendar import Shift, WorkingCalendar
from agent.policy import ALL_FIELDS, Policy, PolicyContext, Rounding, Rule, StateHistory
from agent.policy.rules import expand_fields
from agent.policy.transform import to_band
from kooperant.intervals import Interval, normalize, subtract, total_hours
from kooperant.protocol import (
    COMMERCIAL_FIELDS,
    OPTIONAL_FIELDS,
    Amount,
    Band,
    MachineState,
    Offer,
    Price,
    ResourceKind,
)

WARSAW = ZoneInfo("Europe/Warsaw")
WEEKDAYS = frozenset(range(5))
CALENDAR = WorkingCalendar(
    WARSAW, (Shift(WEEKDAYS, time(6), time(14)), Shift(WEEKDAYS, time(14), time(22)))
)
# A plain Monday, and a Friday two days before clocks go back (25 October 2026).
CLOCKS = (datetime(2026, 3, 2, 8, 20, tzinfo=UTC), datetime(2026, 10, 23, 13, 7, tzinfo=UTC))
HORIZON_DAYS = 14
RESOURCES = ("cnc-1", "laser-2", "mag-3", "blacha-4")
TAGS = ("hala-a", "nadwyzki")
QUANTITIES = ("disk_free", "pallet_places", "sheets")
LABELS = ("/", "/data", "Jan Kowalski")
ENVELOPE = {"schema", "cluster", "member", "resource", "kind", "generated_at"}
ALWAYS_WHEN_SET = {"audience", "expires_at", "accepts_requests"}
GRID_MINUTES = {Rounding.QUARTER_HOUR: 15, Rounding.HOUR: 60}
# A drawn rule and the field names it lists before ``all`` is expanded.
Drawn = tuple[Rule, frozenset[str]]


@st.composite
def free_time(draw: st.DrawFn, now: datetime) -> tuple[Interval, ...]:
    """Whole shifts of the horizon, some left out, minus a few orders of arbitrary length."""
    horizon = Interval(now, now + timedelta(days=HORIZON_DAYS))
    shifts = CALENDAR.working_intervals(horizon)
    kept_shifts = [shift for shift in shifts if draw(st.booleans())]
    orders = draw(
        st.lists(st.tuples(st.integers(0, HORIZON_DAYS * 1440), st.integers(1, 2000)), max_size=5)
    )
    busy = [
        Interval(now + timedelta(minutes=start), now + timedelta(minutes=start + length))
        for start, length in orders
    ]
    return tuple(subtract(kept_shifts, busy))


amounts = st.lists(
    st.builds(
        Amount,
        quantity=st.sampled_from(QUANTITIES),
        # Whole numbers too, so that values fall exactly on band edges.
        value=st.floats(0, 5000, allow_nan=False) | st.integers(0, 400).map(float),
        unit=st.just("u"),
        label=st.none() | st.sampled_from(LABELS),
    ),
    max_size=4,
).map(lambda items: tuple(items) or None)


@st.composite
def offers(draw: st.DrawFn, now: datetime) -> Offer:
    free = draw(free_time(now))
    since = now - timedelta(minutes=draw(st.integers(0, 3000)))
    return Offer(
        cluster="pomorskie-metal",
        member="acme",
        resource=draw(st.sampled_from(RESOURCES)),
        kind=draw(st.sampled_from(list(ResourceKind))),
        generated_at=now,
        name=draw(st.none() | st.just("Nazwa")),
        capabilities=draw(st.none() | st.just(("cnc-milling",))),
        state=draw(st.none() | st.sampled_from(list(MachineState))),
        state_since=draw(st.none() | st.just(since)),
        horizon=Interval(now, now + timedelta(days=HORIZON_DAYS)),
        free_hours=total_hours(free),
        free_intervals=free,
        amounts=draw(amounts),
        price=draw(st.none() | st.just(Price(42.5, "PLN", "sheet"))),
        suppliers=draw(st.none() | st.just(("huta-a",))),
        customers=draw(st.none() | st.just(("stocznia-b",))),
    )


def band_edges() -> st.SearchStrategy[tuple[float, ...]]:
    # Multiples of 8 as well, the free hours of whole shifts, so that hours fall on edges.
    edge = st.integers(0, 400) | st.integers(0, 50).map(lambda value: value * 8)
    edges = st.lists(edge, min_size=1, max_size=5, unique=True)
    return edges.map(lambda values: tuple(float(value) for value in sorted(values)))


@st.composite
def rules(draw: st.DrawFn, number: int, now: datetime) -> Drawn:
    """Return a valid rule and the field names it lists, before ``all`` is expanded."""
    resources = frozenset(draw(st.sets(st.sampled_from(RESOURCES), max_size=2)))
    kinds = frozenset(draw(st.sets(st.sampled_from(list(ResourceKind)), max_size=2)))
    tags = frozenset(draw(st.sets(st.sampled_from(TAGS), max_size=1)))
    if not (resources or kinds or tags):
        kinds = frozenset(ResourceKind)
    listed = frozenset(draw(st.sets(st.sampled_from((ALL_FIELDS, *OPTIONAL_FIELDS)))))
    bands = draw(
        st.dictionaries(st.sampled_from(("free_hours", *QUANTITIES)), band_edges(), max_size=2)
    )
    labels = draw(st.none() | st.dictionaries(st.sampled_from(LABELS), st.just("public")))
    audience = draw(st.none() | st.just(("formy-sa", "metal-works")))
    expiry_days = draw(st.none() | st.integers(-3, 3))
    expires = None if expiry_days is None else (now + timedelta(days=expiry_days)).date()
    one_id = len(resources) == 1 and draw(st.booleans())
    rule = Rule(
        number,
        expand_fields(listed),
        resources=resources,
        kinds=kinds,
        tags=tags,
        publish_as="publiczny" if one_id else None,
        name=draw(st.none() | st.just("Publiczna nazwa")),
        round=draw(st.none() | st.sampled_from(list(Rounding))),
        bands=bands,
        horizon_days=draw(st.none() | st.integers(1, HORIZON_DAYS + 2)),
        delay_minutes=draw(st.none() | st.integers(1, 600)),
        labels=labels,
        audience=audience,
        expires=expires,
    )
    return rule, listed


@st.composite
def cases(draw: st.DrawFn) -> tuple[Offer, list[Drawn], PolicyContext]:
    now = draw(st.sampled_from(CLOCKS))
    offer = draw(offers(now))
    drawn = [draw(rules(number, now)) for number in range(1, draw(st.integers(0, 3)) + 1)]
    tags = {resource: frozenset(draw(st.sets(st.sampled_from(TAGS)))) for resource in RESOURCES}
    history = StateHistory()
    for minutes_ago in sorted(draw(st.sets(st.integers(0, 900), max_size=4)), reverse=True):
        state = draw(st.sampled_from(list(MachineState)))
        history.record(offer.resource, state, now - timedelta(minutes=minutes_ago))
    context = PolicyContext(now=now, calendar=CALENDAR, zone=WARSAW, tags=tags, history=history)
    return offer, drawn, context


def applying_rule(
    offer: Offer, drawn: list[Drawn], context: PolicyContext
) -> tuple[list[Drawn], Drawn | None]:
    """Return the drawn rules matching ``offer`` and the first of them not expired."""
    tags = context.tags.get(offer.resource, frozenset())
    matching = [item for item in drawn if item[0].matches(offer.resource, offer.kind, tags)]
    active = [item for item in matching if not item[0].expired(context.now, context.zone)]
    return matching, (active[0] if active else None)


def local_minutes(moment: datetime) -> int:
    wall = moment.astimezone(WARSAW)
    return wall.hour * 60 + wall.minute


def inside(intervals: tuple[Interval, ...], outer: tuple[Interval, ...]) -> bool:
    return not subtract(intervals, outer)


def block_boundaries(rounding: Rounding) -> tuple[set[int], set[int]]:
    """Local minutes of the day where a block of ``rounding`` may start and end."""
    shift_starts, shift_ends = {6 * 60, 14 * 60}, {14 * 60, 22 * 60}
    if rounding is Rounding.SHIFT:
        return shift_starts, shift_ends
    if rounding is Rounding.HALF_DAY:
        return {6 * 60, 12 * 60}, {12 * 60, 22 * 60}
    return {6 * 60}, {22 * 60}


def transformed_intervals(offer: Offer, rule: Rule, context: PolicyContext) -> tuple[Interval, ...]:
    """Return the free intervals ``rule`` makes of ``offer``, by deciding with them listed."""
    probe = dataclasses.replace(
        rule,
        fields=rule.fields | {"free_intervals"},
        bands={},
        resources=frozenset(),
        kinds=frozenset(),
        tags=frozenset(),
        expires=None,
    )
    decision = Policy([probe]).decide(offer, context)
    assert decision.offer is not None
    assert decision.offer.free_intervals is not None
    return decision.offer.free_intervals


def check_free_time(offer: Offer, public: Offer, rule: Rule, context: PolicyContext) -> None:
    assert offer.free_intervals is not None
    intervals = transformed_intervals(offer, rule, context)

    assert inside(intervals, offer.free_intervals)
    assert list(intervals) == normalize(intervals)
    if rule.horizon_days is not None:
        limit = context.now + timedelta(days=rule.horizon_days)
        assert all(context.now <= item.start and item.end <= limit for item in intervals)
    if rule.round in GRID_MINUTES:
        step = GRID_MINUTES[rule.round]
        for item in intervals:
            assert local_minutes(item.start) % step == 0, item
            assert local_minutes(item.end) % step == 0, item
    elif rule.round is not None:
        starts, ends = block_boundaries(rule.round)
        for item in intervals:
            assert local_minutes(item.start) in starts, item
            assert local_minutes(item.end) in ends, item

    if "free_intervals" in rule.fields:
        assert public.free_intervals == intervals
    changed = rule.round is not None or rule.horizon_days is not None
    hours = total_hours(intervals) if changed else offer.free_hours
    assert hours is not None
    if "free_hours" in rule.bands and "free_hours" in rule.fields:
        band = public.free_hours_band
        assert band is not None
        assert public.free_hours is None
        assert band.min <= hours + 1e-9
        assert band.max is None or hours < band.max
    elif "free_hours" in rule.fields:
        assert public.free_hours is not None
        assert abs(public.free_hours - hours) < 1e-9


def check_amounts(offer: Offer, public: Offer, rule: Rule) -> None:
    if "amounts" not in rule.fields or offer.amounts is None:
        assert public.amounts is None
        return
    assert public.amounts is not None
    assert len(public.amounts) == len(offer.amounts)
    for original, public_amount in zip(offer.amounts, public.amounts, strict=True):
        assert public_amount.quantity == original.quantity
        renames = rule.labels or {}
        expected_label = renames.get(original.label) if original.label is not None else None
        assert public_amount.label == expected_label
        edges = rule.bands.get(original.quantity)
        if edges is None:
            assert public_amount.value == original.value
            continue
        assert public_amount.value is None
        assert public_amount.band is not None
        assert original.value is not None
        assert _contains(public_amount.band, original.value)


def _contains(band: Band, value: float) -> bool:
    return band.min <= value and (band.max is None or value < band.max)


def check_state(offer: Offer, public: Offer, rule: Rule, context: PolicyContext) -> None:
    state, since = offer.state, offer.state_since
    if rule.delay_minutes is not None and (state is not None or since is not None):
        assert context.history is not None
        moment = context.now - timedelta(minutes=rule.delay_minutes)
        found = context.history.state_at(offer.resource, moment)
        state, since = found if found is not None else (None, None)
    if "state" in rule.fields:
        assert public.state == state
    if "state_since" not in rule.fields or since is None:
        assert public.state_since is None
        return
    assert public.state_since is not None
    assert public.state_since <= since
    if rule.round in GRID_MINUTES:
        assert local_minutes(public.state_since) % GRID_MINUTES[rule.round] == 0
    elif rule.round is None:
        assert public.state_since == since


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_payload_only_what_rule_allows(
    case: tuple[Offer, list[Drawn], PolicyContext],
) -> None:
    offer, drawn, context = case
    decision = Policy([rule for rule, _ in drawn]).decide(offer, context)
    matching, applying = applying_rule(offer, drawn, context)

    if applying is None:
        assert decision.offer is None
        assert decision.rule is (matching[0][0] if matching else None)
        return

    rule, listed = applying
    public = decision.offer
    assert public is not None
    assert decision.rule is rule
    payload = public.to_json()
    allowed = ENVELOPE | ALWAYS_WHEN_SET | rule.fields
    if "free_hours" in rule.fields:
        allowed |= {"free_hours_band"}
    assert set(payload) <= allowed
    for field in COMMERCIAL_FIELDS:
        assert (field in payload) <= (field in listed), field
    assert public.resource == (rule.publish_as or offer.resource)
    assert public.audience == rule.audience
    assert public.expires_at == rule.expires_at(WARSAW)
    assert (public.name is not None) <= ("name" in rule.fields)

    check_free_time(offer, public, rule, context)
    check_amounts(offer, public, rule)
    check_state(offer, public, rule, context)


@settings(max_examples=50, deadline=None)
@given(cases())
def test_unmatched_resource_no_offer(
    case: tuple[Offer, list[Drawn], PolicyContext],
) -> None:
    offer, drawn, context = case
    others = [
        dataclasses.replace(
            rule, resources=frozenset({"inny"}), kinds=frozenset(), tags=frozenset()
        )
        for rule, _ in drawn
    ]

    decision = Policy(others).decide(offer, context)

    assert decision.offer is None
    assert decision.rule is None
    assert decision.public_resource is None


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_band_contains_value(data: st.DataObject) -> None:
    edges = data.draw(band_edges())
    value = data.draw(st.sampled_from(edges) | st.floats(0, 500, allow_nan=False))

    band = to_band(value, edges)

    assert _contains(band, value)
    assert band.min in (0.0, *edges)
    assert band.max is None or band.max in edges
