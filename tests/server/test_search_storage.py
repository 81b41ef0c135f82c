"""Search in storage: region, city, minimum free, sort, paging, amounts and the backfill."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import insert, select

from kooperant.protocol import Amount, Band
from server.storage import ResourceQuery, Storage, Viewer
from server.storage.tables import offer_history, resource_amounts, resources
from tests.server.helpers import T0, hours, machine_offer, storage_offer, withdrawal
from tests.server.search_helpers import fill_search_cluster

NOW = T0 + hours(1)


def _ids(storage: Storage, query: ResourceQuery, viewer: Viewer | None = None) -> list[str]:
    page = storage.list_resources(query, viewer=viewer or Viewer("c1", "acme"), now=NOW)
    return [item.resource for item in page.items]


def test_region_filter_joins_profiles(storage: Storage) -> None:
    fill_search_cluster(storage)

    assert _ids(storage, ResourceQuery(regions=("pomorskie",))) == ["cnc", "hall"]
    assert _ids(storage, ResourceQuery(regions=("slaskie", "pomorskie"))) == [
        "cnc",
        "hall",
        "laser",
        "racks",
    ]
    assert _ids(storage, ResourceQuery(regions=("lubuskie",))) == []


def test_city_filter_ignores_case(storage: Storage) -> None:
    fill_search_cluster(storage)

    assert _ids(storage, ResourceQuery(city="katowice")) == ["laser", "racks"]
    assert _ids(storage, ResourceQuery(city=" GDAŃSK ")) == ["cnc", "hall"]


def test_min_free_hours_bands_and_amounts(storage: Storage) -> None:
    fill_search_cluster(storage)

    # cnc 6 h, laser 30 h, press band 10 to 20 h, hall 40 pallets, racks 100 to 200 and 12.5 m2.
    assert _ids(storage, ResourceQuery(min_free=10)) == ["hall", "laser", "racks", "press"]
    assert _ids(storage, ResourceQuery(min_free=25, kinds=("machine",))) == ["laser"]
    assert _ids(storage, ResourceQuery(min_free=100, quantity="pallet_places")) == ["racks"]
    assert _ids(storage, ResourceQuery(min_free=12, quantity="floor_area")) == ["racks"]
    assert _ids(storage, ResourceQuery(min_free=13, quantity="floor_area")) == []


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("member", ["cnc", "hall", "laser", "racks", "press"]),
        ("name", ["hall", "laser", "racks", "press", "cnc"]),
        ("kind", ["cnc", "laser", "press", "hall", "racks"]),
        ("free", ["racks", "hall", "laser", "press", "cnc"]),
        ("next_free", ["cnc", "press", "laser", "hall", "racks"]),
    ],
)
def test_sort_orders(storage: Storage, sort: str, expected: list[str]) -> None:
    fill_search_cluster(storage)

    assert _ids(storage, ResourceQuery(sort=sort)) == expected


@pytest.mark.parametrize("sort", ["member", "name", "kind", "updated", "free", "next_free"])
def test_pages_of_each_sort_join_to_the_whole_order(storage: Storage, sort: str) -> None:
    fill_search_cluster(storage)
    viewer = Viewer("c1", "acme")
    whole = storage.list_resources(ResourceQuery(sort=sort), viewer=viewer, now=NOW)

    pages = [
        storage.list_resources(
            ResourceQuery(sort=sort, limit=2, offset=offset), viewer=viewer, now=NOW
        )
        for offset in (0, 2, 4, 6)
    ]

    assert [item.resource for page in pages for item in page.items] == [
        item.resource for item in whole.items
    ]
    assert [page.total for page in pages] == [len(whole.items)] * 4
    assert pages[-1].items == ()


def test_sort_updated_newest_first(storage: Storage) -> None:
    fill_search_cluster(storage)
    storage.store_offer(
        replace(machine_offer("c1", "gamma", "press"), generated_at=T0 + hours(1)), T0 + hours(1)
    )

    assert _ids(storage, ResourceQuery(sort="updated"))[0] == "press"


def test_unknown_sort_rejected() -> None:
    with pytest.raises(ValueError, match="sort 'price'"):
        ResourceQuery(sort="price")


def test_paging_keeps_total(storage: Storage) -> None:
    fill_search_cluster(storage)

    first = storage.list_resources(
        ResourceQuery(sort="name", limit=2), viewer=Viewer("c1", "acme"), now=NOW
    )
    second = storage.list_resources(
        ResourceQuery(sort="name", limit=2, offset=2), viewer=Viewer("c1", "acme"), now=NOW
    )

    assert first.total == 5
    assert second.total == 5
    assert [item.resource for item in first.items] == ["hall", "laser"]
    assert [item.resource for item in second.items] == ["racks", "press"]


def test_filters_respect_audience(storage: Storage) -> None:
    fill_search_cluster(storage)
    secret = replace(
        storage_offer("c1", "beta", "secret"),
        audience=("gamma",),
        amounts=(Amount("pallet_places", 500.0, "pallets"),),
    )
    storage.store_offer(secret, T0)
    query = ResourceQuery(min_free=400, regions=("slaskie",), sort="free")

    assert _ids(storage, query, Viewer("c1", "acme")) == []
    assert _ids(storage, query, Viewer("c1", "gamma")) == ["secret"]
    assert storage.list_resources(query, viewer=Viewer("c1", "acme"), now=NOW).total == 0


def _amount_rows(storage: Storage) -> list[tuple[str, int, str, float | None, float | None]]:
    with storage.engine.connect() as connection:
        rows = connection.execute(
            select(
                resource_amounts.c.resource,
                resource_amounts.c.position,
                resource_amounts.c.quantity,
                resource_amounts.c.value,
                resource_amounts.c.band_min,
            ).order_by(resource_amounts.c.resource, resource_amounts.c.position)
        ).all()
    return [tuple(row) for row in rows]


def test_amounts_written_and_removed(storage: Storage) -> None:
    fill_search_cluster(storage)

    assert _amount_rows(storage) == [
        ("hall", 0, "pallet_places", 40.0, None),
        ("racks", 0, "pallet_places", None, 100.0),
        ("racks", 1, "floor_area", 12.5, None),
    ]

    storage.store_offer(
        replace(storage_offer("c1", "acme", "hall"), generated_at=T0 + hours(1), amounts=()),
        T0 + hours(1),
    )
    storage.apply_withdrawal(withdrawal("c1", "beta", "racks"), T0 + hours(2))

    assert _amount_rows(storage) == []


def test_history_newest_first_and_hidden(storage: Storage) -> None:
    for step in range(3):
        offer = replace(
            machine_offer("c1", "beta", "laser"),
            generated_at=T0 + hours(step),
            free_hours=float(step),
            audience=("gamma",),
        )
        storage.store_offer(offer, T0 + hours(step))
    now = T0 + hours(3)

    page = storage.list_history(
        "c1", "beta", "laser", viewer=Viewer("c1", "gamma"), now=now, limit=2
    )
    hidden = storage.list_history("c1", "beta", "laser", viewer=Viewer("c1", "acme"), now=now)

    assert page is not None
    assert page.total == 3
    assert [item.free_hours for item in page.items] == [2.0, 1.0]
    assert hidden is None


def test_capacity_sums_last_version_per_day(storage: Storage) -> None:
    storage.store_offer(replace(machine_offer("c1", "acme", "a"), free_hours=5.0), T0)
    later = replace(machine_offer("c1", "acme", "a"), free_hours=7.0, generated_at=T0 + hours(2))
    storage.store_offer(later, T0 + hours(2))
    next_day = replace(
        machine_offer("c1", "beta", "b"), free_hours=3.0, generated_at=T0 + hours(24)
    )
    storage.store_offer(next_day, T0 + hours(24))
    secret = replace(machine_offer("c1", "beta", "s"), free_hours=100.0, audience=("gamma",))
    storage.store_offer(secret, T0)

    points = storage.cluster_capacity(viewer=Viewer("c1", "acme"), now=T0 + hours(25), days=30)

    assert [(point.day.isoformat(), point.free_hours, point.offers) for point in points] == [
        ("2026-12-07", 7.0, 1),
        ("2026-12-08", 3.0, 1),
    ]


def test_capacity_keeps_later_version_of_day(storage: Storage) -> None:
    later = replace(machine_offer("c1", "acme", "a"), free_hours=7.0, generated_at=T0 + hours(2))
    storage.store_offer(later, T0 + hours(2))
    earlier = replace(machine_offer("c1", "acme", "a"), free_hours=5.0)
    storage.store_offer(earlier, T0 + hours(3))

    points = storage.cluster_capacity(viewer=Viewer("c1", "acme"), now=T0 + hours(4), days=30)

    assert [(point.free_hours, point.offers) for point in points] == [(7.0, 1)]


def test_capacity_forgets_deleted_history(storage: Storage) -> None:
    storage.store_offer(replace(machine_offer("c1", "acme", "a"), free_hours=5.0), T0)
    storage.apply_withdrawal(
        withdrawal("c1", "acme", "a", withdrawn_at=T0 + hours(1), delete_history=True),
        T0 + hours(1),
    )
    again = replace(machine_offer("c1", "acme", "a"), free_hours=2.0, generated_at=T0 + hours(25))
    storage.store_offer(again, T0 + hours(25))

    points = storage.cluster_capacity(viewer=Viewer("c1", "acme"), now=T0 + hours(26), days=30)

    assert [(point.day.isoformat(), point.free_hours) for point in points] == [("2026-12-08", 2.0)]


def test_migration_0006_fills_capacity_from_history(database_url: str) -> None:
    opened = Storage(database_url)
    try:
        opened.migrate("0005")
        versions = [
            (machine_offer("c1", "acme", "a"), T0, 5.0),
            (machine_offer("c1", "acme", "a"), T0 + hours(2), 7.0),
            (machine_offer("c1", "acme", "a"), T0 + hours(3), None),
            (machine_offer("c1", "beta", "b"), T0 + hours(24), 3.0),
        ]
        with opened.engine.begin() as connection:
            for item in (machine_offer("c1", "acme", "a"), machine_offer("c1", "beta", "b")):
                connection.execute(
                    insert(resources).values(
                        cluster=item.cluster,
                        member=item.member,
                        resource=item.resource,
                        kind=str(item.kind),
                        generated_at=T0,
                        received_at=T0,
                        payload=item.to_payload().decode(),
                    )
                )
            for item, generated_at, free_hours in versions:
                version = replace(item, generated_at=generated_at, free_hours=free_hours)
                connection.execute(
                    insert(offer_history).values(
                        cluster=item.cluster,
                        member=item.member,
                        resource=item.resource,
                        generated_at=generated_at,
                        received_at=generated_at,
                        payload=version.to_payload().decode(),
                    )
                )

        opened.migrate()
        points = opened.cluster_capacity(viewer=Viewer("c1", "acme"), now=T0 + hours(25), days=30)

        assert [(point.day.isoformat(), point.free_hours, point.offers) for point in points] == [
            ("2026-12-07", 7.0, 1),
            ("2026-12-08", 3.0, 1),
        ]
    finally:
        opened.close()


def test_secret_created_once(storage: Storage) -> None:
    first = storage.secret("feed")
    second = storage.secret("feed")

    assert len(first) == 32
    assert first == second
    assert storage.secret("other") != first


def test_migration_backfills_amounts(database_url: str) -> None:
    opened = Storage(database_url)
    try:
        opened.migrate("0003")
        offer = replace(
            storage_offer("c1", "acme", "hall"),
            amounts=(
                Amount("pallet_places", 40.0, "pallets"),
                Amount("area", None, "m2", label="north", band=Band(10.0, None)),
            ),
        )
        plain = machine_offer("c1", "acme", "cnc")
        with opened.engine.begin() as connection:
            for item in (offer, plain):
                connection.execute(
                    insert(resources).values(
                        cluster=item.cluster,
                        member=item.member,
                        resource=item.resource,
                        kind=str(item.kind),
                        generated_at=T0,
                        received_at=T0,
                        payload=item.to_payload().decode(),
                    )
                )
            connection.execute(
                insert(offer_history).values(
                    cluster="c1",
                    member="acme",
                    resource="hall",
                    generated_at=T0,
                    received_at=T0,
                    payload=offer.to_payload().decode(),
                )
            )

        opened.migrate()

        with opened.engine.connect() as connection:
            rows = connection.execute(
                select(resource_amounts).order_by(resource_amounts.c.position)
            ).all()
    finally:
        opened.close()

    assert [
        (row.resource, row.position, row.quantity, row.label, row.value, row.band_min, row.band_max)
        for row in rows
    ] == [
        ("hall", 0, "pallet_places", None, 40.0, None, None),
        ("hall", 1, "area", "north", None, 10.0, None),
    ]
