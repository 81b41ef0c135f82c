"""Matching a received message's topic against the filters a client subscribed to.

A broker should send a client only messages that match its subscriptions, but amqtt 0.12.1 (the
embedded broker) also sends a connecting client the retained messages that match any other
client's subscriptions. The agent and the aggregator's ingest (``server/message_handling.py``)
therefore check each topic themselves.
"""

from __future__ import annotations

from collections.abc import Iterable

_SHARED_PREFIX = "$share/"


def subscribed_to(topic: str, topic_filters: Iterable[str]) -> bool:
    """Return whether ``topic`` matches one of ``topic_filters``, shared subscriptions included.

    A shared filter ``$share/GROUP/FILTER`` matches the topics that ``FILTER`` matches.
    """
    return any(topic_matches(topic, _unshared(topic_filter)) for topic_filter in topic_filters)


def topic_matches(topic: str, topic_filter: str) -> bool:
    """Return whether ``topic`` matches the MQTT ``topic_filter`` ('+' and a trailing '#').

    A topic that is empty or contains a wildcard matches nothing.
    """
    if not topic or "+" in topic or "#" in topic:
        return False
    levels = topic.split("/")
    filter_levels = topic_filter.split("/")
    for index, pattern in enumerate(filter_levels):
        if pattern == "#":
            return True
        if index >= len(levels):
            return False
        if pattern != "+" and pattern != levels[index]:
            return False
    return len(levels) == len(filter_levels)


def _unshared(topic_filter: str) -> str:
    if not topic_filter.startswith(_SHARED_PREFIX):
        return topic_filter
    _, _, inner = topic_filter[len(_SHARED_PREFIX) :].partition("/")
    return inner
