"""MQTT topic layout."""

from __future__ import annotations

import pytest

from kooperant.protocol import TopicError, offer_subscription, offer_topic, parse_offer_topic


def test_offer_topic_layout() -> None:
    assert offer_topic("pom", "acme", "cnc-01") == "kooperant/v1/pom/acme/offers/cnc-01"


def test_offer_topic_parses_back() -> None:
    assert parse_offer_topic("kooperant/v1/pom/acme/offers/cnc-01") == ("pom", "acme", "cnc-01")


def test_subscription_for_one_cluster_and_all() -> None:
    assert offer_subscription("pom") == "kooperant/v1/pom/+/offers/+"
    assert offer_subscription() == "kooperant/v1/+/+/offers/+"


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "-lead", "x" * 65, "zażółć"])
def test_offer_topic_rejects_unsafe_id(bad: str) -> None:
    with pytest.raises(TopicError, match="invalid resource id"):
        offer_topic("pom", "acme", bad)


@pytest.mark.parametrize(
    "topic",
    [
        "kooperant/v1/pom/acme/cnc-01",
        "kooperant/v2/pom/acme/offers/cnc",
        "other/v1/p/a/offers/r",
        "kooperant/v1/pom/acme/offers/cnc/extra",
        "kooperant/v1/pom/a+b/offers/cnc",
    ],
)
def test_parse_offer_topic_rejects_other_topics(topic: str) -> None:
    with pytest.raises(TopicError):
        parse_offer_topic(topic)
