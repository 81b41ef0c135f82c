"""Reading the policy file into a ``Policy``, with file and line in every error."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from agent.errors import ConfigError
from agent.policy.decide import Policy
from agent.policy.rules import Rule
from agent.yamlfile import YamlDocument
from kooperant.protocol import OPTIONAL_FIELDS, check_identifier


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


def load_policy(path: Path, variables: Mapping[str, str] | None = None) -> Policy:
    """Read the policy file at ``path``; raise ``ConfigError`` naming file, line and key."""
    return _build(YamlDocument.load(path, variables))


def parse_policy(text: str, path: Path, variables: Mapping[str, str] | None = None) -> Policy:
    """Parse policy ``text`` read from ``path``; raise ``ConfigError`` naming file, line and key."""
    return _build(YamlDocument.parse(text, path, variables))


def _build(document: YamlDocument) -> Policy:
    path = document.path
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
            index + 1,
            frozenset(entry.fields),
            resources=frozenset({entry.resource}),
            source=path,
            line=line,
        )
    return Policy(rules.values(), source=path)
