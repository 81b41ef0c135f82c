"""Browse an OPC UA server for ``kooperant agent init`` and report the progress as it goes.

A large server takes a while, so the user sees which server is being browsed, then how many
machines were found and the resource id each one gets.
"""

from __future__ import annotations

import asyncio

import typer

from adapters.opcua.browse import browse_server
from agent.init_answers import OpcUaServer, server_from_browse
from agent.reasons import plural_text
from kooperant.i18n import Catalog, current_language

_ = Catalog.for_module(__name__)


def browse_with_progress(url: str, timeout_seconds: float, used_ids: set[str]) -> OpcUaServer:
    """Browse ``url``, print what was found and return the server with unique resource ids.

    Raises ``BrowseError`` when the server cannot be browsed; ``used_ids`` is then unchanged.
    """
    typer.echo(_("browsing", url=url))
    result = asyncio.run(browse_server(url, timeout_seconds))
    server = server_from_browse(result, used_ids)

    count = plural_text(len(server.machines), _("noun.machines"), current_language())
    typer.echo(_("found", url=result.url, machines_counted=count))
    for machine in server.machines:
        typer.echo(_("machine", browse_name=machine.browse_name, resource=machine.resource))
    return server
