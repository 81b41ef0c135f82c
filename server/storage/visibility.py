"""Who may see which current offer: the SQL conditions behind every read of offers.

An offer is visible while its ``expires_at`` is unset or later than ``now``. An offer without an
audience is meant for its whole cluster: every member of that cluster sees it, and so does an
anonymous caller (possible only when the server has no tokens file). An offer with an audience is
seen only by its owner member and by the members listed, all within the offer's cluster, and never
by an anonymous caller.

A coordinator account that is not linked to a member sees the cluster-wide offers of its own
cluster only, never an offer with an audience. A coordinator account linked to a member sees what
that member sees, so being a coordinator never widens an audience.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, exists, or_

from server.storage.tables import resource_audience, resources


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller whose view is read: a member, a coordinator account, or anonymous.

    A coordinator account without a member has ``cluster`` set, ``member`` unset and
    ``coordinator`` set.
    """

    cluster: str | None = None
    member: str | None = None
    coordinator: bool = False

    def __post_init__(self) -> None:
        if self.coordinator and self.cluster is None:
            raise ValueError("a coordinator viewer needs a cluster")
        if not self.coordinator and (self.cluster is None) != (self.member is None):
            raise ValueError("a viewer needs both cluster and member, or neither")

    @property
    def anonymous(self) -> bool:
        return self.cluster is None

    def owns(self, cluster: str, member: str) -> bool:
        """Return whether this viewer is the member that published offers of ``cluster/member``."""
        return self.member is not None and (self.cluster, self.member) == (cluster, member)


ANONYMOUS = Viewer()


def visible_offer_conditions(viewer: Viewer, now: datetime) -> list[ColumnElement[bool]]:
    """Return the conditions on ``resources`` keeping the offers ``viewer`` may see at ``now``."""
    same_resource = [
        resource_audience.c.cluster == resources.c.cluster,
        resource_audience.c.member == resources.c.member,
        resource_audience.c.resource == resources.c.resource,
    ]
    cluster_wide = ~exists().where(*same_resource)
    not_expired = or_(resources.c.expires_at.is_(None), resources.c.expires_at > now)
    if viewer.anonymous:
        return [not_expired, cluster_wide]
    if viewer.member is None:
        return [not_expired, resources.c.cluster == viewer.cluster, cluster_wide]

    listed = exists().where(*same_resource, resource_audience.c.viewer == viewer.member)
    return [
        not_expired,
        resources.c.cluster == viewer.cluster,
        or_(resources.c.member == viewer.member, cluster_wide, listed),
    ]
