"""``kooperant server run``, ``migrate``, ``token add`` and ``add-member``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from server.broker_accounts import (
    PasswordFileChange,
    add_member_account,
    agent_broker_settings,
    check_account_ids,
)
from server.errors import ServerError, StorageError
from server.messages import MESSAGES as _
from server.service import ServerSettings, open_storage, run_server
from server.storage import DEFAULT_DATABASE_URL, mask_password
from server.tokens import add_token

logger = logging.getLogger(__name__)

# Exit status for invalid settings or an unreachable service, as click uses for invalid options.
EXIT_INVALID_SETTINGS = 2
EXIT_FAILED = 1

app = typer.Typer(help=_("cli_help"), no_args_is_help=True, pretty_exceptions_enable=False)
token_app = typer.Typer(
    help=_("cli_token_help"), no_args_is_help=True, pretty_exceptions_enable=False
)
app.add_typer(token_app, name="token")

DatabaseOption = typer.Option(DEFAULT_DATABASE_URL, "--database", help=_("opt_database"))


@app.command(help=_("cli_run_help"))
def run(
    database: str = DatabaseOption,
    broker: str | None = typer.Option(None, "--broker", help=_("opt_broker")),
    broker_username: str | None = typer.Option(
        None, "--broker-username", help=_("opt_broker_username")
    ),
    broker_password_file: Annotated[
        Path | None,
        typer.Option("--broker-password-file", help=_("opt_broker_password_file")),
    ] = None,
    cluster: str | None = typer.Option(None, "--cluster", help=_("opt_cluster")),
    host: str = typer.Option("127.0.0.1", "--host", help=_("opt_host")),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help=_("opt_port")),
    embedded_broker_port: int = typer.Option(
        1883, "--embedded-broker-port", min=1, max=65535, help=_("opt_embedded_broker_port")
    ),
    tokens: Annotated[
        Path | None, typer.Option("--tokens", help=_("opt_tokens"), dir_okay=False)
    ] = None,
) -> None:
    with _user_errors():
        password = _read_password(broker_password_file)
        settings = ServerSettings(
            database=database,
            broker_url=broker,
            broker_username=broker_username,
            broker_password=password,
            cluster=cluster,
            http_host=host,
            http_port=port,
            embedded_broker_port=embedded_broker_port,
            tokens_file=tokens,
        )
        asyncio.run(_run_until_signal(settings))
    typer.echo(_("cli_stopped"))


@app.command(help=_("cli_migrate_help"))
def migrate(database: str = DatabaseOption) -> None:
    with _user_errors():
        storage = open_storage(ServerSettings(database=database, migrate=True))
        try:
            revision = storage.schema_revision()
        finally:
            storage.close()
    typer.echo(_("cli_migrated", url=mask_password(database), revision=revision))


@token_app.command("add", help=_("cli_token_add_help"))
def token_add(
    tokens: Annotated[Path, typer.Option("--tokens", help=_("opt_token_file"), dir_okay=False)],
    cluster: Annotated[str, typer.Option("--cluster", help=_("opt_token_cluster"))],
    member: Annotated[str, typer.Option("--member", help=_("opt_token_member"))],
) -> None:
    with _user_errors():
        token = add_token(tokens, cluster, member)
    # The explanation goes to stderr, so that stdout holds only the token for a script to take.
    typer.echo(_("token_added", member=member, cluster=cluster, path=str(tokens)), err=True)
    typer.echo(token)


@app.command("add-member", help=_("cli_add_member_help"))
def add_member(
    cluster: Annotated[str, typer.Option("--cluster", help=_("opt_member_cluster"))],
    member: Annotated[str, typer.Option("--member", help=_("opt_member_id"))],
    database: str = DatabaseOption,
    mosquitto_passwords: Annotated[
        Path | None,
        typer.Option("--mosquitto-passwords", help=_("opt_mosquitto_passwords"), dir_okay=False),
    ] = None,
    new_password: Annotated[
        bool, typer.Option("--new-password", help=_("opt_new_password"))
    ] = False,
) -> None:
    with _user_errors():
        check_account_ids(cluster, member)
        storage = open_storage(ServerSettings(database=database, migrate=True))
        try:
            account = add_member_account(
                storage,
                cluster,
                member,
                password_file=mosquitto_passwords,
                new_password=new_password,
                now=datetime.now(UTC),
            )
        finally:
            storage.close()

    # The explanation goes to stderr and only the agent's settings to stdout, for a script.
    registered = "member_registered" if account.newly_registered else "member_password_renewed"
    shown_url = mask_password(database)
    typer.echo(_(registered, cluster=cluster, member=member, url=shown_url), err=True)
    if mosquitto_passwords is not None:
        path = str(mosquitto_passwords)
        typer.echo(_("member_password_written", member=member, path=path), err=True)
        if account.password_file_change == PasswordFileChange.CREATED:
            typer.echo(_("mosquitto_passwords_created", path=path), err=True)
    else:
        typer.echo(_("member_password_not_written", member=member), err=True)
    typer.echo(_("member_password_once"), err=True)
    typer.echo(agent_broker_settings(account), nl=False)


async def _run_until_signal(settings: ServerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        # NOTE: Windows event loops have no add_signal_handler; there Ctrl+C raises
        # KeyboardInterrupt, which ends the command without a clean shutdown.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal_number, stop.set)

    ready = asyncio.Event()
    server = asyncio.create_task(run_server(settings, stop, ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([server, waiter], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if ready.is_set():
        _print_addresses(settings)
    await server


def _print_addresses(settings: ServerSettings) -> None:
    shown_host = f"[{settings.http_host}]" if ":" in settings.http_host else settings.http_host
    typer.echo(_("cli_dashboard", url=f"http://{shown_host}:{settings.http_port}/"))
    broker = settings.broker_url or f"mqtt://127.0.0.1:{settings.embedded_broker_port}"
    typer.echo(_("cli_broker", url=broker))


def _read_password(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise _PasswordFileError(path, error) from error
    return lines[0] if lines else ""


class _PasswordFileError(ServerError):
    def __init__(self, path: Path, error: Exception) -> None:
        super().__init__("password_file_unreadable", path=str(path), detail=str(error))


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except StorageError as error:
        logger.debug("Command failed", exc_info=True)
        typer.echo(error.localized(), err=True)
        raise typer.Exit(EXIT_FAILED) from error
    except ServerError as error:
        # The other server errors name a setting or a service the operator must fix.
        logger.debug("Command failed", exc_info=True)
        typer.echo(error.localized(), err=True)
        raise typer.Exit(EXIT_INVALID_SETTINGS) from error
