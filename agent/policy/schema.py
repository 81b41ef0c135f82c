"""The JSON Schema of the policy file, generated from ``PolicyFileModel``.

Editors such as VS Code with the YAML extension read ``config/policy.schema.json`` through the
first line of a policy file, ``# yaml-language-server: $schema=policy.schema.json``, and then
complete and check every key. Regenerate the file after changing the model::

    python -m agent.policy.schema > config/policy.schema.json

``tests/agent/test_policy_schema.py`` fails while the committed file differs from the output.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from agent.policy.model import PolicyFileModel

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def policy_json_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a policy file as a dict."""
    schema = PolicyFileModel.model_json_schema()
    return {"$schema": SCHEMA_DIALECT, **schema}


def policy_json_schema_text() -> str:
    """Return the schema exactly as it is committed: indented JSON ending with a newline."""
    return json.dumps(policy_json_schema(), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(policy_json_schema_text())
