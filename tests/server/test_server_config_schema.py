"""The published JSON Schema of server.yaml: up to date, complete, true to the example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
import typer
import yaml
from jsonschema import Draft202012Validator

from server.cli import app as server_app
from server.config_file import option_names, read_config_file
from tests.conftest import REPO_ROOT

SCHEMA_FILE = REPO_ROOT / "docs" / "schemas" / "server-config.schema.json"
EXAMPLE = REPO_ROOT / "config" / "server.example.yaml"
COMMANDS = ("run", "ingest", "migrate")


def committed_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return schema


def errors_of(data: Any) -> list[str]:
    validator = Draft202012Validator(committed_schema())
    return [error.message for error in validator.iter_errors(data)]


def server_command(name: str) -> typer.core.TyperCommand:
    group = typer.main.get_command(server_app)
    assert isinstance(group, typer.core.TyperGroup)
    command = group.commands[name]
    assert isinstance(command, typer.core.TyperCommand)
    return command


def test_committed_schema_is_current() -> None:
    # A Polish locale must not change the English descriptions.
    environment = {**os.environ, "KOOPERANT_LANG": "pl", "PYTHONPATH": str(REPO_ROOT)}
    generated = subprocess.run(
        [sys.executable, "-m", "server.config_schema"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        timeout=60,
        check=True,
    ).stdout

    assert SCHEMA_FILE.read_text(encoding="utf-8") == generated, (
        "run: python -m server.config_schema > docs/schemas/server-config.schema.json"
    )


def test_schema_dialect_2020_12() -> None:
    Draft202012Validator.check_schema(committed_schema())


def test_every_option_in_schema() -> None:
    properties = committed_schema()["properties"]
    options = {name for command in COMMANDS for name in option_names(server_command(command))}

    assert set(properties) == options
    assert [name for name, item in properties.items() if not item.get("description")] == []


def test_example_first_line_points_to_schema() -> None:
    first_line = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]

    assert first_line == "# yaml-language-server: $schema=../docs/schemas/server-config.schema.json"


def test_example_valid_against_schema() -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))

    assert errors_of(data) == []


@pytest.mark.parametrize("command", COMMANDS)
def test_example_read_by_every_command(command: str) -> None:
    others = {name for other in COMMANDS for name in option_names(server_command(other))}

    values = read_config_file(EXAMPLE, server_command(command), others)

    assert values["database"] == "postgresql://kooperant@127.0.0.1:5432/kooperant"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": "red"}, "Additional properties are not allowed ('colour' was unexpected)"),
        ({"port": 70000}, "70000 is greater than the maximum of 65535"),
        ({"port": "x"}, "'x' is not of type 'integer'"),
        ({"trusted_proxy": "10.0.0.1"}, "'10.0.0.1' is not of type 'array'"),
        ({"smtp_starttls": "yes"}, "'yes' is not of type 'boolean'"),
    ],
)
def test_invalid_file_fails(data: dict[str, Any], message: str) -> None:
    assert message in errors_of(data)
