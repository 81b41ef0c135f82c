"""Messages and topics shared by the agent and the aggregator.

``topics`` builds and parses MQTT topic names; ``offer`` defines the offer message
(``kooperant.offer/1.1``), its JSON Schema and its validation; ``withdrawal`` defines the message
(``kooperant.withdrawal/1.1``) that takes an offer back; ``status`` defines the member status
(``kooperant.status/1.0``). ``envelope`` holds the message id and sequence number of offers and
withdrawals, and ``versions`` the rule for reading other minor versions. ``docs/protocol.md``
describes them all.
"""

from kooperant.protocol.envelope import (
    MAX_SEQUENCE,
    MESSAGE_ID_PATTERN,
    Envelope,
    message_key,
    new_message_id,
    next_sequence,
)
from kooperant.protocol.errors import OfferValidationError
from kooperant.protocol.offer import (
    COMMERCIAL_FIELDS,
    MAX_PAYLOAD_BYTES,
    OFFER_SCHEMA_ID,
    OPTIONAL_FIELDS,
    Amount,
    Band,
    MachineState,
    Offer,
    Price,
    ResourceKind,
    offer_json_schema,
    parse_offer,
)
from kooperant.protocol.status import (
    STATUS_SCHEMA_ID,
    MemberState,
    MemberStatus,
    OfflineReason,
    parse_status,
    status_json_schema,
)
from kooperant.protocol.topics import (
    IDENTIFIER_PATTERN,
    TopicError,
    check_identifier,
    offer_subscription,
    offer_topic,
    parse_offer_topic,
    parse_status_topic,
    parse_withdrawal_topic,
    shared_subscription,
    status_subscription,
    status_topic,
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
    "MAX_PAYLOAD_BYTES",
    "MAX_SEQUENCE",
    "MESSAGE_ID_PATTERN",
    "OFFER_SCHEMA_ID",
    "OPTIONAL_FIELDS",
    "STATUS_SCHEMA_ID",
    "WITHDRAWAL_SCHEMA_ID",
    "Amount",
    "Band",
    "Envelope",
    "MachineState",
    "MemberState",
    "MemberStatus",
    "Offer",
    "OfferValidationError",
    "OfflineReason",
    "Price",
    "ResourceKind",
    "TopicError",
    "Withdrawal",
    "WithdrawalReason",
    "check_identifier",
    "message_key",
    "new_message_id",
    "next_sequence",
    "offer_json_schema",
    "offer_subscription",
    "offer_topic",
    "parse_offer",
    "parse_offer_topic",
    "parse_status",
    "parse_status_topic",
    "parse_withdrawal",
    "parse_withdrawal_topic",
    "shared_subscription",
    "status_json_schema",
    "status_subscription",
    "status_topic",
    "withdrawal_json_schema",
    "withdrawal_subscription",
    "withdrawal_topic",
]
