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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Rule:
    """One entry of the policy's ``share`` list and where it is written."""

    number: int
    """Position in the ``share`` list, counting from 1."""
    resource: str
    fields: frozenset[str]
    source: Path | None = None
    line: int | None = None

    @property
    def location(self) -> str:
        """``file:line`` of the rule, or ``rule N`` when the rule was not read from a file."""
        if self.source is None:
            return f"rule {self.number}"
        if self.line is None:
            return str(self.source)
        return f"{self.source}:{self.line}"


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's verdict on one offer: what may leave, and which rule let it out."""

    resource: str
    offer: Offer | None
    """The offer with only the permitted fields, or ``None`` when it is withheld."""
    rule: Rule | None
    removed: tuple[str, ...] = ()
    """Fields the offer had and the rule left out, in protocol order."""

    @property
    def shared(self) -> bool:
        return self.offer is not None

    @property
    def reason(self) -> str:
        """Why the offer is shared or withheld, in English, for logs and JSON output."""
        if self.rule is None:
            return f"no rule names resource {self.resource!r}"
        return f"shared by rule {self.rule.number} ({self.rule.location})"


class Policy:
    """The resources that may leave the premises, each with the fields it may carry."""

    def __init__(self, rules: Mapping[str, frozenset[str]] | Iterable[Rule] = ()) -> None:
        if isinstance(rules, Mapping):
            # Rules given as {resource: fields} are numbered in the mapping's order.
            rules = [
                Rule(number, resource, frozenset(fields))
                for number, (resource, fields) in enumerate(rules.items(), start=1)
            ]
        self._rules = {rule.resource: rule for rule in rules}

    def __repr__(self) -> str:
        return f"Policy(resources={sorted(self._rules)})"

    @property
    def resources(self) -> frozenset[str]:
        """Ids of the resources a rule names."""
        return frozenset(self._rules)

    def decide(self, offer: Offer) -> Decision:
        """Return the permitted part of ``offer`` and the rule that permits it, or why not."""
        rule = self._rules.get(offer.resource)
        if rule is None:
            return Decision(offer.resource, None, None)

        withheld = [name for name in OPTIONAL_FIELDS if name not in rule.fields]
        removed = tuple(name for name in withheld if getattr(offer, name) is not None)
        blanks: dict[str, Any] = dict.fromkeys(withheld)
        return Decision(offer.resource, dataclasses.replace(offer, **blanks), rule, removed)

    def apply(self, offer: Offer) -> Offer | None:
        """Return ``offer`` with only the permitted fields, or ``None`` if no rule names it."""
        return self.decide(offer).offer


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

    rules: dict[str, Rule] = {}
    for index, entry in enumerate(parsed.share):
        if entry.resource in rules:
            raise document.error(
                ("share", index, "resource"),
                f"second rule for resource {entry.resource!r}; merge its fields into one rule",
            )
        line = document.line_of(("share", index))
        rules[entry.resource] = Rule(
            index + 1, entry.resource, frozenset(entry.fields), source=path, line=line
        )
    return Policy(rules.values())
