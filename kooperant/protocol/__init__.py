"""Messages and topics shared by the agent and the aggregator.

``topics`` builds and parses MQTT topic names; ``offer`` defines the offer message
(``kooperant.offer/1``), its JSON Schema and its validation; ``withdrawal`` defines the message
(``kooperant.withdrawal/1``) that takes an offer back. ``docs/protocol.md`` describes both.
"""

from kooperant.protocol.offer import (
    COMMERCIAL_FIELDS,
    OFFER_SCHEMA_ID,
    OPTIONAL_FIELDS,
    Amount,
    Band,
    MachineState,
    Offer,
    OfferValidationError,
    Price,
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
    parse_withdrawal_topic,
    withdrawal_subscription,
    withdrawal_topic,
)
from kooperant.protocol.withdrawal import (
    WITHDRAWAL_SCHEMA_ID,
    Withdrawal,
    WithdrawalReason,
    parse_withdrawal,
    withdrawal_json_schema,
)

__all__ = [
    "COMMERCIAL_FIELDS",
    "IDENTIFIER_PATTERN",
    "OFFER_SCHEMA_ID",
    "OPTIONAL_FIELDS",
    "WITHDRAWAL_SCHEMA_ID",
    "Amount",
    "Band",
    "MachineState",
    "Offer",
    "OfferValidationError",
    "Price",
    "ResourceKind",
    "TopicError",
    "Withdrawal",
    "WithdrawalReason",
    "check_identifier",
    "offer_json_schema",
    "offer_subscription",
    "offer_topic",
    "parse_offer",
    "parse_offer_topic",
    "parse_withdrawal",
    "parse_withdrawal_topic",
    "withdrawal_json_schema",
    "withdrawal_subscription",
    "withdrawal_topic",
]
