"""The capabilities, free intervals and audience of each listed offer belong to that offer only.

``Storage.list_resources`` reads them for a whole page with one query per table. Such a query
may also return rows of other resources of the listed members, and those must not leak into the
page.
"""

from __future__ import annotations

from dataclasses import replace

from kooperant.intervals import Interval
from server.storage import ResourceQuery, Storage, Viewer
from tests.server.helpers import T0, T1, hours, machine_offer

CLUSTER = "pomorskie-metal"


def _store(
    storage: Storage,
    member: str,
    resource: str,
    capability: str,
    start_hour: int,
    audience: tuple[str, ...] | None,
) -> None:
    free = (Interval(T0 + hours(start_hour), T0 + hours(start_hour + 2)),)
    offer = machine_offer(CLUSTER, member, resource, capabilities=(capability,), free=free)
    storage.store_offer(replace(offer, audience=audience), T1)


def test_page_details_exclude_other_resources(storage: Storage) -> None:
    # On the page: acme/cnc-01 and beta/laser-02. Off the page, with the same member and
    # resource ids crossed: acme/laser-02 and beta/cnc-01.
    _store(storage, "acme", "cnc-01", "on-page", 1, ("beta",))
    _store(storage, "beta", "laser-02", "on-page", 3, None)
    _store(storage, "acme", "laser-02", "off-page", 5, ("gamma",))
    _store(storage, "beta", "cnc-01", "off-page", 7, None)

    page = storage.list_resources(
        ResourceQuery(capabilities=("on-page",)),
        viewer=Viewer(CLUSTER, "acme"),
        now=T1,
    )

    records = {(item.member, item.resource): item for item in page.items}
    assert set(records) == {("acme", "cnc-01"), ("beta", "laser-02")}
    acme = records[("acme", "cnc-01")]
    assert acme.capabilities == ("on-page",)
    assert acme.free_intervals == (Interval(T0 + hours(1), T0 + hours(3)),)
    assert acme.audience == ("beta",)
    beta = records[("beta", "laser-02")]
    assert beta.capabilities == ("on-page",)
    assert beta.free_intervals == (Interval(T0 + hours(3), T0 + hours(5)),)
    assert beta.audience is None
