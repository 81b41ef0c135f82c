"""Commented text blocks of the files that ``kooperant agent init`` writes.

Each function returns lines of YAML. ``scalar`` quotes a value as ``config_writer.yaml_scalar``
does; it is passed in so that this module does not import the writer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from agent.init_answers import ExportSource, InitAnswers
from kooperant.demo.configs import example_config

Scalar = Callable[[str], str]

CONFIG_SCHEMA_NAME = "agent-config.schema.json"
POLICY_SCHEMA_NAME = "policy.schema.json"


def example_path(*parts: str) -> str:
    """Return where the installed kooperant keeps the example config ``parts``, such as
    ``example_path("adapters", "host.example.yaml")``: ``config/`` in a source checkout, the
    package ``kooperant.example_configs`` in a wheel.
    """
    return str(example_config(*parts))


_EXPORT_TITLES = {
    "schedule": "The production plan exported from the ERP (plan produkcji), CSV or XLSX.",
    "warehouse": "Storage locations of the warehouse system (lokalizacje magazynowe).",
    "stock": "The ERP's stock list (stany magazynowe); surplus over the reserve is offered.",
    "it_team": "The IT team's calendar export (kalendarz zespołu IT).",
    "jpk_mag": "JPK_MAG files of the warehouse (pliki JPK_MAG).",
    "edi_epp": "EDI++ files of Subiekt GT or nexo (pliki EDI++).",
}

_MAPPING_HELP = {
    "schedule": [
        "# Commented out (wyłączone) because the ERP's machine codes must first be mapped to",
        "# the resource ids of this file; an unmapped code would become a separate resource.",
        "# Fill in the codes, then remove the '# ' before each line of the entry.",
    ],
    "it_team": [
        "# Commented out (wyłączone) because the team's resource id is yours to choose: set",
        "# resource (one team) or teams (team name -> id), then remove the '# ' before each line.",
    ],
}


def agent_header(answers: InitAnswers, scalar: Scalar) -> list[str]:
    """Return the top of agent.yaml: identity, broker, policy and the defaults left unset."""
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# yaml-language-server: $schema={CONFIG_SCHEMA_NAME}",
        "# kooperant agent configuration (konfiguracja agenta), written by `kooperant agent init`",
        f"# on {written}. {CONFIG_SCHEMA_NAME} next to this file describes every key (an",
        "# editor with YAML support shows it); a commented example of every key is",
        f"# {example_path('agent.example.yaml')}",
        "# Check it with:  kooperant agent check --config agent.yaml",
        "# Start it with:  kooperant agent run --config agent.yaml",
        "",
        "# Your company's id in the cluster (identyfikator firmy).",
        f"member: {scalar(answers.member)}",
        "# The cluster's id, shared by all members (identyfikator klastra).",
        f"cluster: {scalar(answers.cluster)}",
        "# The audit log (dziennik audytu): an SQLite file with every message sent to the broker",
        "# and the outbox of messages not yet sent. A relative path starts at this file's folder.",
        "# The agent must be able to write the file's folder. As a service it runs as the service",
        "# user (użytkownik usługi), and install-service creates a missing folder for that user.",
        f"audit_log: {scalar(str(answers.audit_log))}",
        "# Defaults not written here (wartości domyślne): timezone Europe/Warsaw, offers for",
        "# horizon_days 14, sent again every publish_interval_seconds 60, shifts (calendar)",
        "# mon-fri 06:00-14:00 and 14:00-22:00, and the status endpoint on 127.0.0.1:8791.",
        "# Add a key to change its default.",
        "",
        "broker:",
        "  # The cluster's MQTT broker (broker MQTT klastra): mqtt://HOST[:PORT], or mqtts://",
        "  # for TLS with the tls: keys of the example named at the top.",
        f"  url: {scalar(answers.broker_url)}",
    ]
    if answers.broker_username is None:
        lines.append("  # No login (bez logowania): the broker allows anonymous access.")
        lines.append("  username: null")
        return lines
    lines.append("  # Login at the broker (login do brokera).")
    lines.append(f"  username: {scalar(answers.broker_username)}")
    if answers.broker_password is None:
        lines.append("  password: null")
        return lines
    lines.append("  # The password (hasło) is read from this file, never written here. Only the")
    lines.append("  # account that runs the agent should be able to read the secrets folder.")
    lines.append("  password: ${file:secrets/broker-password}")
    return lines


def export_lines(source: ExportSource, scalar: Scalar, machine_ids: list[str]) -> list[str]:
    """Return the adapter entry of one export, commented out when it needs a mapping.

    ``machine_ids`` are the resource ids of the OPC UA machines, offered as mapping targets.
    """
    export = source.export
    entry = [
        f"- type: {export.type}",
        f"  name: {export.name}",
        "  # A file, or a folder whose newest file is read (plik lub folder eksportu).",
        f"  path: {scalar(str(source.path))}",
    ]
    if export.type == "schedule":
        entry += [
            "  # ERP machine code -> resource id (kod maszyny w ERP -> identyfikator zasobu).",
            "  machines:",
        ]
        targets = machine_ids or ["resource-id"]
        entry += [
            f"    KOD-ERP-{number}: {scalar(target)}" for number, target in enumerate(targets, 1)
        ]
    if export.type == "it_team":
        entry += ["  # The team's resource id (identyfikator zespołu).", "  resource: zespol-it"]

    lines = [f"  # {_EXPORT_TITLES[export.type]}"]
    lines += [f"  {line}" for line in _MAPPING_HELP.get(export.type, [])]
    if export.needs_mapping:
        return lines + [f"  # {line}" for line in entry]
    lines.append("  # Other settings and their defaults (inne ustawienia):")
    lines.append(f"  # {example_path('adapters', f'{export.type}.example.yaml')}")
    return lines + [f"  {line}" for line in entry]


def host_lines(resource: str) -> list[str]:
    """Return the host adapter entry that offers this computer's free CPU, memory and disk."""
    return [
        "  # Free CPU, memory and disk of this computer (wolne zasoby tego komputera). Default",
        "  # mounts: / (on Windows C:\\). Keep some for the computer's own work with reserve:",
        "  # (cores, memory_gib, disk_gib); see the example",
        f"  # {example_path('adapters', 'host.example.yaml')}",
        "  - type: host",
        "    name: host",
        f"    resource: {resource}",
    ]


def policy_text(answers: InitAnswers, scalar: Scalar) -> str:
    """Return policy.yaml: deny by default, with a commented example rule per resource."""
    lines = [
        f"# yaml-language-server: $schema={POLICY_SCHEMA_NAME}",
        "# Sharing policy (polityka udostępniania), written by `kooperant agent init`.",
        "#",
        "# It SHARES NOTHING (nic nie jest udostępniane): no rule is enabled, so no offer leaves",
        "# the company. To share a resource, replace `share: []` by `share:` and remove the '# '",
        f"# before the lines of its rule below. {POLICY_SCHEMA_NAME} next to this file describes",
        f"# every key; a commented example: {example_path('policy.example.yaml')}",
        "# Check the result with:  kooperant agent check --config agent.yaml",
        "# and see what would be published with:  kooperant agent preview --config agent.yaml",
        "share: []",
    ]
    machines = [machine for server in answers.servers for machine in server.machines]
    for machine in machines:
        lines += [
            "",
            f"  # {machine.name}: free time in whole shifts over the next 7 days, state 30 minutes",
            "  # late (wolny czas w pełnych zmianach, stan z opóźnieniem 30 minut).",
            f"  # - resource: {scalar(machine.resource)}",
            "  #   fields: [name, capabilities, state, horizon, free_hours, free_intervals]",
            "  #   round: shift",
            "  #   horizon_days: 7",
            "  #   delay_minutes: 30",
        ]
    if answers.host_resource is not None:
        lines += [
            "",
            "  # This computer: free disk and memory as bands, not exact numbers",
            "  # (wolne miejsce i pamięć w przedziałach).",
            f"  # - resource: {scalar(answers.host_resource)}",
            "  #   fields: [name, amounts]",
            "  #   bands:",
            "  #     disk_free: [0, 100, 500, 1000]",
            "  #     memory_free: [0, 4, 16, 64]",
            "  #   # Amount labels (the mount) leave only renamed (etykiety po zmianie nazwy).",
            "  #   labels:",
            '  #     "/": system',
        ]
    if not machines and answers.host_resource is None:
        lines += [
            "",
            "  # Example rule (przykładowa reguła) for a resource id of agent.yaml:",
            "  # - resource: RESOURCE-ID",
            "  #   fields: [name, free_hours]",
        ]
    return "\n".join(lines) + "\n"
