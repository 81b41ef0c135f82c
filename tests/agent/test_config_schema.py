"""The published JSON Schema of the agent config: up to date, documented, true to the examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from adapters.registry import available_adapters
from agent.config_schema import agent_config_json_schema, agent_config_json_schema_text
from tests.conftest import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "docs" / "schemas" / "agent-config.schema.json"
AGENT_EXAMPLE = REPO_ROOT / "config" / "agent.example.yaml"
DEMO_CONFIG = REPO_ROOT / "config" / "demo" / "agent.yaml"
ADAPTER_EXAMPLES = sorted((REPO_ROOT / "config" / "adapters").glob("*.example.yaml"))


class EditorLoader(yaml.SafeLoader):
    """A YAML loader that keeps dates as text, as YAML 1.2 editors and JSON Schema see them."""


EditorLoader.yaml_implicit_resolvers = {
    first: [entry for entry in resolvers if entry[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def committed_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return schema


def errors_of(data: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Return every error, also those inside a oneOf, as "[path]: message"."""
    validator = Draft202012Validator(schema or committed_schema())
    pending = list(validator.iter_errors(data))
    messages = []
    while pending:
        error = pending.pop(0)
        messages.append(f"{list(error.absolute_path)}: {error.message}")
        pending.extend(error.context or ())
    return messages


def adapters_schema() -> dict[str, Any]:
    """Return the schema of the ``adapters`` list, with the definitions it refers to."""
    schema = committed_schema()
    return {"$defs": schema["$defs"], **schema["properties"]["adapters"]}


def minimal_config(**changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "member": "acme",
        "cluster": "pomorskie",
        "broker": {"url": "mqtt://127.0.0.1:1883"},
        "policy": "policy.yaml",
    }
    config.update(changes)
    return config


def test_committed_schema_is_current() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")

    assert committed == agent_config_json_schema_text(), (
        "run: python -m agent.config_schema > docs/schemas/agent-config.schema.json"
    )


def test_schema_dialect_2020_12() -> None:
    schema = agent_config_json_schema()

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def test_every_top_level_key_described() -> None:
    properties = committed_schema()["properties"]

    undocumented = [name for name, item in properties.items() if not item.get("description")]

    assert undocumented == []
    assert "broker" in properties
    assert "adapters" in properties


def test_every_adapter_type_listed() -> None:
    mapping = adapters_schema()["items"]["discriminator"]["mapping"]

    assert sorted(mapping) == sorted(available_adapters())


@pytest.mark.parametrize("path", [AGENT_EXAMPLE, DEMO_CONFIG], ids=lambda path: path.name)
def test_shipped_config_valid(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    schema_path = text.splitlines()[0].removeprefix("# yaml-language-server: $schema=")

    assert (path.parent / schema_path).resolve() == SCHEMA_FILE
    assert errors_of(yaml.load(text, Loader=EditorLoader)) == []


@pytest.mark.parametrize("path", ADAPTER_EXAMPLES, ids=lambda path: path.name)
def test_adapter_example_valid(path: Path) -> None:
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=EditorLoader)
    # Most examples are a bare list of entries; the OPC UA one shows the adapters: key too.
    entries = data["adapters"] if isinstance(data, dict) else data

    assert isinstance(entries, list)
    assert errors_of(entries, adapters_schema()) == []


def test_adapter_examples_found() -> None:
    assert len(ADAPTER_EXAMPLES) >= 8


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"membr": "x"}, "[]: Additional properties are not allowed ('membr' was unexpected)"),
        ({"horizon_days": 400}, "['horizon_days']: 400 is greater than the maximum of 366"),
        ({"status": {"port": "x"}}, "['status', 'port']: 'x' is not of type 'integer'"),
        (
            {"adapters": [{"type": "host", "name": "h", "resource": "r", "colour": "red"}]},
            "['adapters', 0]: Additional properties are not allowed ('colour' was unexpected)",
        ),
        (
            {"adapters": [{"type": "nope", "name": "h"}]},
            "['adapters', 0, 'type']: 'host' was expected",
        ),
        (
            {"adapters": [{"type": "host", "name": "h"}]},
            "['adapters', 0]: 'resource' is a required",
        ),
    ],
)
def test_invalid_config_fails(changes: dict[str, Any], message: str) -> None:
    errors = errors_of(minimal_config(**changes))

    assert any(error.startswith(message) for error in errors), errors


def test_minimal_config_passes() -> None:
    assert errors_of(minimal_config()) == []
