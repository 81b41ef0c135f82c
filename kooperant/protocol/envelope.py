"""The envelope of an offer or withdrawal: a message id and a per-member sequence number.

The message id lets the aggregator store a message redelivered by the broker (QoS 1 is at least
once) only once. The sequence number orders the messages of one member even when their
timestamps are equal or the broker delivers them out of order. ``next_sequence`` is a hybrid
logical clock, so the numbers keep increasing after the agent loses its state file.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MESSAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
MAX_SEQUENCE = 2**53 - 1
"""The largest integer that a JSON reader using 64-bit floats (JavaScript) represents exactly."""

_MESSAGE_ID = re.compile(MESSAGE_ID_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Envelope:
    """The message id and sequence number that an agent adds to each offer and withdrawal."""

    message_id: str
    seq: int

    def __post_init__(self) -> None:
        reason = message_id_problem(self.message_id) or sequence_problem(self.seq)
        if reason is not None:
            raise ValueError(reason)


def message_id_problem(value: object) -> str | None:
    """Return why ``value`` is not a valid message id, or None if it is one."""
    if isinstance(value, str) and _MESSAGE_ID.fullmatch(value):
        return None
    quoted = repr(value) if isinstance(value, str) and len(value) <= 200 else _json_text(value)
    return (
        f"invalid message_id {quoted}: use 1 to 128 letters, digits, '.', '_', ':' or '-', "
        "starting with a letter or digit"
    )


def sequence_problem(value: object) -> str | None:
    """Return why ``value`` is not a valid sequence number, or None if it is one.

    A float such as 1.0 and a boolean are rejected even though Python compares them equal to an
    int, because the JSON Schema type ``integer`` would accept 1.0 and the agent never writes it.
    """
    if type(value) is int and 1 <= value <= MAX_SEQUENCE:
        return None
    return f"invalid seq {_json_text(value)}: expected an integer from 1 to {MAX_SEQUENCE}"


def _json_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    text = repr(value)
    return text if len(text) <= 200 else f"{text[:200]}... ({len(text)} characters)"


def new_message_id() -> str:
    """Return a new random message id (a UUID 4 in its usual text form)."""
    return str(uuid.uuid4())


def next_sequence(previous: int, now: datetime) -> int:
    """Return the sequence number after ``previous``: the larger of ``previous + 1`` and ``now``.

    ``now`` counts as microseconds since the Unix epoch. The result is strictly greater than
    ``previous``. If the agent loses the number it stored, a clock that is roughly right still
    gives a number above every one it sent before. Raises ``ValueError`` for a naive ``now``, a
    negative ``previous`` or a result above ``MAX_SEQUENCE``.
    """
    if now.tzinfo is None:
        raise ValueError(f"naive datetime {now} cannot give a sequence number; attach a time zone")
    if previous < 0:
        raise ValueError(f"previous sequence number {previous} is negative")
    clock = (now - _EPOCH) // _MICROSECOND
    result = max(previous + 1, clock)
    if result > MAX_SEQUENCE:
        raise ValueError(f"sequence number {result} exceeds the maximum {MAX_SEQUENCE}")
    return result


def message_key(envelope: Envelope | None, payload: bytes) -> str:
    """Return the key under which the aggregator records a message as delivered.

    It is the envelope's message id, or ``sha256:`` and the payload's SHA-256 in hex for a
    message without an envelope (schema version 1.0), so an identical redelivery gets the same key.
    """
    if envelope is not None:
        return envelope.message_id
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def parse_envelope(data: Mapping[str, Any]) -> Envelope | None:
    """Return the envelope in a decoded message, None if it has none, or raise ``ValueError``.

    ``message_id`` and ``seq`` are both present or both absent.
    """
    has_id = "message_id" in data
    has_seq = "seq" in data
    if not has_id and not has_seq:
        return None
    if has_id != has_seq:
        present, missing = ("message_id", "seq") if has_id else ("seq", "message_id")
        raise ValueError(
            f"message_id and seq come together: the payload has {present} but no {missing}"
        )
    return Envelope(data["message_id"], data["seq"])
