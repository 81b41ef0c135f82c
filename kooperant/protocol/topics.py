"""MQTT topic layout.

An offer about one resource is published, retained, on::

    kooperant/v1/{cluster}/{member}/offers/{resource}

and its withdrawal, also retained, on::

    kooperant/v1/{cluster}/{member}/withdrawals/{resource}

and the member's status (online, or offline with the reason), also retained, on::

    kooperant/v1/{cluster}/{member}/status

Cluster, member and resource ids match ``IDENTIFIER_PATTERN`` so that they never contain the MQTT
separators and wildcards ``/``, ``+`` and ``#``.
"""

from __future__ import annotations

import re

TOPIC_ROOT = "kooperant/v1"
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class TopicError(ValueError):
    """Raised for an id that cannot be part of a topic, or a topic outside the layout."""


def check_identifier(value: str, what: str) -> str:
    """Return ``value`` if it is a valid id; otherwise raise ``TopicError`` naming ``what``."""
    if not _IDENTIFIER.fullmatch(value):
        raise TopicError(
            f"invalid {what} id {value!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


def offer_topic(cluster: str, member: str, resource: str) -> str:
    """Return the topic on which ``member`` publishes its offer for ``resource``."""
    check_identifier(cluster, "cluster")
    check_identifier(member, "member")
    check_identifier(resource, "resource")
    return f"{TOPIC_ROOT}/{cluster}/{member}/offers/{resource}"


def offer_subscription(cluster: str | None = None) -> str:
    """Return the topic filter that matches every offer of ``cluster``, or of all clusters."""
    if cluster is None:
        return f"{TOPIC_ROOT}/+/+/offers/+"
    check_identifier(cluster, "cluster")
    return f"{TOPIC_ROOT}/{cluster}/+/offers/+"


def withdrawal_topic(cluster: str, member: str, resource: str) -> str:
    """Return the topic on which ``member`` announces that ``resource`` is no longer offered."""
    return offer_topic(cluster, member, resource).replace("/offers/", "/withdrawals/", 1)


def withdrawal_subscription(cluster: str | None = None) -> str:
    """Return the topic filter that matches every withdrawal of ``cluster``, or of all clusters."""
    return offer_subscription(cluster).replace("/offers/", "/withdrawals/", 1)


def status_topic(cluster: str, member: str) -> str:
    """Return the topic on which ``member``'s agent publishes its online or offline status."""
    check_identifier(cluster, "cluster")
    check_identifier(member, "member")
    return f"{TOPIC_ROOT}/{cluster}/{member}/status"


def status_subscription(cluster: str | None = None) -> str:
    """Return the topic filter that matches the status of every member of ``cluster``, or all."""
    if cluster is None:
        return f"{TOPIC_ROOT}/+/+/status"
    check_identifier(cluster, "cluster")
    return f"{TOPIC_ROOT}/{cluster}/+/status"


def parse_status_topic(topic: str) -> tuple[str, str]:
    """Return ``(cluster, member)`` from a status topic, or raise ``TopicError``."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT or parts[4] != "status":
        raise TopicError(f"topic {topic!r} is not a status topic ({TOPIC_ROOT}/C/M/status)")
    cluster, member = parts[2], parts[3]
    check_identifier(cluster, "cluster")
    check_identifier(member, "member")
    return cluster, member


def shared_subscription(group: str, topic_filter: str) -> str:
    """Return ``topic_filter`` as an MQTT 5 shared subscription of ``group``.

    The broker delivers each matching message to one subscriber of the group, so several ingest
    workers can split the messages between them. ``group`` must be a valid id, because a ``/``,
    ``+`` or ``#`` in it would change the filter.
    """
    check_identifier(group, "shared subscription group")
    if not topic_filter or topic_filter.startswith("$share/"):
        raise TopicError(
            f"invalid topic filter {topic_filter!r} for a shared subscription: "
            "give a non-empty filter that is not itself shared"
        )
    return f"$share/{group}/{topic_filter}"


def parse_offer_topic(topic: str) -> tuple[str, str, str]:
    """Return ``(cluster, member, resource)`` from an offer topic, or raise ``TopicError``."""
    return _parse_topic(topic, "offers", "an offer")


def parse_withdrawal_topic(topic: str) -> tuple[str, str, str]:
    """Return ``(cluster, member, resource)`` from a withdrawal topic, or raise ``TopicError``."""
    return _parse_topic(topic, "withdrawals", "a withdrawal")


def _parse_topic(topic: str, channel: str, described: str) -> tuple[str, str, str]:
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != TOPIC_ROOT or parts[4] != channel:
        raise TopicError(f"topic {topic!r} is not {described} topic ({TOPIC_ROOT}/C/M/{channel}/R)")
    cluster, member, resource = parts[2], parts[3], parts[5]
    check_identifier(cluster, "cluster")
    check_identifier(member, "member")
    check_identifier(resource, "resource")
    return cluster, member, resource
