"""Free machine hours inside a time window: the minimum free filter and the coordinator's sum."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from kooperant.intervals import Interval, clip, total_hours
from kooperant.protocol import Band, Offer
from server.storage import ResourceQuery, Storage, Viewer
from tests.server.helpers import T0, hours, machine_offer, storage_offer

NOW = T0 + hours(1)
VIEWER = Viewer("c1", "acme")
# Tuesday 06:00 to Wednesday 06:00 UTC, two days after T0.
WINDOW_START = T0 + hours(48)
WINDOW_END = T0 + hours(72)


def _machine(resource: str, *free: Interval, member: str = "beta") -> Offer:
    return machine_offer("c1", member, resource, free=free)


def _ids(storage: Storage, query: ResourceQuery) -> list[str]:
    page = storage.list_resources(query, viewer=VIEWER, now=NOW)
    return [item.resource for item in page.items]


def _in_window(
    min_free: float,
    window_start: datetime | None = WINDOW_START,
    window_end: datetime | None = WINDOW_END,
) -> ResourceQuery:
    return ResourceQuery(min_free=min_free, window_start=window_start, window_end=window_end)


def test_min_free_counts_hours_inside_window(storage: Storage) -> None:
    # "wide" has 20 h before the window and 1 h inside, "narrow" 5 h inside only.
    wide = _machine(
        "wide",
        Interval(T0 + hours(2), T0 + hours(22)),
        Interval(WINDOW_START + hours(3), WINDOW_START + hours(4)),
    )
    narrow = _machine("narrow", Interval(WINDOW_START + hours(2), WINDOW_START + hours(7)))
    for offer in (wide, narrow):
        storage.store_offer(offer, T0)

    assert _ids(storage, _in_window(8)) == []
    assert _ids(storage, _in_window(5)) == ["narrow"]
    assert _ids(storage, _in_window(1.5)) == ["narrow"]
    assert _ids(storage, _in_window(1)) == ["narrow", "wide"]
    assert _ids(storage, ResourceQuery(min_free=8)) == ["wide"]


def test_min_free_counts_only_overlap(storage: Storage) -> None:
    # 3 h of the first interval and 2 h of the last lie inside the window.
    offer = _machine(
        "edges",
        Interval(WINDOW_START - hours(4), WINDOW_START + hours(3)),
        Interval(WINDOW_END - hours(2), WINDOW_END + hours(10)),
    )
    storage.store_offer(offer, T0)

    assert _ids(storage, _in_window(5)) == ["edges"]
    assert _ids(storage, _in_window(5.25)) == []


def test_min_free_window_open_end(storage: Storage) -> None:
    # 10 h before the start, 2 h across it, 3 h after it.
    offer = _machine(
        "open",
        Interval(T0 + hours(2), T0 + hours(12)),
        Interval(WINDOW_START - hours(1), WINDOW_START + hours(1)),
        Interval(WINDOW_END + hours(100), WINDOW_END + hours(103)),
    )
    storage.store_offer(offer, T0)

    assert _ids(storage, _in_window(4, window_end=None)) == ["open"]
    assert _ids(storage, _in_window(4.5, window_end=None)) == []


def test_min_free_window_open_start(storage: Storage) -> None:
    # 10 h and 1 h before the end, 3 h after it.
    offer = _machine(
        "open",
        Interval(T0 + hours(2), T0 + hours(12)),
        Interval(WINDOW_END - hours(1), WINDOW_END + hours(3)),
    )
    storage.store_offer(offer, T0)

    assert _ids(storage, _in_window(11, window_start=None)) == ["open"]
    assert _ids(storage, _in_window(11.5, window_start=None)) == []


def test_min_free_window_banded_uses_intervals(storage: Storage) -> None:
    # The band claims 100 h or more, but only 2 h of the published intervals are in the window.
    offer = replace(
        _machine("press", Interval(WINDOW_START, WINDOW_START + hours(2))),
        free_hours=None,
        free_hours_band=Band(100.0, None),
    )
    storage.store_offer(offer, T0)

    assert _ids(storage, _in_window(2)) == ["press"]
    assert _ids(storage, _in_window(3)) == []
    assert _ids(storage, ResourceQuery(min_free=100)) == ["press"]


def test_min_free_window_total_and_pages(storage: Storage) -> None:
    # m0..m5 have 0.5 h to 5.5 h inside the window and 38 h before it.
    for index in range(6):
        offer = _machine(
            f"m{index}",
            Interval(T0 + hours(2), T0 + hours(40)),
            Interval(WINDOW_START, WINDOW_START + hours(index + 0.5)),
            member=f"member{index}",
        )
        storage.store_offer(offer, T0)

    first = storage.list_resources(replace(_in_window(2), limit=2), viewer=VIEWER, now=NOW)
    last = storage.list_resources(replace(_in_window(2), limit=2, offset=2), viewer=VIEWER, now=NOW)
    by_free = storage.list_resources(
        replace(_in_window(2), limit=3, sort="free"), viewer=VIEWER, now=NOW
    )

    assert first.total == 4
    assert [item.resource for item in first.items] == ["m2", "m3"]
    assert [item.resource for item in last.items] == ["m4", "m5"]
    assert by_free.total == 4
    assert len(by_free.items) == 3


def test_coordinator_sum_equals_clipped_hours(storage: Storage) -> None:
    week = Interval(NOW, NOW + hours(7 * 24))
    counted = [
        _machine("cnc", Interval(T0, T0 + hours(4)), Interval(T0 + hours(30), T0 + hours(33))),
        _machine(
            "lathe",
            Interval(T0 + hours(20), T0 + hours(26.25)),
            Interval(week.end - hours(2), week.end + hours(40)),
            member="gamma",
        ),
        _machine("laser", Interval(T0 + hours(24 * 9), T0 + hours(24 * 10))),
    ]
    left_out = [
        replace(
            _machine("press", Interval(T0, T0 + hours(20)), member="delta"),
            free_hours=None,
            free_hours_band=Band(10.0, 20.0),
        ),
        replace(_machine("secret", Interval(T0, T0 + hours(20))), audience=("delta",)),
        replace(_machine("old", Interval(T0, T0 + hours(20))), expires_at=NOW - hours(0.5)),
        storage_offer("c1", "beta", "hall"),
        machine_offer("c2", "other", "cnc"),
    ]
    for offer in counted + left_out:
        storage.store_offer(offer, T0)
    expected = 0.0
    for offer in counted:
        expected += total_hours(clip(offer.free_intervals or (), week))

    coordinator = Viewer("c1", None, coordinator=True)
    result = storage.free_hours_in_window(
        viewer=coordinator, start=week.start, end=week.end, now=NOW
    )

    assert expected == 3 + 3 + 6.25 + 2
    assert result.hours == expected
    assert result.machines == 2


def test_sort_by_free_uses_window_hours(storage: Storage) -> None:
    # "wide" has 20 h before the window and 1 h inside, "narrow" 5 h inside only.
    wide = _machine(
        "wide",
        Interval(T0 + hours(2), T0 + hours(22)),
        Interval(WINDOW_START + hours(3), WINDOW_START + hours(4)),
    )
    narrow = _machine("narrow", Interval(WINDOW_START + hours(2), WINDOW_START + hours(7)))
    for offer in (wide, narrow):
        storage.store_offer(offer, T0)
    window = ResourceQuery(window_start=WINDOW_START, window_end=WINDOW_END, sort="free")

    assert _ids(storage, window) == ["narrow", "wide"]
    assert _ids(storage, ResourceQuery(sort="free")) == ["wide", "narrow"]
