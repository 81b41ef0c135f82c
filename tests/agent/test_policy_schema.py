"""The published JSON Schema of the policy file: up to date, documented, and strict."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from agent.policy.schema import policy_json_schema, policy_json_schema_text
from tests.conftest import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "config" / "policy.schema.json"
EXAMPLE = REPO_ROOT / "config" / "policy.example.yaml"


class EditorLoader(yaml.SafeLoader):
    """A YAML loader that keeps dates as text, as YAML 1.2 editors and JSON Schema see them."""


EditorLoader.yaml_implicit_resolvers = {
    first: [entry for entry in resolvers if entry[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def errors_of(text: str) -> list[str]:
    data = yaml.load(text, Loader=EditorLoader)
    return [error.message for error in validator().iter_errors(data)]


def properties(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield every property schema in ``schema`` with its dotted path."""
    if isinstance(schema, dict):
        for name, item in schema.get("properties", {}).items():
            yield f"{path}.{name}", item
            yield from properties(item, f"{path}.{name}")
        for key, value in schema.items():
            if key != "properties":
                yield from properties(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from properties(item, f"{path}[{index}]")


def test_committed_schema_is_current() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")

    assert committed == policy_json_schema_text(), (
        "run: python -m agent.policy.schema > config/policy.schema.json"
    )


def test_schema_dialect_2020_12() -> None:
    schema = policy_json_schema()

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_key_has_description() -> None:
    found = dict(properties(policy_json_schema()))

    undocumented = [path for path, item in found.items() if not item.get("description")]

    assert len(found) == 18
    assert undocumented == []


def test_example_policy_valid() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")

    assert text.splitlines()[0] == "# yaml-language-server: $schema=policy.schema.json"
    assert errors_of(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "share:\n  - resource: a\n    fields: [name]\n    expires: 2027-01-31\n",
        "share:\n  - resource: a\n    fields: [name]\n    expires: 2027-01-31T18:00:00+01:00\n",
        "share:\n  - kind: [machine, storage]\n    fields: [all, price]\n    round: 15min\n",
        "share:\n  - tag: nadwyzki\n    fields: []\n    audience: cluster\n",
        "groups: {g: [a]}\nshare:\n  - resource: a\n    fields: []\n    audience: {groups: [g]}\n",
    ],
)
def test_valid_documents_pass(text: str) -> None:
    assert errors_of(text) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shares: []\n", "Additional properties are not allowed ('shares' was unexpected)"),
        ("share:\n  - resource: a\n", "'fields' is a required property"),
        (
            "share:\n  - resource: a\n    fields: [owner_phone]\n",
            "'owner_phone' is not one of ['all', 'name', 'capabilities', 'state', 'state_since', "
            "'horizon', 'free_hours', 'free_intervals', 'amounts', 'price', 'suppliers', "
            "'customers']",
        ),
        (
            "share:\n  - resource: a\n    fields: []\n    colour: red\n",
            "Additional properties are not allowed ('colour' was unexpected)",
        ),
        (
            "share:\n  - resource: a\n    fields: []\n    round: week\n",
            "'week' is not valid under any of the given schemas",
        ),
        (
            "share:\n  - resource: a\n    fields: []\n    horizon_days: 400\n",
            "400 is not valid under any of the given schemas",
        ),
        (
            "share:\n  - resource: a\n    fields: []\n    bands: {free_hours: [-1]}\n",
            "-1 is less than the minimum of 0",
        ),
        (
            "share:\n  - resource: 'a/b'\n    fields: []\n",
            "'a/b' is not valid under any of the given schemas",
        ),
        (
            "share:\n  - resource: a\n    fields: []\n    audience: everybody\n",
            "'everybody' is not valid under any of the given schemas",
        ),
    ],
)
def test_invalid_documents_fail(text: str, message: str) -> None:
    assert message in errors_of(text)
