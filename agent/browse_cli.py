"""``kooperant agent browse URL``: list the machines of an OPC UA server and print a config entry.

The command connects anonymously without security, reads the OPC 40001 ``Machines`` folder with
``adapters.opcua.browse`` and prints each machine's browse name, identification and
``MachineryItemState/CurrentState``, then a commented ``adapters:`` entry for the agent config.
While it works, and only when stderr is a terminal and ``--json`` is off, a line on stderr shows
the machines found so far, the state values read and the elapsed time. Exit status 2 when the
URL is invalid or the server cannot be browsed.
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
    BrowseProgress,
    BrowseProgressCallback,
    BrowseResult,
    browse_server,
    suggested_resources,
)
from adapters.opcua.machinery import CompanionModel
from adapters.opcua.settings import MAX_TIMEOUT_SECONDS, OpcUaSettings, default_resource_id
from agent.opcua_messages import OPCUA_CLIENT_CONTEXT
from agent.reasons import plural_text
from kooperant.i18n import Catalog, current_language
from kooperant.net import mask_url_credentials
from kooperant.terminal_progress import TerminalProgress

EXIT_BROWSE_FAILED = 2
PROGRESS_LINE = "browse"
DEFAULT_TIMEOUT_SECONDS: float = OpcUaSettings.model_fields["timeout_seconds"].default

# A YAML scalar that may go without quotes: letters, digits and "_.-/:" with no blank, starting
# with a letter or digit and not ending in ":". _scalar also checks that it loads back unchanged,
# not as a number, a time or a boolean.
_PLAIN_SCALAR = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_.\-/:]*[A-Za-z0-9_.\-/])?")

_ = Catalog.for_module(__name__, shared=(OPCUA_CLIENT_CONTEXT,))

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
        with TerminalProgress(enabled=not json_output) as display:
            display.show(PROGRESS_LINE, _("progress.connecting", url=mask_url_credentials(url)))
            result = asyncio.run(browse_server(url, timeout, progress_shower(display)))
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


def progress_shower(display: TerminalProgress) -> BrowseProgressCallback:
    """Return a ``browse_server`` callback that shows its counts on ``display``."""
    language = current_language()

    def show(progress: BrowseProgress) -> None:
        machines = plural_text(progress.machines_found, _("noun.machines"), language)
        if progress.values_total is None:
            text = _("progress.machines", machines_counted=machines)
        else:
            text = _(
                "progress.values",
                read=progress.values_read,
                total=progress.values_total,
                machines_counted=machines,
            )
        display.show(PROGRESS_LINE, text)

    return show


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
