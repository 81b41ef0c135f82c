"""``kooperant agent``: run the agent from a config file."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from agent import (
    audit_cli,
    browse_cli,
    check_cli,
    init_cli,
    preview_cli,
    requests_cli,
    service_cli,
    status_cli,
    trust_cli,
    withdraw_cli,
)
from agent.broker_session import check_broker_tls
from agent.config import AgentConfig, load_config
from agent.errors import AuditLogError, ConfigError
from agent.runner import Agent
from kooperant.i18n import Catalog

EXIT_CONFIG_ERROR = 2

_ = Catalog.for_module(__name__)

app = typer.Typer(help=_("help"), no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def agent_options() -> None:
    """Keep ``run`` a sub-command even while it is the only one."""


@app.command(help=_("run.help"))
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help=_("config.help"))],
) -> None:
    try:
        loaded = load_config(config)
        check_broker_tls(loaded)
    except ConfigError as error:
        typer.echo(_("config.invalid", details=error), err=True)
        raise typer.Exit(EXIT_CONFIG_ERROR) from error

    broker = f"{loaded.broker.host}:{loaded.broker.port}"
    typer.echo(_("started", member=loaded.member, cluster=loaded.cluster, broker=broker))
    try:
        asyncio.run(_run_until_signal(loaded))
    except AuditLogError as error:
        typer.echo(_("audit.unusable", path=error.path, reason=error.reason), err=True)
        raise typer.Exit(EXIT_CONFIG_ERROR) from error
    typer.echo(_("stopped"))


async def _run_until_signal(config: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    await Agent(config).run(stop)


app.command(name="preview", help=preview_cli.HELP)(preview_cli.preview)
app.command(name="audit", help=audit_cli.HELP)(audit_cli.audit)
app.command(name="check", help=check_cli.HELP)(check_cli.check)
app.command(name="withdraw", help=withdraw_cli.WITHDRAW_HELP)(withdraw_cli.withdraw)
app.command(name="restore", help=withdraw_cli.RESTORE_HELP)(withdraw_cli.restore)
app.command(name="browse", help=browse_cli.HELP)(browse_cli.browse)
app.command(name="status", help=status_cli.HELP)(status_cli.status)
app.command(name="trust", help=trust_cli.HELP)(trust_cli.trust)
app.command(name="requests", help=requests_cli.REQUESTS_HELP)(requests_cli.requests)
app.command(name="accept", help=requests_cli.ACCEPT_HELP)(requests_cli.accept)
app.command(name="decline", help=requests_cli.DECLINE_HELP)(requests_cli.decline)
app.command(name="release", help=requests_cli.RELEASE_HELP)(requests_cli.release)
app.command(name="init", help=init_cli.HELP)(init_cli.init)
app.command(name="install-service", help=service_cli.INSTALL_HELP)(service_cli.install_service)
app.command(name="uninstall-service", help=service_cli.UNINSTALL_HELP)(
    service_cli.uninstall_service
)
