"""The withdrawal message, schema ``kooperant.withdrawal/1.1``.

An agent sends a withdrawal when a resource it offered is no longer shared: the owner withdrew it
with ``kooperant agent withdraw``, a policy edit removed its rule, or the rule's share expired. It
goes, retained, to the resource's withdrawal topic right after the agent clears the retained offer.
The retained withdrawal lets an aggregator that was offline at that moment drop the offer too.
The agent clears it when it offers the resource again. An aggregator removes the offer when the
withdrawal is not older than the offer: by ``seq`` when both carry an envelope, else by
``withdrawn_at`` and ``generated_at``. Version 1.1 added the envelope (``message_id`` and ``seq``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any

from kooperant.protocol.envelope import Envelope
from kooperant.protocol.errors import OfferValidationError
from kooperant.protocol.offer import (
    check_payload_size,
    dump_standard_json,
    envelope_of,
    format_time,
    load_standard_json,
    parse_time,
)
from kooperant.protocol.schema_check import SchemaCheck
from kooperant.protocol.versions import SchemaVersion, accept_schema_version

WITHDRAWAL_SCHEMA_ID = "kooperant.withdrawal/1.1"
_WITHDRAWAL_VERSION = SchemaVersion("kooperant.withdrawal", 1, 1)


class WithdrawalReason(StrEnum):
    WITHDRAWN = "withdrawn"
    """The owner ran ``kooperant agent withdraw``."""
    EXPIRED = "expired"
    """The rule that shared the resource reached its expiry date."""
    NOT_SHARED = "not_shared"
    """The policy no longer lets the resource out, for example after a rule was removed."""


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """One member's announcement that one resource is no longer offered."""

    cluster: str
    member: str
    resource: str
    withdrawn_at: datetime
    reason: WithdrawalReason
    delete_history: bool = False
    """Whether the owner asks the aggregator to delete the stored history of the offer too."""
    envelope: Envelope | None = None
    """Message id and sequence number; ``None`` before queueing, or from a 1.0 payload."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema": WITHDRAWAL_SCHEMA_ID,
            "cluster": self.cluster,
            "member": self.member,
            "resource": self.resource,
            "withdrawn_at": format_time(self.withdrawn_at),
            "reason": str(self.reason),
            "delete_history": self.delete_history,
        }
        if self.envelope is not None:
            data["message_id"] = self.envelope.message_id
            data["seq"] = self.envelope.seq
        return data

    def with_envelope(self, envelope: Envelope | None) -> Withdrawal:
        """Return a copy of the withdrawal carrying ``envelope``."""
        return replace(self, envelope=envelope)

    def to_payload(self) -> bytes:
        """Return the UTF-8 JSON payload published over MQTT."""
        return dump_standard_json(self.to_json(), "withdrawal")


@cache
def withdrawal_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of ``kooperant.withdrawal/1.x`` as a dict."""
    text = files("kooperant.protocol").joinpath("withdrawal.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _schema_check() -> SchemaCheck:
    return SchemaCheck(withdrawal_json_schema())


def parse_withdrawal(payload: bytes) -> Withdrawal:
    """Return the ``Withdrawal`` in ``payload``, or raise ``OfferValidationError`` saying why.

    A withdrawal of a newer minor version loses the top-level fields this version does not know.
    """
    check_payload_size(payload)
    try:
        data = load_standard_json(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OfferValidationError(f"withdrawal payload is not UTF-8 JSON: {error}") from error

    schema = withdrawal_json_schema()
    data = accept_schema_version(
        data, _WITHDRAWAL_VERSION, schema["properties"].keys(), "a withdrawal"
    )
    envelope = envelope_of(data)
    errors = _schema_check().errors(data)
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.absolute_path) or "(root)"
        raise OfferValidationError(f"invalid withdrawal at {where}: {first.message}")

    return Withdrawal(
        cluster=data["cluster"],
        member=data["member"],
        resource=data["resource"],
        withdrawn_at=parse_time(data["withdrawn_at"], "withdrawn_at"),
        reason=WithdrawalReason(data["reason"]),
        delete_history=data["delete_history"],
        envelope=envelope,
    )
