"""The systemd unit that runs ``kooperant agent run`` as a service, built from the agent config.

The unit runs the agent as a dedicated system user, restarts it on failure and confines it with
systemd's sandboxing options. Every option kept leaves the agent's own work possible: OPC UA and
MQTT over TCP, and the status endpoint on loopback. The agent can also write the audit log
(SQLite) and the OPC UA certificate folders, and read exports anywhere the config names them,
including network shares mounted below /mnt or /media. Options that would break one of these are
left out, with the reason below. NOTE: the tests check the unit with ``systemd-analyze verify``
only and do not run the agent under these options.

Quoting follows systemd.syntax(7): an argument with a space, a quote or a backslash is put in
double quotes with C escapes, and ``%`` (specifiers) is doubled everywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agent.config import AgentConfig

DEFAULT_UNIT_NAME = "kooperant-agent.service"
DEFAULT_USER = "kooperant"
DEFAULT_UNIT_DIR = Path("/etc/systemd/system")
RESTART_SECONDS = 10
# First line of every unit this module writes; uninstall-service and a second install-service
# remove or replace only a file that starts with it.
MARKER = "# Written by kooperant agent install-service; reinstall to change it."

# Folders that ProtectHome=yes hides; a path below one needs ProtectHome=read-only instead.
HOME_FOLDERS = (Path("/home"), Path("/root"), Path("/run/user"))
# Folders that PrivateTmp=yes replaces with empty ones; a path below one needs PrivateTmp=no.
TEMP_FOLDERS = (Path("/tmp"), Path("/var/tmp"))
# Binding a port below this needs CAP_NET_BIND_SERVICE.
FIRST_UNPRIVILEGED_PORT = 1024

# Left out on purpose:
# - MemoryDenyWriteExecute: libffi (ctypes, cffi in argon2-cffi) may need writable code pages.
# - PrivateNetwork, IPAddressDeny: the agent talks to the broker and to machines on the LAN.
# - PrivateUsers: files on network shares may belong to users the agent must still read as.
# - ProtectProc=invisible: the host adapter reads CPU and memory figures of the whole host.
HARDENING = (
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("PrivateDevices", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectClock", "yes"),
    ("ProtectHostname", "yes"),
    ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
    ("RestrictNamespaces", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("LockPersonality", "yes"),
    ("SystemCallArchitectures", "native"),
    ("SystemCallFilter", "@system-service"),
    ("SystemCallErrorNumber", "EPERM"),
    ("UMask", "0027"),
)


@dataclass(frozen=True, kw_only=True)
class UnitSettings:
    """Settings that differ between the units of two agents."""

    description: str
    user: str
    exec_start: tuple[str, ...]
    read_write_paths: tuple[Path, ...]
    """Folders the agent writes; one that must exist first, the others may be missing."""
    optional_read_write_paths: tuple[Path, ...] = ()
    environment_file: Path | None = None
    protect_home: str = "yes"
    private_tmp: bool = True
    bind_privileged_port: bool = False


def unit_settings_for(
    config: AgentConfig,
    *,
    user: str,
    environment_file: Path | None = None,
    python: Path | None = None,
) -> UnitSettings:
    """Derive the unit's settings from a loaded config whose ``source`` is an absolute path."""
    interpreter = python or Path(sys.executable).absolute()
    config_path = config.source.absolute()
    exec_start = (str(interpreter), "-m", "kooperant", "agent", "run", "--config", str(config_path))
    audit_folder = config.audit_log_path.absolute().parent
    certificate_folders = tuple(sorted(set(certificate_folders_of(config))))
    read_paths = [interpreter, config_path, config.policy_path.absolute(), *adapter_paths(config)]
    read_paths += [path.absolute() for path in config.secret_files]
    if environment_file is not None:
        read_paths.append(environment_file)
    used_paths = (*read_paths, audit_folder, *certificate_folders)
    below_home = any(_below(path, HOME_FOLDERS) for path in used_paths)
    below_temp = any(_below(path, TEMP_FOLDERS) for path in used_paths)

    return UnitSettings(
        description=f"kooperant agent of {config.member} in cluster {config.cluster}",
        user=user,
        exec_start=exec_start,
        read_write_paths=(audit_folder,),
        optional_read_write_paths=certificate_folders,
        environment_file=environment_file,
        protect_home="read-only" if below_home else "yes",
        private_tmp=not below_temp,
        bind_privileged_port=config.status.enabled and config.status.port < FIRST_UNPRIVILEGED_PORT,
    )


def render_unit(settings: UnitSettings) -> str:
    """Return the unit file's text."""
    writable = [quote_argument(str(path)) for path in settings.read_write_paths]
    writable += [quote_argument(f"-{path}") for path in settings.optional_read_write_paths]
    capabilities = "CAP_NET_BIND_SERVICE" if settings.bind_privileged_port else ""
    lines = [
        MARKER,
        "[Unit]",
        f"Description={escape_specifiers(settings.description)}",
        "Wants=network-online.target",
        "After=network-online.target remote-fs.target",
        "",
        "[Service]",
        "Type=exec",
        f"User={settings.user}",
        f"ExecStart={' '.join(quote_command_argument(part) for part in settings.exec_start)}",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if settings.environment_file is not None:
        # EnvironmentFile= takes the rest of the line as one path, so it is not quoted.
        lines.append(f"EnvironmentFile={escape_specifiers(str(settings.environment_file))}")
    lines += [
        "Restart=on-failure",
        f"RestartSec={RESTART_SECONDS}",
        # The agent stops its adapters with their own time limits; this bounds the whole stop.
        "TimeoutStopSec=60",
        f"ProtectHome={settings.protect_home}",
        f"PrivateTmp={'yes' if settings.private_tmp else 'no'}",
        f"ReadWritePaths={' '.join(writable)}",
        f"CapabilityBoundingSet={capabilities}",
        f"AmbientCapabilities={capabilities}",
        *(f"{key}={value}" for key, value in HARDENING),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


def is_kooperant_unit(text: str) -> bool:
    """Return whether a unit file's text was written by ``render_unit``."""
    return text.startswith(MARKER)


def escape_specifiers(text: str) -> str:
    return text.replace("%", "%%")


def quote_argument(text: str) -> str:
    """Quote one word of a space-separated setting such as ReadWritePaths=."""
    text = escape_specifiers(text)
    if text and not any(character in text for character in " \t\"'\\;"):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def quote_command_argument(text: str) -> str:
    """Quote one argument of ExecStart=, where ``$`` also starts a variable and is doubled."""
    return quote_argument(text.replace("$", "$$"))


def certificate_folders_of(config: AgentConfig) -> Iterable[Path]:
    """Yield the ``pki_dir`` of every adapter that has one; OPC UA writes certificates there."""
    for adapter in config.adapters:
        folder = getattr(adapter.settings, "pki_dir", None)
        if isinstance(folder, Path):
            yield config.resolve(folder).absolute()


def adapter_paths(config: AgentConfig) -> Iterable[Path]:
    """Yield every file or folder path in the adapters' settings, such as an export to read."""
    for adapter in config.adapters:
        for value in _leaf_values(adapter.settings.model_dump()):
            if isinstance(value, Path):
                yield config.resolve(value).absolute()


def _leaf_values(value: object) -> Iterable[object]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaf_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaf_values(item)
    else:
        yield value


def _below(path: Path, folders: tuple[Path, ...]) -> bool:
    return any(path.is_relative_to(folder) for folder in folders)
