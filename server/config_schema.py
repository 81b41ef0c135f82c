"""The JSON Schema of ``server.yaml``, generated from the options of the configurable commands.

Every option of ``kooperant server run``, ``ingest`` and ``migrate`` becomes a property named
like its ``server.yaml`` key, with the option's type, limits, default and English help text.
Editors read ``docs/schemas/server-config.schema.json`` through the first line of a server
config, ``# yaml-language-server: $schema=...``. Regenerate the file after adding or changing
an option::

    python -m server.config_schema > docs/schemas/server-config.schema.json

The help texts are in English whatever the locale, because this command sets
``KOOPERANT_LANG=en`` before it imports the modules whose help texts are read at import.
``tests/server/test_server_config_schema.py`` fails while the committed file differs from the
output.
"""

from __future__ import annotations

import json
import os
import sys
import typing
from typing import Any

import typer
from pydantic import TypeAdapter
from typer.core import TyperGroup, TyperOption

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def server_config_json_schema(app: typer.Typer) -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of the config file of ``app``'s commands."""
    from server.config_file import ConfigurableCommand, option_names
    from server.option_sources import ENVIRONMENT_PREFIX

    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    properties: dict[str, dict[str, Any]] = {}
    commands: dict[str, list[str]] = {}
    # In registration order, so the help of run describes an option that run shares.
    for command_name, command in group.commands.items():
        if not isinstance(command, ConfigurableCommand):
            continue
        hints = typing.get_type_hints(command.callback) if command.callback else {}
        for param in command.params:
            if isinstance(param, TyperOption) and param.name in option_names(command):
                properties.setdefault(param.name, _property(param, hints.get(param.name)))
                commands.setdefault(param.name, []).append(command_name)

    for name, item in properties.items():
        used_by = ", ".join(commands[name])
        variable = ENVIRONMENT_PREFIX + name.upper()
        item["description"] = f"{item['description']} Commands: {used_by}. Variable: {variable}."
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "kooperant server config",
        "description": (
            "Options of kooperant server run, ingest and migrate; a command ignores the keys of "
            "the others. The command line and KOOPERANT_SERVER_* variables override the file."
        ),
        "type": "object",
        "additionalProperties": False,
        "properties": dict(sorted(properties.items())),
    }


def _property(param: TyperOption, annotation: Any) -> dict[str, Any]:
    """Return the schema of one option: the JSON type of its annotation, limits and default."""
    schema: dict[str, Any] = {"description": param.help or ""}
    schema.update(_value_schema(annotation))
    if param.min is not None:
        schema["minimum"] = param.min
    if param.max is not None:
        schema["maximum"] = param.max
    default = param.default
    if default is not None and not callable(default):
        schema["default"] = default
    return schema


def _value_schema(annotation: Any) -> dict[str, Any]:
    """Return the JSON Schema of a value of ``annotation``, leaving out ``None``."""
    members = [member for member in typing.get_args(annotation) if member is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, type(int | None)) and len(members) == 1:
        annotation = members[0]
    schema: dict[str, Any] = TypeAdapter(annotation).json_schema()
    return schema


def server_config_json_schema_text() -> str:
    """Return the schema of the ``kooperant server`` commands as it is committed."""
    from server.cli import app

    return json.dumps(server_config_json_schema(app), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    os.environ["KOOPERANT_LANG"] = "en"
    sys.stdout.write(server_config_json_schema_text())
