"""MQTT topic layout.

An offer about one resource is published, retained, on::

    kooperant/v1/{cluster}/{member}/offers/{resource}

and its withdrawal, also retained, on::

    kooperant/v1/{cluster}/{member}/withdrawals/{resource}

and the member's status (online, or offline with the reason), also retained, on::

    kooperant/v1/{cluster}/{member}/status

The aggregator sends a member's agent a request for capacity of one of its offers, retained, on::

    kooperant/v1/{cluster}/{member}/requests/{request_id}

and clears it with an empty retained payload once the request is final. The agent answers,
retained, on::

    kooperant/v1/{cluster}/{member}/answers/{request_id}

Cluster, member and resource ids match ``IDENTIFIER_PATTERN`` so that they never contain the MQTT
separators and wildcards ``/``, ``+`` and ``#``. A request id matches ``REQUEST_ID_PATTERN``: a
UUID 4 in its canonical lowercase text form.
"""

from __future__ import annotations

import re

TOPIC_ROOT = "kooperant/v1"
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
REQUEST_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


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


def check_request_id(value: str) -> str:
    """Return ``value`` if it is a valid request id; otherwise raise ``TopicError``."""
    if not _REQUEST_ID.fullmatch(value):
        quoted = (
            repr(value) if len(value) <= 100 else f"{value[:100]!r}... ({len(value)} characters)"
        )
        raise TopicError(
            f"invalid request id {quoted}: expected a UUID 4 in lowercase, "
            "e.g. 3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
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


def request_topic(cluster: str, member: str, request_id: str) -> str:
    """Return the topic on which the aggregator sends ``member`` the request ``request_id``."""
    check_identifier(cluster, "cluster")
    check_identifier(member, "member")
    check_request_id(request_id)
    return f"{TOPIC_ROOT}/{cluster}/{member}/requests/{request_id}"


def request_subscription(cluster: str, member: str) -> str:
    """Return the topic filter that matches every request sent to ``member``."""
    check_identifier(cluster, "cluster")
    check_identifier(member, "member")
    return f"{TOPIC_ROOT}/{cluster}/{member}/requests/+"


def answer_topic(cluster: str, member: str, request_id: str) -> str:
    """Return the topic on which ``member``'s agent answers the request ``request_id``."""
    return request_topic(cluster, member, request_id).replace("/requests/", "/answers/", 1)


def answer_subscription(cluster: str | None = None) -> str:
    """Return the topic filter that matches every answer of ``cluster``, or of all clusters."""
    if cluster is None:
        return f"{TOPIC_ROOT}/+/+/answers/+"
    check_identifier(cluster, "cluster")
    return f"{TOPIC_ROOT}/{cluster}/+/answers/+"


def parse_request_topic(topic: str) -> tuple[str, str, str]:
    """Return ``(cluster, member, request_id)`` from a request topic, or raise ``TopicError``."""
    return _parse_request_id_topic(topic, "requests", "a request")


def parse_answer_topic(topic: str) -> tuple[str, str, str]:
    """Return ``(cluster, member, request_id)`` from an answer topic, or raise ``TopicError``."""
    return _parse_request_id_topic(topic, "answers", "an answer")


def _parse_request_id_topic(topic: str, channel: str, described: str) -> tuple[str, str, str]:
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != TOPIC_ROOT or parts[4] != channel:
        raise TopicError(
            f"topic {topic!r} is not {described} topic ({TOPIC_ROOT}/C/M/{channel}/REQUEST_ID)"
        )
    cluster, member, request_id = parts[2], parts[3], parts[5]
    check_identifier(cluster, "cluster")
    check_identifier(member, "member")
    check_request_id(request_id)
    return cluster, member, request_id
