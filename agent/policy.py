"""The owner's sharing policy: deny by default.

A resource is published only when a rule of the policy file names it, and then only with the
fields the rule lists. The envelope (schema, cluster, member, resource, kind, generated_at) is
always sent, because without it a message cannot be routed or stored. File shape::

    share:
      - resource: cnc-5ax-01
        fields: [name, capabilities, state, free_hours, free_intervals, horizon]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from agent.errors import ConfigError
from agent.yamlfile import YamlDocument
from kooperant.protocol import Offer, check_identifier
from kooperant.protocol.offer import OPTIONAL_FIELDS


def _check_field(name: str) -> str:
    if name not in OPTIONAL_FIELDS:
        raise ValueError(
            f"unknown offer field {name!r}; allowed fields: {', '.join(OPTIONAL_FIELDS)}"
        )
    return name


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    resource: Annotated[str, AfterValidator(lambda value: check_identifier(value, "resource"))]
    fields: tuple[Annotated[str, AfterValidator(_check_field)], ...]


class _PolicyFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    share: tuple[_Rule, ...] = ()


class Policy:
    """The resources that may leave the premises, each with the fields it may carry."""

    def __init__(self, rules: Mapping[str, frozenset[str]]) -> None:
        self._rules = dict(rules)

    def __repr__(self) -> str:
        return f"Policy(resources={sorted(self._rules)})"

    @property
    def resources(self) -> frozenset[str]:
        """Ids of the resources a rule names."""
        return frozenset(self._rules)

    def apply(self, offer: Offer) -> Offer | None:
        """Return ``offer`` with only the permitted fields, or ``None`` if no rule names it."""
        permitted = self._rules.get(offer.resource)
        if permitted is None:
            return None
        withheld: dict[str, Any] = {name: None for name in OPTIONAL_FIELDS if name not in permitted}
        return dataclasses.replace(offer, **withheld)


def load_policy(path: Path, variables: Mapping[str, str] | None = None) -> Policy:
    """Read the policy file at ``path``; raise ``ConfigError`` naming file, line and key."""
    document = YamlDocument.load(path, variables)
    data = {} if document.data is None else document.data
    if not isinstance(data, dict):
        raise document.error((), "expected a mapping with the key 'share:' listing the rules")

    try:
        parsed = _PolicyFile.model_validate(data)
    except ValidationError as error:
        raise ConfigError(path, document.validation_problems(error)) from error

    rules: dict[str, frozenset[str]] = {}
    for index, rule in enumerate(parsed.share):
        if rule.resource in rules:
            raise document.error(
                ("share", index, "resource"),
                f"second rule for resource {rule.resource!r}; merge its fields into one rule",
            )
        rules[rule.resource] = frozenset(rule.fields)
    return Policy(rules)
