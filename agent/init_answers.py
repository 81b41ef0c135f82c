"""The answers of ``kooperant agent init`` and the checks each answer passes.

``InitAnswers`` is what both the wizard and the flags produce and what ``agent.config_writer``
turns into files. Each ``parse_*`` function checks one answer with the same rules as
``agent.config`` and raises ``ValueError`` with a message in the current language; the caller adds
where the value came from (a flag or a prompt). ``browse_machines`` lists a server's machines
with ``adapters.opcua.browse.browse_server`` and gives each a resource id not yet used.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from adapters.opcua.browse import BrowseError, BrowseResult, check_browse_url, suggested_resources
from adapters.opcua.settings import default_resource_id
from agent.browse_cli import error_message
from agent.config import DEFAULT_AUDIT_LOG, parse_broker_url
from agent.reasons import checked_identifier
from kooperant.i18n import Catalog
from kooperant.net import mask_url_credentials
from kooperant.protocol.text import find_control_character

DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"
HOST_RESOURCE_FALLBACK = "server-01"
# The audit log of a Linux service. Its user may write /var/lib/kooperant, unlike /etc/kooperant.
SERVICE_AUDIT_LOG = Path("/var/lib/kooperant/kooperant-audit.db")

_ = Catalog.for_module(__name__)


@dataclass(frozen=True, slots=True)
class ExportType:
    """An export adapter the wizard can add: its type, entry name and whether it needs a mapping.

    An adapter with ``needs_mapping`` is written commented out, because its entry only makes
    sense once the owner maps codes of the export to resource ids, which the wizard cannot know.
    """

    type: str
    name: str
    needs_mapping: bool


# Order of the wizard's questions and of the entries in agent.yaml.
EXPORT_TYPES: tuple[ExportType, ...] = (
    # ERP machine codes must be mapped to the resource ids of the OPC UA machines.
    ExportType("schedule", "plan-produkcji", needs_mapping=True),
    ExportType("warehouse", "magazyny", needs_mapping=False),
    ExportType("stock", "stany-magazynowe", needs_mapping=False),
    # The team's resource id (or one per team name) must be chosen by the owner.
    ExportType("it_team", "kalendarz-zespolu", needs_mapping=True),
    ExportType("jpk_mag", "jpk-mag", needs_mapping=False),
    ExportType("edi_epp", "subiekt", needs_mapping=False),
)
EXPORT_TYPES_BY_NAME = {export.type: export for export in EXPORT_TYPES}


@dataclass(frozen=True, slots=True)
class Machine:
    """A machine found on an OPC UA server: browse name, resource id and display name."""

    browse_name: str
    resource: str
    name: str


@dataclass(frozen=True, slots=True)
class OpcUaServer:
    """An OPC UA server for the config; ``browsed`` is false when it was kept unbrowsed."""

    url: str
    machines: tuple[Machine, ...]
    browsed: bool


@dataclass(frozen=True, slots=True)
class ExportSource:
    """An export file or folder for one export adapter; ``path`` is absolute."""

    export: ExportType
    path: Path


@dataclass(frozen=True, slots=True)
class InitAnswers:
    """Everything the config writer needs. The broker password never appears in a repr."""

    member: str
    cluster: str
    broker_url: str
    output: Path
    broker_username: str | None = None
    broker_password: str | None = field(default=None, repr=False)
    overwrite: bool = False
    """Whether files in ``output`` may be replaced, as confirmed in the wizard."""
    servers: tuple[OpcUaServer, ...] = ()
    exports: tuple[ExportSource, ...] = ()
    host_resource: str | None = None
    """The resource id of this computer when its free resources are shared, else None."""
    audit_log: Path = DEFAULT_AUDIT_LOG
    """The audit log's SQLite file as written; a relative path starts at ``output``."""

    def resource_ids(self) -> list[str]:
        """Return the resource ids of all machines and of this computer, in config order."""
        ids = [machine.resource for server in self.servers for machine in server.machines]
        if self.host_resource is not None:
            ids.append(self.host_resource)
        return ids


def parse_identifier(value: str, what: str) -> str:
    """Return ``value`` stripped if it is a valid ``member`` or ``cluster`` id."""
    return checked_identifier(value.strip(), what)


def parse_broker(value: str) -> str:
    """Return the broker URL stripped if ``agent.config`` would accept it."""
    url = check_plain_text(value.strip(), shown=mask_url_credentials(value.strip()))
    parse_broker_url(url)
    return url


def parse_opcua_url(value: str, added: Sequence[str]) -> str:
    """Return the OPC UA server URL stripped if it is valid and not one of ``added`` already.

    A URL differing from an added one only in the case of its scheme and host, or in a final
    ``/``, names the same server, so its machines would be added twice.
    """
    url = check_plain_text(value.strip(), shown=mask_url_credentials(value.strip()))
    try:
        check_browse_url(url)
    except BrowseError as error:
        # The timeout only appears in the message of a timed-out browse, never for a bad URL.
        raise ValueError(error_message(error, timeout_seconds=0)) from error
    if _server_key(url) in {_server_key(other) for other in added}:
        raise ValueError(_("opcua.repeated", url=mask_url_credentials(url)))
    return url


def _server_key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def check_plain_text(value: str, shown: str | None = None) -> str:
    """Return ``value`` unless it contains a control or format character (Unicode Cc or Cf).

    Such a character would be written into agent.yaml and printed raw by ``agent check``, where a
    tab, a bell or an escape sequence hides what the file contains. The message shows the value
    escaped, or ``shown`` in its place when the value may contain a password.
    """
    found = find_control_character(value)
    if found is None:
        return value
    message = _(
        "text.control",
        value=value if shown is None else shown,
        code_point=found.code_point,
        position=found.position,
    )
    raise ValueError(message)


def parse_export(value: str) -> tuple[ExportType, Path]:
    """Return the adapter and the absolute path of a ``TYPE=PATH`` text."""
    type_name, separator, path_text = value.partition("=")
    known = ", ".join(EXPORT_TYPES_BY_NAME)
    if not separator or not path_text.strip():
        raise ValueError(_("export.format", known=known))
    export = EXPORT_TYPES_BY_NAME.get(type_name.strip())
    if export is None:
        raise ValueError(_("export.type", type=type_name.strip(), known=known))
    return export, parse_export_path(path_text)


def parse_export_path(value: str) -> Path:
    """Return the path made absolute.

    An adapter reads a relative path from the config's folder, but the user means the current one.
    """
    text = check_plain_text(value.strip().strip('"'))
    if not text:
        raise ValueError(_("export.empty"))
    return Path(text).expanduser().absolute()


def default_audit_log() -> Path:
    """Return the audit log init suggests: ``SERVICE_AUDIT_LOG`` for root on Linux.

    Root on Linux installs a service whose user cannot write the root-owned config folder, and
    ``install-service`` creates the folder of ``SERVICE_AUDIT_LOG`` for that user. Anyone else
    runs the agent as themselves, so the file stays next to the config.
    """
    return SERVICE_AUDIT_LOG if is_linux_root() else DEFAULT_AUDIT_LOG


def is_linux_root() -> bool:
    """Return whether this process runs on Linux with the effective user id 0."""
    return sys.platform == "linux" and os.geteuid() == 0


def parse_audit_log(value: str, output: Path) -> Path:
    """Return the audit log path as typed (``~`` expanded), checked against the files there.

    A relative path is kept relative, because the agent reads it from the config's folder
    ``output``. The path must not be a folder, and its nearest existing parent must be a folder.
    Missing folders are allowed, because ``install-service`` creates them for the service user
    and ``kooperant agent run`` for the user who runs it.
    The parents of ``output`` itself are left to the writer, which names the output folder.
    """
    text = value.strip().strip('"')
    if not text:
        raise ValueError(_("audit_log.empty"))
    path = Path(text).expanduser()
    target = path if path.is_absolute() else output / path
    if target.is_dir():
        raise ValueError(_("audit_log.folder", path=target))
    for parent in target.parents:
        if not path.is_absolute() and parent == output:
            break
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(_("audit_log.parent_file", path=parent))
            break
    return path


def default_host_resource() -> str:
    """Return a resource id made from this computer's host name."""
    return default_resource_id(socket.gethostname()) or HOST_RESOURCE_FALLBACK


def server_from_browse(result: BrowseResult, used_ids: set[str]) -> OpcUaServer:
    """Return the browsed server with resource ids that are unique across ``used_ids``.

    ``used_ids`` contains the ids of servers added before and receives the new ones.
    """
    suggested = suggested_resources(result.machines)
    machines = []
    for machine in result.machines:
        resource = unique_id(suggested[machine.browse_name], used_ids)
        machines.append(Machine(machine.browse_name, resource, machine.display_name or resource))
    return OpcUaServer(result.url, tuple(machines), browsed=True)


def unique_id(base: str, used_ids: set[str]) -> str:
    """Return ``base``, or ``base-2``, ``base-3``... if in use, and add it to ``used_ids``."""
    candidate = base
    suffix = 2
    while candidate in used_ids:
        candidate = f"{base[: 64 - len(str(suffix)) - 1]}-{suffix}"
        suffix += 1
    used_ids.add(candidate)
    return candidate
