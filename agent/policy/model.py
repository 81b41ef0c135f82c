"""The policy file as pydantic models: every key, its type, its limits and its description.

The models validate the data of one YAML file and are the source of the published JSON Schema
(``config/policy.schema.json``, written by ``python -m agent.policy.schema``), so the descriptions
below are what editors show next to each key. Checks that need more than one key, such as an
audience group that must be defined under ``groups``, are in ``agent.policy.loader``. The
validators word their errors in the current language through ``agent.validation_messages``.
"""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from agent.policy.rules import ALL_FIELDS, MAX_DELAY_MINUTES, MAX_HORIZON_DAYS, Rounding
from agent.reasons import checked_identifier
from agent.validation_messages import MESSAGES
from kooperant.protocol import IDENTIFIER_PATTERN, OPTIONAL_FIELDS, ResourceKind

FIELD_NAMES = (ALL_FIELDS, *OPTIONAL_FIELDS)


def _identifier(id_name: str) -> AfterValidator:
    return AfterValidator(lambda value: checked_identifier(value, id_name))


_ID_SCHEMA = Field(json_schema_extra={"pattern": IDENTIFIER_PATTERN})
ResourceId = Annotated[str, _identifier("resource"), _ID_SCHEMA]
MemberId = Annotated[str, _identifier("member"), _ID_SCHEMA]
GroupName = Annotated[str, _identifier("group"), _ID_SCHEMA]


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _one_or_many_schema(item: dict[str, Any]) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]})


def _check_field_name(name: str) -> str:
    if name not in FIELD_NAMES:
        allowed = ", ".join(FIELD_NAMES)
        raise ValueError(MESSAGES("policy.field_unknown", name=name, allowed=allowed))
    return name


def _check_ascending(edges: list[float]) -> list[float]:
    for lower, upper in itertools.pairwise(edges):
        if upper <= lower:
            raise ValueError(MESSAGES("policy.edges_not_ascending", lower=lower, upper=upper))
    return edges


def _check_finite(value: object) -> object:
    # YAML reads .inf, -.inf, .nan and 1.0e+400 as floats, and JSON has no token for them.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(MESSAGES("policy.edge_not_finite", value=value))
    return value


def _parse_expiry(value: object) -> object:
    expected = MESSAGES("policy.expires_expected")
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        except ValueError as error:
            reason = MESSAGES("policy.expires_invalid", value=value, expected=expected)
            raise ValueError(reason) from error
    if isinstance(value, datetime) and value.tzinfo is None:
        reason = MESSAGES("policy.expires_no_offset", value=value.isoformat(), expected=expected)
        raise ValueError(reason)
    if not isinstance(value, date):
        raise ValueError(MESSAGES("policy.expires_invalid", value=value, expected=expected))
    return value


Tag = Annotated[str, Field(min_length=1, max_length=100)]
FieldName = Annotated[
    str, AfterValidator(_check_field_name), Field(json_schema_extra={"enum": list(FIELD_NAMES)})
]
BandEdge = Annotated[float, Field(strict=True, ge=0), BeforeValidator(_check_finite)]
BandEdges = Annotated[
    list[BandEdge],
    Field(min_length=1),
    AfterValidator(_check_ascending),
]
Expiry = Annotated[
    date | datetime,
    BeforeValidator(_parse_expiry),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]}
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AudienceModel(_Strict):
    """The members that may see an offer besides the owner; both lists together."""

    members: tuple[MemberId, ...] = Field(
        default=(), description="Member ids of the cluster that may see the offer."
    )
    groups: tuple[GroupName, ...] = Field(
        default=(), description="Names of groups defined under `groups:` whose members may see it."
    )

    @model_validator(mode="after")
    def _check_not_empty(self) -> AudienceModel:
        if not self.members and not self.groups:
            raise ValueError(MESSAGES("policy.audience_empty"))
        return self


def _parse_audience(value: object) -> object:
    if value == "cluster":
        return None
    if isinstance(value, str) or not isinstance(value, dict):
        raise ValueError(MESSAGES("policy.audience_invalid", value=value))
    return value


_AUDIENCE_SCHEMA = {
    "anyOf": [
        {"const": "cluster", "description": "Every member of the cluster (the default)."},
        AudienceModel.model_json_schema(),
    ]
}


class RuleModel(_Strict):
    """One rule of the `share:` list. The first rule that matches and has not expired applies."""

    resource: Annotated[
        tuple[ResourceId, ...],
        BeforeValidator(_one_or_many),
        Field(min_length=1),
        _one_or_many_schema({"type": "string", "pattern": IDENTIFIER_PATTERN}),
    ] = Field(default=(), description="Selector: a resource id or a list of ids.")
    kind: Annotated[
        tuple[ResourceKind, ...],
        BeforeValidator(_one_or_many),
        Field(min_length=1),
        _one_or_many_schema({"enum": [kind.value for kind in ResourceKind]}),
    ] = Field(default=(), description="Selector: a resource kind or a list of kinds.")
    tag: Annotated[
        tuple[Tag, ...],
        BeforeValidator(_one_or_many),
        Field(min_length=1),
        _one_or_many_schema({"type": "string", "minLength": 1, "maxLength": 100}),
    ] = Field(
        default=(),
        description="Selector: a tag or a list of tags from `resources.<id>.tags` of the agent "
        "config; any one of them matches. Tags never leave the agent.",
    )
    publish_as: ResourceId | None = Field(
        default=None,
        description="Public id used in the MQTT topic and the payload instead of the internal "
        "id. Only with exactly one id in `resource`.",
    )
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Public display name; it leaves only when `name` is in `fields`.",
    )
    fields: list[FieldName] = Field(
        description="Offer fields that may leave. `all` is every field except price, suppliers "
        "and customers, which leave only when listed by name, e.g. [all, price]. The envelope "
        "(schema, cluster, member, resource, kind, generated_at) always leaves.",
    )
    round: Rounding | None = Field(
        default=None,
        description="Shows free time only in whole units, rounded inward: 15min or hour (grid), "
        "half_day, shift or day (blocks offered only when entirely free). state_since is "
        "rounded down.",
    )
    bands: dict[Annotated[str, Field(min_length=1)], BandEdges] = Field(
        default_factory=dict,
        description="Numbers shown as bands instead of exact values, per field: free_hours or an "
        "amount quantity such as pallet_places. Edges are >= 0 and strictly ascending.",
    )
    horizon_days: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_HORIZON_DAYS,
        description="Offer only free time within this many days from now.",
    )
    delay_minutes: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_DELAY_MINUTES,
        description="Show state and state_since as they were this many minutes ago.",
    )
    labels: (
        dict[Annotated[str, Field(min_length=1)], Annotated[str, Field(min_length=1)]] | None
    ) = Field(
        default=None,
        description="Amount labels that may leave, each renamed to its value, e.g. "
        '{"/": system}. Labels not listed here are dropped.',
    )
    audience: Annotated[
        AudienceModel | None, BeforeValidator(_parse_audience), WithJsonSchema(_AUDIENCE_SCHEMA)
    ] = Field(
        default=None,
        json_schema_extra={"default": "cluster"},
        description="Who may see the offer: `cluster` (every member, the default) or "
        "{members: [...], groups: [...]}.",
    )
    expires: Expiry | None = Field(
        default=None,
        description="End of the share: a date (the share ends at the end of that day in the "
        "agent's time zone) or a date-time with a UTC offset.",
    )
    requests: bool = Field(
        default=True,
        strict=True,
        description="Whether other members may request capacity of the offer through the "
        "aggregator (true, the default). false keeps the offer visible but the aggregator "
        "rejects every request for it.",
    )


class PolicyFileModel(_Strict):
    """The owner's sharing policy of a kooperant agent. Nothing is shared that no rule allows."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="kooperant sharing policy")

    groups: dict[GroupName, Annotated[tuple[MemberId, ...], Field(min_length=1)]] = Field(
        default_factory=dict,
        description="Named groups of member ids of the cluster, for `audience.groups`.",
    )
    share: list[RuleModel] = Field(
        default_factory=list,
        description="The rules. Deny by default: a resource no rule matches is not published.",
    )
