"""Write the files of ``kooperant agent init``: agent.yaml, policy.yaml, their JSON Schemas and
the broker password.

The comments in the written files are English with the Polish term in brackets, as in
``config/agent.example.yaml``. The policy shares nothing: its rules are comments naming the
discovered resources. The broker password goes to ``secrets/broker-password`` (mode 0600) and
agent.yaml refers to it as ``${file:secrets/broker-password}``, so it is never in agent.yaml.

The schemas ``agent-config.schema.json`` and ``policy.schema.json`` are generated from the
installed code, so they cover the adapters installed now, and the first line of each YAML file
names its schema for editors (``# yaml-language-server: $schema=...``). They are written next to
the YAML files because a wheel user has no ``docs/schemas`` folder to point to.

``write_files`` writes nothing unless every target is free (or ``force`` is set), and writes each
file to a temporary file in the same folder first and then renames it, so a failure leaves no
half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from agent.config_schema import agent_config_json_schema_text
from agent.init_answers import InitAnswers, OpcUaServer
from agent.init_templates import (
    CONFIG_SCHEMA_NAME,
    POLICY_SCHEMA_NAME,
    agent_header,
    example_path,
    export_lines,
    host_lines,
    policy_text,
)
from agent.policy.schema import policy_json_schema_text

CONFIG_NAME = "agent.yaml"
POLICY_NAME = "policy.yaml"
PASSWORD_PATH = Path("secrets") / "broker-password"

# A YAML scalar that may go without quotes when it also loads back as the same string.
_PLAIN_SCALAR = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.\-/:]*[A-Za-z0-9_.\-/])?")


class TargetExistsError(Exception):
    """Raised when a file to write exists and ``force`` is not set."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"{path} exists")


@dataclass(frozen=True, slots=True)
class WrittenFiles:
    """Paths of the written files; ``password`` is None when no password was given."""

    config: Path
    policy: Path
    password: Path | None
    config_schema: Path
    policy_schema: Path


def yaml_scalar(text: str) -> str:
    """Return ``text`` as a YAML scalar, in double quotes unless it loads back unchanged.

    A JSON string is a valid YAML double-quoted scalar, so backslashes of Windows paths are
    escaped correctly.
    """
    if _PLAIN_SCALAR.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def render_config(answers: InitAnswers) -> str:
    """Return the text of agent.yaml for ``answers``."""
    lines = agent_header(answers, yaml_scalar)
    lines += [
        "",
        "# The sharing policy (polityka udostępniania), relative to this file. It shares nothing",
        "# until you enable a rule in it.",
        f"policy: {POLICY_NAME}",
        "",
    ]
    resources = _resources_lines(answers)
    if resources:
        lines += [*resources, ""]
    lines.append("# Data sources (adaptery). `kooperant adapter list` lists the installed types;")
    lines.append(f"# a commented example of each: {example_path('adapters', 'TYPE.example.yaml')}")
    adapters: list[str] = []
    machine_ids = [machine.resource for server in answers.servers for machine in server.machines]
    used_ids: set[str] = set()
    for server in answers.servers:
        adapters += _opcua_lines(server, _adapter_name(server.url, used_ids))
    for source in answers.exports:
        adapters += export_lines(source, yaml_scalar, machine_ids)
    if answers.host_resource is not None:
        adapters += host_lines(answers.host_resource)
    # Only commented entries would leave `adapters:` empty, which the config rejects.
    active = any(not line.lstrip().startswith("#") for line in adapters)
    lines.append("adapters:" if active else "adapters: []")
    lines += adapters
    return "\n".join(lines) + "\n"


def render_policy(answers: InitAnswers) -> str:
    """Return the text of policy.yaml: no rule enabled, an example rule per resource."""
    return policy_text(answers, yaml_scalar)


def write_files(answers: InitAnswers, *, force: bool) -> WrittenFiles:
    """Write agent.yaml, policy.yaml, their schemas and the password file into ``answers.output``.

    Raise ``TargetExistsError`` naming the first file that exists unless ``force`` is set, and
    ``OSError`` when the folder cannot be created or written.
    """
    output = answers.output
    written = WrittenFiles(
        config=output / CONFIG_NAME,
        policy=output / POLICY_NAME,
        password=output / PASSWORD_PATH if answers.broker_password is not None else None,
        config_schema=output / CONFIG_SCHEMA_NAME,
        policy_schema=output / POLICY_SCHEMA_NAME,
    )
    existing = existing_targets(output, with_password=written.password is not None)
    if existing and not force:
        raise TargetExistsError(existing[0])

    # Rendered before anything is written, so that an adapter that fails to import leaves no
    # file behind.
    config_schema = agent_config_json_schema_text()
    policy_schema = policy_json_schema_text()
    output.mkdir(parents=True, exist_ok=True)
    if written.password is not None and answers.broker_password is not None:
        written.password.parent.mkdir(mode=0o700, exist_ok=True)
        _write_atomic(written.password, answers.broker_password, mode=0o600)
    _write_atomic(written.config_schema, config_schema)
    _write_atomic(written.policy_schema, policy_schema)
    _write_atomic(written.policy, render_policy(answers))
    _write_atomic(written.config, render_config(answers))
    return written


def existing_targets(output: Path, *, with_password: bool) -> list[Path]:
    """Return the files ``write_files`` would replace in ``output``."""
    targets = [output / name for name in (CONFIG_NAME, POLICY_NAME)]
    targets += [output / name for name in (CONFIG_SCHEMA_NAME, POLICY_SCHEMA_NAME)]
    if with_password:
        targets.append(output / PASSWORD_PATH)
    return [target for target in targets if target.exists()]


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _resources_lines(answers: InitAnswers) -> list[str]:
    machines = [machine for server in answers.servers for machine in server.machines]
    if not machines:
        return []
    lines = [
        "# Descriptions used in offers, keyed by resource id (opisy zasobów). Add capabilities,",
        "# the tags buyers search for (możliwości), e.g. capabilities: [cnc-milling].",
        "resources:",
    ]
    for machine in machines:
        lines.append(f"  {yaml_scalar(machine.resource)}:")
        lines.append(f"    name: {yaml_scalar(machine.name)}")
        lines.append("    kind: machine")
    return lines


def _opcua_lines(server: OpcUaServer, name: str) -> list[str]:
    lines = [
        "  # Machines of an OPC UA server (maszyny z serwera OPC UA), anonymous and unsecured;",
        f"  # for security settings see {example_path('adapters', 'opcua.example.yaml')}.",
        "  # Browse name of each machine -> resource id. List the machines again with:",
        "  # kooperant agent browse URL",
        "  - type: opcua",
        f"    name: {yaml_scalar(name)}",
        f"    url: {yaml_scalar(server.url)}",
    ]
    if not server.browsed:
        lines.append(
            "    # Not browsed during setup (nie przeglądano): the machines are not listed,"
        )
        lines.append("    # so the adapter uses ids made from their browse names.")
    if not server.machines:
        lines.append("    machines: {}")
        return lines
    lines.append("    machines:")
    for machine in server.machines:
        lines.append(f"      {yaml_scalar(machine.browse_name)}: {yaml_scalar(machine.resource)}")
    return lines


def _adapter_name(url: str, used_ids: set[str]) -> str:
    host = url.removeprefix("opc.tcp://").split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    base = re.sub(r"[^a-z0-9_.-]+", "-", f"opcua-{host}".lower()).strip("-") or "opcua"
    name = base
    suffix = 2
    while name in used_ids:
        name = f"{base}-{suffix}"
        suffix += 1
    used_ids.add(name)
    return name
