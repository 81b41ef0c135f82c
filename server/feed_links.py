"""Signed links to an offer's calendar feed, for calendar programs that cannot sign in.

The signature is HMAC-SHA256, keyed with the server secret ``calendar_feed_key``, over the
identity the link was made for and the offer's key. The feed checks it and then reads the offer
as that identity, so audience and expiry apply at every fetch and a link stops working once the
offer is no longer meant for that member.

Unless the server is open (no accounts, no tokens file), the feed also checks that the link's
identity may still sign in. A link of ``cluster/member`` needs an enabled member or coordinator
account linked to that member (``Storage.identity_has_enabled_account``) or a token of the member
in the tokens file. A link of ``cluster/`` needs an enabled coordinator account of the cluster
without a member. Otherwise the link fails with the 403 of a wrong signature, and the same link
works again once an account is enabled or a token added. A new
``calendar_feed_key`` invalidates every link at once.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode

from server.storage import ANONYMOUS, Viewer

FEED_KEY_NAME = "calendar_feed_key"


def link_identity(viewer: Viewer) -> str:
    """Return ``viewer`` as a link parameter: ``cluster/member``, ``cluster/`` or empty.

    ``cluster/`` is a coordinator account without a member. A coordinator linked to a member
    sees what that member sees, so its link names the member.
    """
    if viewer.anonymous:
        return ""
    return f"{viewer.cluster}/{viewer.member or ''}"


def _message(viewer: Viewer, cluster: str, member: str, resource: str) -> bytes:
    identity = link_identity(viewer)
    # NUL cannot occur in ids, so different tuples never join into the same message.
    return "\0".join(("feed-v1", identity, cluster, member, resource)).encode()


def feed_signature(key: bytes, viewer: Viewer, cluster: str, member: str, resource: str) -> str:
    return hmac.new(key, _message(viewer, cluster, member, resource), hashlib.sha256).hexdigest()


def signed_feed_path(key: bytes, viewer: Viewer, cluster: str, member: str, resource: str) -> str:
    """Return the path and query of the feed of one offer, signed for ``viewer``."""
    path = f"/offers/{quote(cluster, safe='')}/{quote(member, safe='')}/{quote(resource, safe='')}"
    parameters = {"sig": feed_signature(key, viewer, cluster, member, resource)}
    if not viewer.anonymous:
        parameters["viewer"] = link_identity(viewer)
    return f"{path}.ics?{urlencode(parameters)}"


def viewer_of_signed_link(
    key: bytes,
    identity: str | None,
    signature: str,
    cluster: str,
    member: str,
    resource: str,
) -> Viewer | None:
    """Return the identity a feed link was signed for, or ``None`` if the signature is wrong."""
    viewer = ANONYMOUS
    if identity:
        link_cluster, slash, link_member = identity.partition("/")
        if not slash or not link_cluster:
            return None
        if link_member:
            viewer = Viewer(link_cluster, link_member)
        else:
            viewer = Viewer(link_cluster, None, coordinator=True)
    expected = feed_signature(key, viewer, cluster, member, resource)
    return viewer if hmac.compare_digest(expected, signature) else None
