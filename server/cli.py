"""The ``kooperant server`` commands.

They are run, ingest, migrate, token add, add-member, add-user, enable-user and disable-user.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from typer._click.globals import get_current_context

from kooperant.protocol import TopicError, check_identifier
from server.broker_accounts import (
    PasswordFileChange,
    add_member_account,
    agent_broker_settings,
    check_account_ids,
)
from server.config_file import ConfigOption, ConfigurableCommand
from server.errors import AccountError, InvalidSettingError, ServerError, StorageError
from server.mail_settings import smtp_settings_from_options
from server.messages import MESSAGES as _
from server.mqtt_url import parse_broker_url
from server.option_sources import os_error_text, with_sources
from server.passwords import (
    MIN_DISTINCT_CHARACTERS,
    MIN_PASSWORD_LENGTH,
    generate_password,
    hash_password,
    password_problem,
)
from server.profile_fields import account_id_problems, checked_profile
from server.service import open_storage, run_ingest, run_server
from server.settings import (
    DEFAULT_HISTORY_RETENTION_DAYS,
    DEFAULT_SESSION_EXPIRY_SECONDS,
    MqttProtocolChoice,
    ServerSettings,
)
from server.storage import DEFAULT_DATABASE_URL, Storage, mask_password
from server.storage.accounts import ROLES, normalize_username
from server.subscriber import default_client_id
from server.tokens import add_token

logger = logging.getLogger(__name__)

# Exit status for invalid settings or an unreachable service, as click uses for invalid options.
EXIT_INVALID_SETTINGS = 2
EXIT_FAILED = 1
BROKER_PASSWORD_VARIABLE = "KOOPERANT_BROKER_PASSWORD"

app = typer.Typer(help=_("cli_help"), no_args_is_help=True, pretty_exceptions_enable=False)
token_app = typer.Typer(
    help=_("cli_token_help"), no_args_is_help=True, pretty_exceptions_enable=False
)
app.add_typer(token_app, name="token")

DatabaseOption = typer.Option(DEFAULT_DATABASE_URL, "--database", help=_("opt_database"))
BrokerUsernameOption = typer.Option(None, "--broker-username", help=_("opt_broker_username"))
BrokerPasswordFileOption = typer.Option(
    None, "--broker-password-file", help=_("opt_broker_password_file")
)
ClusterOption = typer.Option(None, "--cluster", help=_("opt_cluster"))
ClientIdOption = typer.Option(None, "--client-id", help=_("opt_client_id"))
SharedGroupOption = typer.Option(None, "--shared-group", help=_("opt_shared_group"))
SessionExpiryOption = typer.Option(
    DEFAULT_SESSION_EXPIRY_SECONDS, "--session-expiry", help=_("opt_session_expiry")
)
MqttProtocolOption = typer.Option("auto", "--mqtt-protocol", help=_("opt_mqtt_protocol"))
CaFileOption = typer.Option(None, "--broker-ca-file", help=_("opt_broker_ca_file"))
CertFileOption = typer.Option(None, "--broker-cert-file", help=_("opt_broker_cert_file"))
KeyFileOption = typer.Option(None, "--broker-key-file", help=_("opt_broker_key_file"))
KeyPasswordFileOption = typer.Option(
    None, "--broker-key-password-file", help=_("opt_broker_key_password_file")
)


@dataclass(frozen=True)
class _BrokerOptions:
    """The broker and session options that ``run`` and ``ingest`` share, as given."""

    url: str | None
    username: str | None
    password_file: Path | None
    cluster: str | None
    client_id: str | None
    shared_group: str | None
    session_expiry: int
    mqtt_protocol: str
    ca_file: Path | None
    cert_file: Path | None
    key_file: Path | None
    key_password_file: Path | None

    def settings(self, database: str, **other: Any) -> ServerSettings:
        """Return ``ServerSettings`` with these options, reading the password files."""
        return ServerSettings(
            database=database,
            broker_url=self.url,
            broker_username=self.username,
            broker_password=_broker_password(self.password_file),
            cluster=self.cluster,
            client_id=self.client_id,
            shared_group=self.shared_group,
            session_expiry_seconds=self.session_expiry,
            mqtt_protocol=cast(MqttProtocolChoice, self.mqtt_protocol),
            broker_ca_file=self.ca_file,
            broker_cert_file=self.cert_file,
            broker_key_file=self.key_file,
            broker_key_password=_read_password(
                self.key_password_file, "key_password_file_unreadable"
            ),
            **other,
        )


MetricsTokenFileOption = typer.Option(
    None, "--metrics-token-file", metavar="PATH", help=_("opt_metrics_token_file")
)


@app.command(help=_("cli_run_help"), cls=ConfigurableCommand)
def run(
    config: Path | None = ConfigOption,
    database: str = DatabaseOption,
    broker: str | None = typer.Option(None, "--broker", help=_("opt_broker")),
    broker_username: str | None = BrokerUsernameOption,
    broker_password_file: Path | None = BrokerPasswordFileOption,
    cluster: str | None = ClusterOption,
    host: str = typer.Option("127.0.0.1", "--host", help=_("opt_host")),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help=_("opt_port")),
    embedded_broker_port: int = typer.Option(
        1883, "--embedded-broker-port", min=1, max=65535, help=_("opt_embedded_broker_port")
    ),
    tokens: Annotated[Path | None, typer.Option("--tokens", help=_("opt_tokens"))] = None,
    client_id: str | None = ClientIdOption,
    shared_group: str | None = SharedGroupOption,
    session_expiry: int = SessionExpiryOption,
    mqtt_protocol: str = MqttProtocolOption,
    broker_ca_file: Path | None = CaFileOption,
    broker_cert_file: Path | None = CertFileOption,
    broker_key_file: Path | None = KeyFileOption,
    broker_key_password_file: Path | None = KeyPasswordFileOption,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option("--trusted-proxy", metavar="ADDRESS", help=_("opt_trusted_proxy")),
    ] = None,
    smtp_url: Annotated[
        str | None, typer.Option("--smtp-url", metavar="URL", help=_("opt_smtp_url"))
    ] = None,
    smtp_starttls: Annotated[
        bool, typer.Option("--smtp-starttls", help=_("opt_smtp_starttls"))
    ] = False,
    smtp_from: Annotated[
        str | None, typer.Option("--smtp-from", metavar="ADDRESS", help=_("opt_smtp_from"))
    ] = None,
    smtp_username: Annotated[
        str | None, typer.Option("--smtp-username", help=_("opt_smtp_username"))
    ] = None,
    smtp_password_file: Annotated[
        Path | None, typer.Option("--smtp-password-file", help=_("opt_smtp_password_file"))
    ] = None,
    smtp_ca_file: Annotated[
        Path | None, typer.Option("--smtp-ca-file", help=_("opt_smtp_ca_file"))
    ] = None,
    public_url: Annotated[
        str | None, typer.Option("--public-url", metavar="URL", help=_("opt_public_url"))
    ] = None,
    metrics_token_file: Path | None = MetricsTokenFileOption,
    history_retention_days: Annotated[
        int,
        typer.Option(
            "--history-retention-days", metavar="DAYS", help=_("opt_history_retention_days")
        ),
    ] = DEFAULT_HISTORY_RETENTION_DAYS,
) -> None:
    options = _BrokerOptions(
        url=broker,
        username=broker_username,
        password_file=broker_password_file,
        cluster=cluster,
        client_id=client_id,
        shared_group=shared_group,
        session_expiry=session_expiry,
        mqtt_protocol=mqtt_protocol,
        ca_file=broker_ca_file,
        cert_file=broker_cert_file,
        key_file=broker_key_file,
        key_password_file=broker_key_password_file,
    )
    with _user_errors():
        settings = options.settings(
            database,
            http_host=host,
            http_port=port,
            embedded_broker_port=embedded_broker_port,
            tokens_file=tokens,
            trusted_proxies=tuple(trusted_proxy or ()),
            smtp=smtp_settings_from_options(
                url=smtp_url,
                sender=smtp_from,
                username=smtp_username,
                password_file=smtp_password_file,
                starttls=smtp_starttls,
                ca_file=smtp_ca_file,
                environment=os.environ,
            ),
            public_url=public_url,
            metrics_token=_read_password(metrics_token_file, "metrics_token_file_unreadable"),
            history_retention_days=history_retention_days,
        )
        asyncio.run(_run_until_signal(settings))
    typer.echo(_("cli_stopped"))


@app.command(help=_("cli_ingest_help"), cls=ConfigurableCommand)
def ingest(
    config: Path | None = ConfigOption,
    database: str = DatabaseOption,
    broker: str | None = typer.Option(None, "--broker", help=_("opt_ingest_broker")),
    broker_username: str | None = BrokerUsernameOption,
    broker_password_file: Path | None = BrokerPasswordFileOption,
    cluster: str | None = ClusterOption,
    client_id: str | None = ClientIdOption,
    shared_group: str | None = SharedGroupOption,
    session_expiry: int = SessionExpiryOption,
    mqtt_protocol: str = MqttProtocolOption,
    broker_ca_file: Path | None = CaFileOption,
    broker_cert_file: Path | None = CertFileOption,
    broker_key_file: Path | None = KeyFileOption,
    broker_key_password_file: Path | None = KeyPasswordFileOption,
    metrics_port: Annotated[
        int | None,
        typer.Option("--metrics-port", min=1, max=65535, help=_("opt_metrics_port")),
    ] = None,
    metrics_token_file: Path | None = MetricsTokenFileOption,
) -> None:
    options = _BrokerOptions(
        url=broker,
        username=broker_username,
        password_file=broker_password_file,
        cluster=cluster,
        client_id=client_id,
        shared_group=shared_group,
        session_expiry=session_expiry,
        mqtt_protocol=mqtt_protocol,
        ca_file=broker_ca_file,
        cert_file=broker_cert_file,
        key_file=broker_key_file,
        key_password_file=broker_key_password_file,
    )
    with _user_errors():
        if broker is None:
            raise InvalidSettingError("ingest_needs_broker")
        settings = options.settings(
            database,
            metrics_port=metrics_port,
            metrics_token=_read_password(metrics_token_file, "metrics_token_file_unreadable"),
        )
        broker_url = parse_broker_url(broker).url
        client = settings.client_id or default_client_id(settings.cluster)
        typer.echo(_("cli_ingest_running", url=broker_url, client_id=client))
        asyncio.run(_ingest_until_signal(settings))
    typer.echo(_("cli_ingest_stopped"))


@app.command(help=_("cli_migrate_help"), cls=ConfigurableCommand)
def migrate(config: Path | None = ConfigOption, database: str = DatabaseOption) -> None:
    with _user_errors():
        storage = open_storage(ServerSettings(database=database, migrate=True))
        try:
            revision = storage.schema_revision()
        finally:
            storage.close()
    typer.echo(_("cli_migrated", url=mask_password(database), revision=revision))


@token_app.command("add", help=_("cli_token_add_help"))
def token_add(
    tokens: Annotated[Path, typer.Option("--tokens", help=_("opt_token_file"))],
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
    name: Annotated[str | None, typer.Option("--name", help=_("opt_profile_name"))] = None,
    email: Annotated[str | None, typer.Option("--email", help=_("opt_profile_email"))] = None,
    phone: Annotated[str | None, typer.Option("--phone", help=_("opt_profile_phone"))] = None,
    voivodeship: Annotated[
        str | None, typer.Option("--voivodeship", help=_("opt_profile_voivodeship"))
    ] = None,
    city: Annotated[str | None, typer.Option("--city", help=_("opt_profile_city"))] = None,
) -> None:
    profile_given = any(value is not None for value in (name, email, phone, voivodeship, city))
    with _user_errors():
        profile = checked_profile(
            cluster,
            member,
            name=name,
            email=email,
            phone=phone,
            voivodeship=voivodeship,
            city=city,
            problems=account_id_problems(cluster, member),
        )
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
            if profile_given:
                storage.save_profile(profile, datetime.now(UTC))
        finally:
            storage.close()

    # The explanation goes to stderr and only the agent's settings to stdout, for a script.
    registered = "member_registered" if account.newly_registered else "member_password_renewed"
    shown_url = mask_password(database)
    typer.echo(_(registered, cluster=cluster, member=member, url=shown_url), err=True)
    if account.cut_off:
        members = ", ".join(account.cut_off)
        typer.echo(_("member_first_registration", cluster=cluster, members=members), err=True)
    if mosquitto_passwords is not None:
        path = str(mosquitto_passwords)
        typer.echo(_("member_password_written", member=member, path=path), err=True)
        if account.password_file_change == PasswordFileChange.CREATED:
            typer.echo(_("mosquitto_passwords_created", path=path), err=True)
    else:
        typer.echo(_("member_password_not_written", member=member), err=True)
    if profile_given:
        typer.echo(_("member_profile_saved", cluster=cluster, member=member), err=True)
    typer.echo(_("member_password_once"), err=True)
    typer.echo(agent_broker_settings(account), nl=False)


@app.command("add-user", help=_("cli_add_user_help"))
def add_user(
    username: Annotated[str, typer.Option("--username", help=_("opt_user_username"))],
    role: Annotated[str, typer.Option("--role", help=_("opt_user_role"))],
    cluster: Annotated[str, typer.Option("--cluster", help=_("opt_user_cluster"))],
    member: Annotated[str | None, typer.Option("--member", help=_("opt_user_member"))] = None,
    database: str = DatabaseOption,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help=_("opt_user_password_file"), dir_okay=False),
    ] = None,
    display_name: Annotated[
        str | None, typer.Option("--display-name", help=_("opt_user_display_name"))
    ] = None,
    new_cluster: Annotated[
        bool, typer.Option("--new-cluster", help=_("opt_user_new_cluster"))
    ] = False,
) -> None:
    with _user_errors():
        normalized = normalize_username(username)
        if role not in ROLES:
            raise AccountError("user_role_invalid", value=role)
        _check_cluster(cluster)
        if member is not None:
            check_account_ids(cluster, member)
        password = _read_user_password(password_file)
        generated = password is None
        if password is None:
            password = generate_password(normalized)
        problem = password_problem(password, normalized)
        if problem is not None:
            raise AccountError(problem, min=MIN_PASSWORD_LENGTH, distinct=MIN_DISTINCT_CHARACTERS)

        storage = open_storage(ServerSettings(database=database, migrate=True))
        try:
            if not new_cluster:
                _check_cluster_known(storage, cluster)
            storage.create_user(
                username=normalized,
                password_hash=hash_password(password),
                role=role,
                cluster=cluster,
                member=member,
                display_name=display_name,
                must_change_password=generated,
                now=datetime.now(UTC),
            )
        finally:
            storage.close()

    shown_url = mask_password(database)
    typer.echo(
        _("user_created", username=normalized, role=role, cluster=cluster, url=shown_url),
        err=True,
    )
    if generated:
        # Only the password goes to stdout, so that a script can take it.
        typer.echo(_("user_password_once"), err=True)
        typer.echo(password)


def _check_cluster(cluster: str) -> None:
    try:
        check_identifier(cluster, "cluster")
    except TopicError as error:
        raise InvalidSettingError("cluster_invalid", value=cluster) from error


def _check_cluster_known(storage: Storage, cluster: str) -> None:
    """Raise ``AccountError`` for a cluster the database has never seen, unless it is empty.

    An empty database is a first install, so its first cluster is accepted as it is.
    """
    clusters = storage.known_clusters()
    if clusters and cluster not in clusters:
        raise AccountError("user_cluster_unknown", value=cluster, clusters=", ".join(clusters))


def _stop_on_signal() -> asyncio.Event:
    """Return an event that SIGINT and SIGTERM set."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        # NOTE: Windows event loops have no add_signal_handler; there Ctrl+C raises
        # KeyboardInterrupt, which ends the command without a clean shutdown.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal_number, stop.set)
    return stop


async def _ingest_until_signal(settings: ServerSettings) -> None:
    await run_ingest(settings, _stop_on_signal())


async def _run_until_signal(settings: ServerSettings) -> None:
    stop = _stop_on_signal()
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


@app.command("enable-user", help=_("cli_enable_user_help"))
def enable_user(
    username: Annotated[str, typer.Option("--username", help=_("opt_user_username"))],
    database: str = DatabaseOption,
) -> None:
    normalized = _set_user_disabled(username, database, disabled=False)
    typer.echo(_("user_enabled", username=normalized, url=mask_password(database)))


@app.command("disable-user", help=_("cli_disable_user_help"))
def disable_user(
    username: Annotated[str, typer.Option("--username", help=_("opt_user_username"))],
    database: str = DatabaseOption,
) -> None:
    normalized = _set_user_disabled(username, database, disabled=True)
    typer.echo(_("user_disabled", username=normalized, url=mask_password(database)))


def _set_user_disabled(username: str, database: str, *, disabled: bool) -> str:
    """Disable or enable the user ``username``; return the name as stored."""
    with _user_errors():
        normalized = normalize_username(username)
        storage = open_storage(ServerSettings(database=database, migrate=True))
        try:
            user = storage.find_user(normalized)
            if user is None:
                raise AccountError("user_not_found", username=normalized)
            if disabled:
                storage.disable_user(user.id)
            else:
                storage.enable_user(user.id)
        finally:
            storage.close()
    return normalized


# The option of each password or token file, by the message id of its read error.
_PASSWORD_FILE_OPTIONS = {
    "password_file_unreadable": "--broker-password-file",
    "key_password_file_unreadable": "--broker-key-password-file",
    "metrics_token_file_unreadable": "--metrics-token-file",
}


def _read_password(path: Path | None, message_id: str = "password_file_unreadable") -> str | None:
    if path is None:
        return None
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise _PasswordFileError(message_id, path, error) from error
    return lines[0] if lines else ""


def _broker_password(path: Path | None) -> str | None:
    """Return the broker password from ``--broker-password-file`` or the environment."""
    from_environment = os.environ.get(BROKER_PASSWORD_VARIABLE) or None
    if path is None:
        return from_environment
    if from_environment is not None:
        raise InvalidSettingError("broker_password_twice", path=str(path))
    return _read_password(path)


def _read_user_password(path: Path | None) -> str | None:
    """Return the first line of the ``--password-file`` of add-user, or ``None`` without one."""
    try:
        return _read_password(path, "user_password_file_unreadable")
    except _PasswordFileError as error:
        cause = error.__cause__
        if isinstance(cause, FileNotFoundError):
            raise AccountError("user_password_file_missing", path=str(path)) from cause
        if isinstance(cause, PermissionError):
            raise AccountError("user_password_file_denied", path=str(path)) from cause
        if isinstance(cause, UnicodeDecodeError):
            raise AccountError("user_password_file_not_utf8", path=str(path)) from cause
        raise


class _PasswordFileError(ServerError):
    def __init__(self, message_id: str, path: Path, error: Exception) -> None:
        detail = os_error_text(error) if isinstance(error, OSError) else str(error)
        super().__init__(message_id, path=str(path), detail=detail)
        self.option = _PASSWORD_FILE_OPTIONS.get(message_id)


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
        typer.echo(_localized_with_sources(error), err=True)
        raise typer.Exit(EXIT_INVALID_SETTINGS) from error


def _localized_with_sources(error: ServerError) -> str:
    """Return the message of ``error`` with the variable or file line of the options it names."""
    message = error.localized()
    ctx = get_current_context(silent=True)
    if ctx is None:
        return message
    options = [option] if (option := getattr(error, "option", None)) else []
    options += [flag for prefix, flag in _URL_OPTIONS if error.message_id.startswith(prefix)]
    return with_sources(ctx, message, options)


# The URL checks name the URL but not its option; their message ids start with these prefixes.
_URL_OPTIONS = (
    ("broker_url", "--broker"),
    ("database_url", "--database"),
    ("smtp_url", "--smtp-url"),
    ("public_url", "--public-url"),
)
