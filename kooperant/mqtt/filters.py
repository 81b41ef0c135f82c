"""Matching a received message's topic against the filters a client subscribed to.

A broker should send a client only messages that match its subscriptions, but amqtt 0.12.1 (the
embedded broker) also sends a connecting client the retained messages that match any other
client's subscriptions. The agent therefore checks each topic itself; the aggregator's ingest does
the same with its topic parsers (``server/message_handling.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

from paho.mqtt.client import topic_matches_sub

_SHARED_PREFIX = "$share/"


def subscribed_to(topic: str, topic_filters: Iterable[str]) -> bool:
    """Return whether ``topic`` matches one of ``topic_filters``, shared subscriptions included.

    A shared filter ``$share/GROUP/FILTER`` matches the topics that ``FILTER`` matches.
    """
    return any(topic_matches_sub(_unshared(topic_filter), topic) for topic_filter in topic_filters)


def _unshared(topic_filter: str) -> str:
    if not topic_filter.startswith(_SHARED_PREFIX):
        return topic_filter
    _, _, inner = topic_filter[len(_SHARED_PREFIX) :].partition("/")
    return inner
