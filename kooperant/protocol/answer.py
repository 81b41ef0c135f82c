"""The answer message, schema ``kooperant.answer/1.0``.

The owner's agent answers a request (``kooperant.protocol.request``) on the answer topic of the
request, retained, through its outbox: ``delivered`` once it stored the request, then
``accepted`` or ``declined`` when the owner decides. Each answer replaces the previous one on the
topic, and its sequence number orders them. A declined answer carries the owner's reason, and the
other states carry none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any

from kooperant.protocol.envelope import Envelope
from kooperant.protocol.errors import OfferValidationError
from kooperant.protocol.offer import dump_standard_json, envelope_of, format_time, parse_time
from kooperant.protocol.request import check_schema, decode_message, shorten_value
from kooperant.protocol.schema_check import SchemaCheck
from kooperant.protocol.text import control_character_problem
from kooperant.protocol.topics import check_request_id
from kooperant.protocol.versions import SchemaVersion

ANSWER_SCHEMA_ID = "kooperant.answer/1.0"
_ANSWER_VERSION = SchemaVersion("kooperant.answer", 1, 0)
MAX_DECLINE_REASON_CHARACTERS = 500


class AnswerState(StrEnum):
    DELIVERED = "delivered"
    """The agent received the request and stored it. The owner has not decided yet."""
    ACCEPTED = "accepted"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class Answer:
    """The owner's answer to one request.

    The constructor raises ``ValueError`` when ``reason`` does not match ``state``.
    """

    request_id: str
    cluster: str
    member: str
    """The owner of the offer, who answers."""
    resource: str
    state: AnswerState
    decided_at: datetime
    """When the agent stored the request (delivered) or the owner decided."""
    reason: str | None = None
    """Why the owner declined: 1 to 500 characters without control or format characters (Unicode
    categories Cc and Cf, line breaks included) when declined, None otherwise."""
    envelope: Envelope | None = None
    """Message id and sequence number, or ``None`` before the outbox stamps the answer."""

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        if self.decided_at.tzinfo is None:
            raise ValueError(f"invalid answer: decided_at {self.decided_at} has no time zone")
        problem = _reason_problem(self.state, self.reason)
        if problem is not None:
            raise ValueError(problem)

    def to_json(self) -> dict[str, Any]:
        """Return the answer as a JSON-ready dict that validates against the schema.

        Raises ``ValueError`` when the answer has no envelope yet.
        """
        if self.envelope is None:
            raise ValueError(
                f"answer to request {self.request_id} has no envelope; "
                "stamp it with with_envelope, as the agent's outbox does"
            )
        data: dict[str, Any] = {
            "schema": ANSWER_SCHEMA_ID,
            "message_id": self.envelope.message_id,
            "seq": self.envelope.seq,
            "request_id": self.request_id,
            "cluster": self.cluster,
            "member": self.member,
            "resource": self.resource,
            "state": str(self.state),
            "decided_at": format_time(self.decided_at, "auto"),
        }
        if self.reason is not None:
            data["reason"] = self.reason
        return data

    def with_envelope(self, envelope: Envelope | None) -> Answer:
        """Return a copy of the answer carrying ``envelope``."""
        return replace(self, envelope=envelope)

    def to_payload(self) -> bytes:
        """Return the UTF-8 JSON payload published over MQTT."""
        return dump_standard_json(self.to_json(), "answer")


def _reason_problem(state: AnswerState, reason: str | None) -> str | None:
    """Return why ``reason`` does not fit ``state``, or None if it fits."""
    problem = _reason_presence_problem(state, reason is not None)
    if problem is None and reason is not None and len(reason) > MAX_DECLINE_REASON_CHARACTERS:
        problem = (
            f"invalid answer at reason: {len(reason)} characters, "
            f"the maximum is {MAX_DECLINE_REASON_CHARACTERS}"
        )
    if problem is None and reason == "":
        problem = "invalid answer at reason: 0 characters, the minimum is 1"
    if problem is None and reason is not None:
        problem = control_character_problem(reason, "reason", "answer")
    return problem


def _reason_presence_problem(state: str, has_reason: bool) -> str | None:
    if state == AnswerState.DECLINED and not has_reason:
        return "invalid answer at reason: a declined answer needs the owner's reason"
    if state != AnswerState.DECLINED and has_reason:
        return f"invalid answer at reason: only a declined answer has a reason, this one is {state}"
    return None


@cache
def answer_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of ``kooperant.answer/1.x`` as a dict."""
    text = files("kooperant.protocol").joinpath("answer.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _schema_check() -> SchemaCheck:
    return SchemaCheck(answer_json_schema())


def parse_answer(payload: bytes) -> Answer:
    """Return the ``Answer`` in ``payload``, or raise ``OfferValidationError`` saying why.

    An answer of a newer minor version loses the top-level fields this version does not know.
    """
    schema = answer_json_schema()
    data = decode_message(payload, _ANSWER_VERSION, schema["properties"].keys(), "answer")
    envelope = envelope_of(data)
    if isinstance(data, Mapping):
        _check_state_and_reason(data)
    check_schema(data, _schema_check(), "answer")
    reason = data.get("reason")
    problem = None if reason is None else control_character_problem(reason, "reason", "answer")
    if problem is not None:
        raise OfferValidationError(problem)

    # The schema requires message_id and seq, so envelope_of found both.
    assert envelope is not None
    return Answer(
        request_id=data["request_id"],
        cluster=data["cluster"],
        member=data["member"],
        resource=data["resource"],
        state=AnswerState(data["state"]),
        decided_at=parse_time(data["decided_at"], "decided_at"),
        reason=reason,
        envelope=envelope,
    )


def _check_state_and_reason(data: Mapping[str, Any]) -> None:
    """Reject an unknown state, and a reason present or missing against the state.

    The schema states the reason rule with if/then/else, whose errors do not say it plainly and
    come before the error about an unknown state.
    """
    if "state" not in data:
        return
    state = data["state"]
    known = [str(item) for item in AnswerState]
    if state not in known:
        raise OfferValidationError(
            f"invalid answer at state: {shorten_value(state)} is not one of {', '.join(known)}"
        )
    problem = _reason_presence_problem(state, "reason" in data)
    if problem is not None:
        raise OfferValidationError(problem)
