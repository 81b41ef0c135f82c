"""Audience rules for coordinator accounts, on SQLite and PostgreSQL.

A coordinator without a member sees only the cluster-wide offers of its own cluster; one linked to
a member sees exactly what that member sees. The expected views are written out by hand.
"""

from __future__ import annotations

import pytest

from server.storage import ResourceQuery, Storage, Viewer
from tests.server.helpers import T0
from tests.server.test_audience import OFFERS, fill

MEMBER_BETA = frozenset({"a-public", "b-public", "b-secret"})
VIEWS = {
    "coordinator-c1": (
        Viewer(cluster="c1", member=None, coordinator=True),
        frozenset({"a-public", "b-public"}),
    ),
    "coordinator-c2": (
        Viewer(cluster="c2", member=None, coordinator=True),
        frozenset({"c2-public"}),
    ),
    "coordinator-c1-beta": (Viewer(cluster="c1", member="beta", coordinator=True), MEMBER_BETA),
    "member-c1-beta": (Viewer(cluster="c1", member="beta"), MEMBER_BETA),
}


def visible_resources(storage: Storage, viewer: Viewer) -> set[str]:
    page = storage.list_resources(ResourceQuery(limit=1000), viewer=viewer, now=T0)
    return {item.resource for item in page.items}


@pytest.mark.parametrize("name", list(VIEWS))
def test_coordinator_view_offers(storage: Storage, name: str) -> None:
    viewer, expected = VIEWS[name]
    fill(storage)

    assert visible_resources(storage, viewer) == expected


@pytest.mark.parametrize("name", list(VIEWS))
def test_coordinator_view_never_wider(storage: Storage, name: str) -> None:
    viewer, _ = VIEWS[name]
    fill(storage)
    as_member = Viewer(cluster=viewer.cluster, member=viewer.member) if viewer.member else None

    seen = visible_resources(storage, viewer)

    for resource in seen:
        assert OFFERS[resource].cluster == viewer.cluster
    if as_member is None:
        assert all(not OFFERS[resource].audience for resource in seen)
    else:
        assert seen == visible_resources(storage, as_member)


def test_coordinator_members_list(storage: Storage) -> None:
    fill(storage)
    viewer = Viewer(cluster="c1", member=None, coordinator=True)

    members = storage.list_members(viewer=viewer, now=T0)

    assert {(item.cluster, item.member) for item in members} == {("c1", "acme"), ("c1", "beta")}
    assert {item.member: item.resources for item in members} == {"acme": 1, "beta": 1}


def test_coordinator_rejected_own_cluster(storage: Storage) -> None:
    fill(storage)
    viewer = Viewer(cluster="c1", member=None, coordinator=True)

    topics = {item.topic for item in storage.list_rejected(50, viewer=viewer)}

    assert topics == {
        "kooperant/v1/c1/acme/offers/broken",
        "kooperant/v1/c1/beta/offers/b-secret",
    }


def test_viewer_rejects_member_without_cluster() -> None:
    with pytest.raises(ValueError, match="needs a cluster"):
        Viewer(cluster=None, member=None, coordinator=True)
    with pytest.raises(ValueError, match="both cluster and member"):
        Viewer(cluster="c1", member=None)
