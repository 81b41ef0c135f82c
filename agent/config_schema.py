"""The JSON Schema of the agent config file, generated from ``AgentConfig`` and the adapters.

Editors such as VS Code with the YAML extension read ``docs/schemas/agent-config.schema.json``
through the first line of an agent config,
``# yaml-language-server: $schema=../docs/schemas/agent-config.schema.json``, and then complete
and check every key, also inside ``adapters``: each entry is matched by its ``type`` to the
settings model of that installed adapter. Regenerate the file after changing a model::

    python -m agent.config_schema > docs/schemas/agent-config.schema.json

``tests/agent/test_config_schema.py`` fails while the committed file differs from the output.
The schema describes the file as written, before ``${NAME}`` and ``${file:PATH}`` are expanded,
so a number written as such a reference is reported by the editor but accepted by the agent.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, Field, create_model

from adapters.registry import available_adapters, load_adapter_class
from agent.config import AgentConfig

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _adapter_entry(type_name: str) -> type[BaseModel]:
    """Return a model of one ``adapters`` entry of ``type_name``: type, name and settings."""
    adapter_class = load_adapter_class(type_name)
    summary = (adapter_class.__doc__ or "").strip().split("\n")[0]
    fields: dict[str, Any] = {
        "type": (Literal[type_name], Field(description=f"Adapter type {type_name}. {summary}")),
        "name": (str, Field(description="Unique name of this adapter in the config.")),
    }
    model: type[BaseModel] = create_model(
        f"Adapter_{type_name}", __base__=adapter_class.settings_model, **fields
    )
    return model


def agent_config_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of an agent config file as a dict."""
    entries = tuple(_adapter_entry(name) for name in sorted(available_adapters()))
    # A union built at run time, from the adapters installed.
    entry: Any = Annotated[Union[entries], Field(discriminator="type")]  # noqa: UP007
    description = AgentConfig.model_fields["adapters"].description
    file_model = create_model(
        "AgentConfigFile",
        __base__=AgentConfig,
        adapters=(list[entry], Field(default=[], description=description)),
    )
    schema = file_model.model_json_schema()
    schema["title"] = "kooperant agent config"
    return {"$schema": SCHEMA_DIALECT, **schema}


def agent_config_json_schema_text() -> str:
    """Return the schema exactly as it is committed: indented JSON ending with a newline."""
    return json.dumps(agent_config_json_schema(), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(agent_config_json_schema_text())
