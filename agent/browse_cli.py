"""``kooperant agent browse URL``: list the machines of an OPC UA server and print a config entry.

The command connects anonymously without security, reads the OPC 40001 ``Machines`` folder with
``adapters.opcua.browse`` and prints each machine's browse name, identification and
``MachineryItemState/CurrentState``, then a commented ``adapters:`` entry for the agent config.
Exit status 2 when the URL is invalid or the server cannot be browsed.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from typing import Annotated, Any

import typer
import yaml

from adapters.opcua.browse import (
    BrowsedMachine,
    BrowseError,
    BrowseFailure,
    BrowseResult,
    browse_server,
    suggested_resources,
)
from adapters.opcua.machinery import CompanionModel
from adapters.opcua.settings import MAX_TIMEOUT_SECONDS, OpcUaSettings, default_resource_id
from agent.opcua_messages import OPCUA_CLIENT_MESSAGES
from agent.reasons import plural_text
from kooperant.i18n import Catalog, current_language

EXIT_BROWSE_FAILED = 2
DEFAULT_TIMEOUT_SECONDS: float = OpcUaSettings.model_fields["timeout_seconds"].default

# A YAML scalar that may go without quotes: letters, digits and "_.-/:" with no blank, starting
# with a letter or digit and not ending in ":". _scalar also checks that it loads back unchanged,
# not as a number, a time or a boolean.
_PLAIN_SCALAR = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.\-/:]*[A-Za-z0-9_.\-/])?")

_ = Catalog(
    {
        **OPCUA_CLIENT_MESSAGES,
        "help": {
            "pl": "Połącz się z serwerem OPC UA, pokaż jego maszyny (OPC 40001 Machinery, OPC "
            "40501 MachineTool, OPC 30050 PackML, EUROMAP 83), ich identyfikację, zmienne stanu "
            "i odczytany stan, a potem gotowy wpis adaptera opcua do konfiguracji agenta. Łączy "
            "się anonimowo, bez zabezpieczeń. Kod wyjścia 2, gdy się nie uda.",
            "en": "Connect to an OPC UA server, show its machines (OPC 40001 Machinery, OPC "
            "40501 MachineTool, OPC 30050 PackML, EUROMAP 83), their identification, state "
            "variables and the state read from them, then a ready opcua adapter entry for the "
            "agent config. Connects anonymously, without security. Exit status 2 on failure.",
        },
        "timeout.help": {
            "pl": "Limit czasu połączenia i każdego zapytania, w sekundach.",
            "en": "Time limit of connecting and of each request, in seconds.",
        },
        "json.help": {
            "pl": "Wypisz jeden dokument JSON zamiast tekstu.",
            "en": "Print one JSON document instead of text.",
        },
        "error.no_machinery": {
            "pl": "Serwer {url} nie ma przestrzeni nazw OPC 40001 Machinery ani maszyn modeli "
            "MachineTool, PackML czy EUROMAP 83, więc adapter opcua sam ich nie znajdzie. "
            "Załaduj model Machinery na serwerze albo wskaż zmienne stanu w kluczu nodes "
            "ustawień adaptera (docs/adapters.md).",
            "en": "Server {url} has no OPC 40001 Machinery namespace and no machine of the "
            "MachineTool, PackML or EUROMAP 83 models, so the opcua adapter finds no machines "
            "by itself. Load the Machinery model on the server or name the state variables "
            "under nodes in the adapter settings (docs/adapters.md).",
        },
        "error.no_machines_folder": {
            "pl": "Serwer {url} ma przestrzeń nazw Machinery, ale nie ma folderu Machines. "
            "Umieść maszyny w folderze Machines (OPC 40001) na serwerze.",
            "en": "Server {url} has the Machinery namespace but no Machines folder. Place the "
            "machines in the Machines folder of OPC 40001 on the server.",
        },
        "error.rejected": {
            "pl": "Serwer {url} odrzucił anonimowe połączenie bez zabezpieczeń ({detail}). "
            "Polecenie browse obsługuje na razie tylko taki dostęp; zezwól na niego na serwerze "
            "albo wpisz konfigurację ręcznie według config/adapters/opcua.example.yaml, "
            "z kluczami security_policy i security_mode (docs/adapters.md, część Security), a "
            "potem zaufaj serwerowi: kooperant agent trust {url} --config PLIK.",
            "en": "Server {url} rejected the anonymous connection without security ({detail}). "
            "The browse command supports only this access for now; allow it on the server or "
            "write the config by hand from config/adapters/opcua.example.yaml, with the keys "
            "security_policy and security_mode (docs/adapters.md, Security), then trust the "
            "server: kooperant agent trust {url} --config FILE.",
        },
        "error.failed": {
            "pl": "Serwer {url} zgłosił błąd ({detail}). Sprawdź dziennik serwera i spróbuj "
            "ponownie.",
            "en": "Server {url} reported an error ({detail}). Check the server's log and try "
            "again.",
        },
        "heading": {
            "pl": "Serwer {url}: {machines_counted}",
            "en": "Server {url}: {machines_counted}",
        },
        "noun.machines": {"pl": "maszyna|maszyny|maszyn", "en": "machine|machines"},
        "model.machinery": {
            "pl": "OPC 40001 Machinery, folder Machines",
            "en": "OPC 40001 Machinery, Machines folder",
        },
        "model.machine_tool": {"pl": "OPC 40501 MachineTool", "en": "OPC 40501 MachineTool"},
        "model.packml": {"pl": "OPC 30050 PackML", "en": "OPC 30050 PackML"},
        "model.euromap83": {"pl": "EUROMAP 83", "en": "EUROMAP 83"},
        "model.mapping": {"pl": "mapowanie z ustawień", "en": "mapping from the settings"},
        "field.Manufacturer": {"pl": "producent", "en": "manufacturer"},
        "field.Model": {"pl": "model", "en": "model"},
        "field.SerialNumber": {"pl": "numer seryjny", "en": "serial number"},
        "no_identification": {"pl": "brak identyfikacji", "en": "no identification"},
        "variable": {
            "pl": "{role}: {value} (węzeł {node})",
            "en": "{role}: {value} (node {node})",
        },
        "state": {"pl": "→ stan w kooperant: {state}", "en": "→ kooperant state: {state}"},
        "state.missing": {
            "pl": "brak zmiennych stanu, więc stan będzie Unknown",
            "en": "no state variables, so the state will be Unknown",
        },
        "empty": {"pl": "(pusta)", "en": "(empty)"},
        "snippet.heading": {
            "pl": "Wpis do konfiguracji agenta (YAML):",
            "en": "Entry for the agent config (YAML):",
        },
        "snippet.intro": {
            "pl": "# Adapter opcua dla {url}.\n"
            "# Wklej ten wpis do listy adapters konfiguracji agenta. W machines: nazwa\n"
            "# przeglądania (browse name) maszyny → identyfikator zasobu w ofertach; zmień\n"
            "# identyfikatory według potrzeb. Inne klucze: config/adapters/opcua.example.yaml.",
            "en": "# opcua adapter for {url}.\n"
            "# Paste this entry into the adapters list of the agent config. Under machines:\n"
            "# the machine's browse name → the resource id in offers; change the ids as\n"
            "# needed. The other keys: config/adapters/opcua.example.yaml.",
        },
        "snippet.no_machines": {
            "pl": "# Folder Machines jest pusty; maszyny dopisz, gdy pojawią się na serwerze.",
            "en": "# The Machines folder is empty; add machines once the server has them.",
        },
        "snippet.changed": {
            "pl": "zmienione z {default}, bo powtarza się lub jest puste",
            "en": "changed from {default} because it repeats or is empty",
        },
    }
)

HELP = _("help")


def browse(
    url: Annotated[str, typer.Argument(help=_("url.help"), metavar="URL", show_default=False)],
    json_output: Annotated[bool, typer.Option("--json", help=_("json.help"))] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help=_("timeout.help"))
    ] = DEFAULT_TIMEOUT_SECONDS,
) -> None:
    if not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT_SECONDS:
        typer.echo(_("timeout.invalid", value=timeout), err=True)
        raise typer.Exit(EXIT_BROWSE_FAILED)

    try:
        result = asyncio.run(browse_server(url, timeout))
    except BrowseError as error:
        typer.echo(error_message(error, timeout), err=True)
        raise typer.Exit(EXIT_BROWSE_FAILED) from error

    snippet = config_snippet(result, timeout)
    if json_output:
        document = browse_document(result, snippet)
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        typer.echo(format_browse(result))
        typer.echo("")
        typer.echo(_("snippet.heading"))
        typer.echo(snippet)


def error_message(error: BrowseError, timeout_seconds: float) -> str:
    """Return the message for a failed browse in the current language."""
    if error.failure is BrowseFailure.TIMEOUT:
        return _("error.timeout", url=error.url, seconds=f"{timeout_seconds:g}")
    return _(f"error.{error.failure.value}", url=error.url, detail=error.detail)


def format_browse(result: BrowseResult) -> str:
    """Return the machines grouped by companion model, in the current language."""
    language = current_language()
    count = plural_text(len(result.machines), _("noun.machines"), language)
    lines = [_("heading", url=result.url, machines_counted=count)]

    groups: dict[CompanionModel, list[BrowsedMachine]] = {}
    for machine in result.machines:
        groups.setdefault(machine.model, []).append(machine)
    for model, machines in groups.items():
        model_count = plural_text(len(machines), _("noun.machines"), language)
        lines.append(f"{_(f'model.{model.value}')}: {model_count}")
        for machine in machines:
            lines += _machine_lines(machine)
    return "\n".join(lines)


def _machine_lines(machine: BrowsedMachine) -> list[str]:
    lines = [f"• {machine.browse_name}", f"  {_identification_text(machine)}"]
    if not machine.variables:
        lines.append(f"  {_('state.missing')}")
    for variable in machine.variables:
        value = variable.value if variable.value is not None else _("empty")
        lines.append(f"  {_('variable', role=variable.role, value=value, node=variable.node_id)}")
    lines.append(f"  {_('state', state=machine.state.value)}")
    return lines


def config_snippet(result: BrowseResult, timeout_seconds: float) -> str:
    """Return a commented ``adapters:`` entry of type ``opcua`` for the browsed server."""
    resources = suggested_resources(result.machines)
    adapter_name = default_resource_id(f"opcua-{_host(result.url)}") or "opcua"
    lines = [
        _("snippet.intro", url=result.url),
        "adapters:",
        "  - type: opcua",
        f"    name: {_scalar(adapter_name)}",
        f"    url: {_scalar(result.url)}",
    ]
    if timeout_seconds != DEFAULT_TIMEOUT_SECONDS:
        lines.append(f"    timeout_seconds: {timeout_seconds:g}")
    if not result.machines:
        lines.append(f"    {_('snippet.no_machines')}")
        lines.append("    machines: {}")
        return "\n".join(lines)

    lines.append("    machines:")
    for machine in result.machines:
        resource = resources[machine.browse_name]
        line = f"      {_scalar(machine.browse_name)}: {_scalar(resource)}"
        default = default_resource_id(machine.browse_name)
        if resource != default:
            line += f"  # {_('snippet.changed', default=default or '—')}"
        lines.append(line)
    return "\n".join(lines)


def browse_document(result: BrowseResult, snippet: str) -> dict[str, Any]:
    """Return the browse result as one JSON-ready document, the config entry included."""
    resources = suggested_resources(result.machines)
    return {
        "url": result.url,
        "machines": [
            {
                "browse_name": machine.browse_name,
                "display_name": machine.display_name,
                "model": machine.model.value,
                "identification": machine.identification,
                "variables": [
                    {"role": item.role, "node_id": item.node_id, "value": item.value}
                    for item in machine.variables
                ],
                "state": machine.state.value,
                "resource": resources[machine.browse_name],
            }
            for machine in result.machines
        ],
        "config": snippet,
    }


def _identification_text(machine: BrowsedMachine) -> str:
    parts = [f"{_(f'field.{name}')}: {value}" for name, value in machine.identification.items()]
    return ", ".join(parts) or _("no_identification")


def _host(url: str) -> str:
    # check_browse_url has accepted the url, so it has a host.
    host_and_port = url.removeprefix("opc.tcp://").split("/", 1)[0]
    return host_and_port.rsplit(":", 1)[0].strip("[]")


def _scalar(text: str) -> str:
    """Return ``text`` as a YAML scalar, in double quotes unless it reads back unchanged."""
    if _PLAIN_SCALAR.fullmatch(text) and not _reads_as_other_type(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _reads_as_other_type(text: str) -> bool:
    loaded: object = yaml.safe_load(text)
    return loaded != text
