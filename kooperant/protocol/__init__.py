"""Messages and topics shared by the agent and the aggregator.

``topics`` builds and parses MQTT topic names; ``offer`` defines the offer message
(``kooperant.offer/1``), its JSON Schema and its validation. ``docs/protocol.md`` describes both.
"""

from kooperant.protocol.offer import (
    OFFER_SCHEMA_ID,
    Amount,
    MachineState,
    Offer,
    OfferValidationError,
    ResourceKind,
    offer_json_schema,
    parse_offer,
)
from kooperant.protocol.topics import (
    IDENTIFIER_PATTERN,
    TopicError,
    check_identifier,
    offer_subscription,
    offer_topic,
    parse_offer_topic,
)

__all__ = [
    "IDENTIFIER_PATTERN",
    "OFFER_SCHEMA_ID",
    "Amount",
    "MachineState",
    "Offer",
    "OfferValidationError",
    "ResourceKind",
    "TopicError",
    "check_identifier",
    "offer_json_schema",
    "offer_subscription",
    "offer_topic",
    "parse_offer",
    "parse_offer_topic",
]
