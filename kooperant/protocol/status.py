"""The member status message, schema ``kooperant.status/1.0``.

An agent publishes its member's status, retained and with QoS 1, on the status topic: online right
after it connects, offline with the reason ``stopped`` before a clean disconnect. It also leaves
an offline message with the reason ``connection_lost`` as its MQTT will, which the broker
publishes when the connection drops without a DISCONNECT. The online message and the will of one
connection carry the same ``connected_at``, so the aggregator can ignore a late will of an older
connection that arrives after the online message of a newer one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any

from kooperant.protocol.errors import OfferValidationError
from kooperant.protocol.offer import (
    check_payload_size,
    dump_standard_json,
    format_time,
    load_standard_json,
    parse_time,
    pattern_reason,
)
from kooperant.protocol.schema_check import SchemaCheck
from kooperant.protocol.versions import SchemaVersion, accept_schema_version

STATUS_SCHEMA_ID = "kooperant.status/1.0"
_STATUS_VERSION = SchemaVersion("kooperant.status", 1, 0)


class MemberState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class OfflineReason(StrEnum):
    STOPPED = "stopped"
    """The agent stopped and published this status before its clean disconnect."""
    CONNECTION_LOST = "connection_lost"
    """The broker lost the connection and published the agent's will."""


@dataclass(frozen=True, slots=True)
class MemberStatus:
    """Whether one member's agent is connected to the broker, and since when."""

    cluster: str
    member: str
    state: MemberState
    connected_at: datetime
    """When the connection this message describes began."""
    reason: OfflineReason | None = None
    """Reason for being offline, set exactly when ``state`` is offline."""
    agent_version: str | None = None

    def __post_init__(self) -> None:
        offline = self.state is MemberState.OFFLINE
        if offline != (self.reason is not None):
            raise ValueError(
                f"member status {self.state} with reason {self.reason}: "
                "an offline status needs a reason, an online status has none"
            )

    def to_json(self) -> dict[str, Any]:
        """Return the status as a JSON-ready dict that validates against the schema."""
        data: dict[str, Any] = {
            "schema": STATUS_SCHEMA_ID,
            "cluster": self.cluster,
            "member": self.member,
            "state": str(self.state),
            "connected_at": format_time(self.connected_at, "microseconds"),
        }
        if self.reason is not None:
            data["reason"] = str(self.reason)
        if self.agent_version is not None:
            data["agent_version"] = self.agent_version
        return data

    def to_payload(self) -> bytes:
        """Return the UTF-8 JSON payload published over MQTT."""
        return dump_standard_json(self.to_json(), "status")


@cache
def status_json_schema() -> dict[str, Any]:
    """Return the JSON Schema of ``kooperant.status/1.x`` as a dict."""
    text = files("kooperant.protocol").joinpath("status.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def parse_status(payload: bytes) -> MemberStatus:
    """Return the ``MemberStatus`` in ``payload``, or raise ``OfferValidationError`` saying why.

    A status of a newer minor version loses the top-level fields this version does not know.
    """
    check_payload_size(payload)
    try:
        data = load_standard_json(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OfferValidationError(f"status payload is not UTF-8 JSON: {error}") from error

    schema = status_json_schema()
    data = accept_schema_version(data, _STATUS_VERSION, schema["properties"].keys(), "a status")
    if isinstance(data, Mapping):
        _check_reason_matches_state(data)
    _check_status_schema(data)

    return MemberStatus(
        cluster=data["cluster"],
        member=data["member"],
        state=MemberState(data["state"]),
        connected_at=parse_time(data["connected_at"], "connected_at"),
        reason=OfflineReason(data["reason"]) if "reason" in data else None,
        agent_version=data.get("agent_version"),
    )


def _check_reason_matches_state(data: Mapping[str, Any]) -> None:
    """Reject a reason on an online status and a missing one on an offline status.

    The schema states the same rule with if/then/else, whose errors do not say it plainly.
    """
    state = data.get("state")
    if state == MemberState.OFFLINE and "reason" not in data:
        raise OfferValidationError(
            "invalid status: an offline status needs a reason ('stopped' or 'connection_lost')"
        )
    if state == MemberState.ONLINE and "reason" in data:
        raise OfferValidationError(
            f"invalid status: an online status has no reason, found {data['reason']!r}"
        )


@cache
def _schema_check() -> SchemaCheck:
    return SchemaCheck(status_json_schema())


def _check_status_schema(data: object) -> None:
    errors = _schema_check().errors(data)
    if errors:
        first = errors[0]
        where = "/".join(str(part) for part in first.absolute_path) or "(root)"
        reason = pattern_reason(first, where) or f"invalid status at {where}: {first.message}"
        raise OfferValidationError(reason)
