"""Data the search tests share: member profiles and a small cluster of offers."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import insert

from kooperant.intervals import Interval
from kooperant.protocol import Amount, Band, Offer, ResourceKind
from server.storage import Storage
from server.storage.tables import member_profiles
from tests.server.helpers import T0, hours, machine_offer, storage_offer


def add_profile(storage: Storage, cluster: str, member: str, **fields: Any) -> None:
    """Insert a member profile the way the coordinator's pages would."""
    values = {"name": f"Firma {member}", "updated_at": T0, **fields}
    with storage.engine.begin() as connection:
        connection.execute(insert(member_profiles).values(cluster=cluster, member=member, **values))


def search_offers(cluster: str = "c1") -> dict[str, Offer]:
    """Return offers of three members in ``cluster``, keyed by resource id.

    acme (pomorskie, Gdańsk) has a 5-axis machine free for 6 h soon and a hall of 40 pallet
    places. beta (śląskie, Katowice) has a laser free for 30 h later and racks with a banded
    amount. gamma has no profile and a press whose free hours are the band 10–20 h.
    """
    return {
        "cnc": machine_offer(cluster, "acme", "cnc", name="Zeta DMU"),
        "hall": replace(storage_offer(cluster, "acme", "hall"), name="Alpha hall"),
        "laser": machine_offer(
            cluster,
            "beta",
            "laser",
            name="Beta laser",
            capabilities=("laser-cutting",),
            free=(Interval(T0 + hours(48), T0 + hours(78)),),
        ),
        "racks": Offer(
            cluster=cluster,
            member="beta",
            resource="racks",
            kind=ResourceKind.STORAGE,
            generated_at=T0,
            name="Gamma racks",
            capabilities=("cold-storage",),
            amounts=(
                Amount("pallet_places", None, "pallets", band=Band(100.0, 200.0)),
                Amount("floor_area", 12.5, "m2"),
            ),
        ),
        "press": replace(
            machine_offer(
                cluster, "gamma", "press", name="Omega press", capabilities=("pressing",)
            ),
            free_hours=None,
            free_hours_band=Band(10.0, 20.0),
        ),
    }


def fill_search_cluster(storage: Storage, cluster: str = "c1") -> dict[str, Offer]:
    offers = search_offers(cluster)
    for offer in offers.values():
        storage.store_offer(offer, T0)
    add_profile(storage, cluster, "acme", voivodeship="pomorskie", city="Gdańsk")
    add_profile(storage, cluster, "beta", voivodeship="slaskie", city="Katowice")
    return offers
