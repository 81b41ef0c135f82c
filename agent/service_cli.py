"""``kooperant agent install-service`` and ``uninstall-service``: run the agent at boot.

On Linux the commands manage a systemd unit (``agent/linux_service.py``), on Windows a service
of the service control manager (``agent/windows_service.py``). Exit status: 0 on success, 1 when
a step failed or a check rejected the install, 2 when the config is invalid.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from agent import linux_service, windows_service
from agent.errors import ConfigError
from agent.linux_service import LinuxInstall, ServiceError, SystemHost
from agent.service_config import load_service_config
from agent.systemd_unit import (
    DEFAULT_UNIT_DIR,
    DEFAULT_USER,
    render_unit,
    unit_settings_for,
)
from agent.windows_service import DEFAULT_SERVICE_NAME, WindowsInstall, WindowsServiceError
from kooperant.i18n import Catalog

EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2

_ = Catalog.for_module(__name__)

INSTALL_HELP = _("install.help")
UNINSTALL_HELP = _("uninstall.help")

# The seam tests replace to record systemctl and useradd instead of running them.
system_host = SystemHost()


def is_windows() -> bool:
    return sys.platform == "win32"


def install_service(
    config: Annotated[Path, typer.Option("--config", "-c", help=_("config.help"))],
    name: Annotated[str, typer.Option("--name", help=_("name.help"))] = DEFAULT_SERVICE_NAME,
    user: Annotated[str, typer.Option("--user", help=_("user.help"))] = DEFAULT_USER,
    unit_dir: Annotated[
        Path, typer.Option("--unit-dir", help=_("unit_dir.help"))
    ] = DEFAULT_UNIT_DIR,
    environment_file: Annotated[
        Path | None, typer.Option("--environment-file", help=_("environment_file.help"))
    ] = None,
    log_file: Annotated[Path | None, typer.Option("--log-file", help=_("log_file.help"))] = None,
    no_start: Annotated[bool, typer.Option("--no-start", help=_("no_start.help"))] = False,
    print_unit: Annotated[bool, typer.Option("--print", help=_("print.help"))] = False,
    force: Annotated[bool, typer.Option("--force", help=_("force.help"))] = False,
    grant_secrets: Annotated[
        bool, typer.Option("--grant-secrets", help=_("grant_secrets.help"))
    ] = False,
) -> None:
    config = config.absolute()
    environment_file = environment_file.absolute() if environment_file else None
    try:
        loaded = load_service_config(config, environment_file)
    except ConfigError as error:
        typer.echo(_("config.invalid", details=error, config=config), err=True)
        raise typer.Exit(EXIT_CONFIG_ERROR) from error

    try:
        if is_windows():
            if print_unit:
                raise ServiceError(_("print.linux_only"))
            service_name = name.removesuffix(".service")
            lines = windows_service.install(
                WindowsInstall(
                    name=service_name,
                    config=config,
                    log_file=log_file.absolute()
                    if log_file
                    else windows_service.default_log_file(service_name),
                    start=not no_start,
                    force=force,
                )
            )
        else:
            options = LinuxInstall(
                name=linux_service.unit_name(name),
                user=linux_service.check_user(user),
                unit_dir=unit_dir.absolute(),
                environment_file=environment_file,
                start=not no_start,
                force=force,
                grant_secrets=grant_secrets,
                sudo_command=_sudo_command(
                    ["agent", "install-service", "--config", str(config)],
                    {"--name": name, "--user": user, "--unit-dir": str(unit_dir)},
                    {
                        "--environment-file": environment_file,
                        "--no-start": no_start,
                        "--force": force,
                        "--grant-secrets": grant_secrets,
                    },
                ),
            )
            if print_unit:
                settings = unit_settings_for(
                    loaded, user=options.user, environment_file=environment_file
                )
                typer.echo(render_unit(settings), nl=False)
                return
            lines = linux_service.install(options, loaded, system_host)
    except (ServiceError, WindowsServiceError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(EXIT_FAILED) from error
    typer.echo("\n".join(lines))


def uninstall_service(
    name: Annotated[str, typer.Option("--name", help=_("name.help"))] = DEFAULT_SERVICE_NAME,
    unit_dir: Annotated[
        Path, typer.Option("--unit-dir", help=_("unit_dir.help"))
    ] = DEFAULT_UNIT_DIR,
    force: Annotated[bool, typer.Option("--force", help=_("force.help"))] = False,
) -> None:
    try:
        if is_windows():
            lines = windows_service.uninstall(name.removesuffix(".service"))
        else:
            lines = linux_service.uninstall(
                linux_service.unit_name(name),
                unit_dir.absolute(),
                force=force,
                host=system_host,
                sudo=_sudo_command(
                    ["agent", "uninstall-service"],
                    {"--name": name, "--unit-dir": str(unit_dir)},
                    {"--force": force},
                ),
            )
    except (ServiceError, WindowsServiceError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(EXIT_FAILED) from error
    typer.echo("\n".join(lines))


def _sudo_command(
    arguments: list[str],
    values: dict[str, str],
    extras: dict[str, Path | bool | None],
) -> str:
    """Return the command line to run again with sudo, with the full path of this Python.

    sudo resets PATH, so ``kooperant`` from a virtual environment would not be found by name.
    ``values`` are options given with their value; ``extras`` are added only when set.
    """
    defaults = {"--name": DEFAULT_SERVICE_NAME, "--user": DEFAULT_USER}
    defaults["--unit-dir"] = str(DEFAULT_UNIT_DIR)
    words = [sys.executable, "-m", "kooperant", *arguments]
    for option, value in values.items():
        if value != defaults.get(option):
            words += [option, value]
    for option, extra in extras.items():
        if isinstance(extra, Path):
            words += [option, str(extra)]
        elif extra:
            words.append(option)
    return "sudo " + shlex.join(words)
