"""``kooperant agent trust URL``: show an OPC UA server's certificate and trust it on confirmation.

The command reads the server's endpoints without security (``adapters.opcua.endpoints``), prints
each distinct certificate with its subject, issuer, validity, SHA-256 fingerprint and the security
policies and modes that use it, and prompts for confirmation. On ``yes`` (or with ``--yes``) it
stores the certificates in ``trusted/`` of the PKI folder (see ``adapters.opcua.certificates``).
That folder is the ``pki_dir`` of the opcua adapter in ``--config`` whose url
matches, or the one named by ``--adapter``, or ``--pki-dir``. The command also prints the agent's
own certificate, creating it if missing, because the server has to trust it too.

Exit status: 0 trusted (also when already trusted), 1 declined, 2 on an error.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from adapters.opcua.certificates import (
    CertificateFileError,
    OwnCertificate,
    Pki,
    describe,
)
from adapters.opcua.endpoints import (
    EndpointsError,
    ServerCertificate,
    server_certificates,
)
from adapters.opcua.settings import MAX_TIMEOUT_SECONDS, OpcUaSettings
from agent.config import load_config
from agent.errors import ConfigError
from agent.opcua_messages import OPCUA_CLIENT_CONTEXT
from kooperant.i18n import Catalog

EXIT_TRUSTED = 0
EXIT_DECLINED = 1
EXIT_ERROR = 2
DEFAULT_TIMEOUT_SECONDS: float = OpcUaSettings.model_fields["timeout_seconds"].default
_YES_ANSWERS = {"y", "yes", "t", "tak"}

_ = Catalog.for_module(__name__, shared=(OPCUA_CLIENT_CONTEXT,))

HELP = _("help")


class _Failed(Exception):
    """A failure already worded for the user; the command prints it and exits with 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def trust(
    url: Annotated[str, typer.Argument(help=_("url.help"), metavar="URL", show_default=False)],
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help=_("config.help"), show_default=False)
    ] = None,
    adapter: Annotated[
        str | None, typer.Option("--adapter", help=_("adapter.help"), show_default=False)
    ] = None,
    pki_dir: Annotated[
        Path | None, typer.Option("--pki-dir", help=_("pki_dir.help"), show_default=False)
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help=_("yes.help"))] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help=_("timeout.help"))
    ] = DEFAULT_TIMEOUT_SECONDS,
) -> None:
    try:
        _check_timeout(timeout)
        pki = Pki(_pki_folder(url, config, adapter, pki_dir))
        certificates = _read_certificates(url, timeout)
        own = _own_certificate(pki)
    except _Failed as failure:
        _fail(failure.message)

    untrusted = [entry for entry in certificates if pki.trusted_path(entry.certificate) is None]
    typer.echo(_("heading", url=url, folder=pki.trusted_dir))
    for number, entry in enumerate(certificates, start=1):
        typer.echo(format_certificate(number, entry, pki.trusted_path(entry.certificate)))
    typer.echo(format_own_certificate(own))
    typer.echo("")

    if not untrusted:
        typer.echo(_("already"))
        raise typer.Exit(EXIT_TRUSTED)
    if not yes and not _confirm(len(untrusted)):
        typer.echo(_("declined"))
        raise typer.Exit(EXIT_DECLINED)

    for entry in untrusted:
        try:
            stored = pki.trust(entry.certificate)
        except OSError as error:
            _fail(_("error.write", folder=pki.trusted_dir, reason=error.strerror or error))
        typer.echo(_("trusted", path=stored))


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_ERROR)


def _check_timeout(timeout: float) -> None:
    if not math.isfinite(timeout) or not 0 < timeout <= MAX_TIMEOUT_SECONDS:
        raise _Failed(_("timeout.invalid", value=timeout))


def _pki_folder(url: str, config: Path | None, adapter: str | None, pki_dir: Path | None) -> Path:
    """Return the PKI folder named by the options; see the module docstring."""
    if config is not None and pki_dir is not None:
        raise _Failed(_("where.both"))
    if adapter is not None and config is None:
        raise _Failed(_("adapter.without_config"))
    if pki_dir is not None:
        return pki_dir
    if config is None:
        raise _Failed(_("where.missing"))

    try:
        loaded = load_config(config)
    except ConfigError as error:
        raise _Failed(_("config.invalid", details=error)) from error
    folders = {
        entry.name: (entry.settings.url, loaded.config_dir / entry.settings.pki_dir)
        for entry in loaded.adapters
        if isinstance(entry.settings, OpcUaSettings)
    }
    known = ", ".join(f"{name} ({address})" for name, (address, _) in folders.items())
    known = known or _("none")

    if adapter is not None:
        if adapter not in folders:
            raise _Failed(_("adapter.unknown", config=config, name=adapter, known=known))
        return folders[adapter][1]

    matching = {folder for address, folder in folders.values() if _same_url(address, url)}
    if not matching:
        raise _Failed(_("adapter.no_match", config=config, url=url, known=known))
    if len(matching) > 1:
        raise _Failed(_("adapter.ambiguous", config=config, url=url, known=known))
    return matching.pop()


def _same_url(first: str, second: str) -> bool:
    return first.rstrip("/").lower() == second.rstrip("/").lower()


def _read_certificates(url: str, timeout: float) -> list[ServerCertificate]:
    try:
        return asyncio.run(server_certificates(url, timeout))
    except EndpointsError as error:
        message_id = f"error.{error.failure.value}"
        seconds = f"{timeout:g}"
        message = _(message_id, url=error.url, detail=error.detail, seconds=seconds)
        raise _Failed(message) from error


def _own_certificate(pki: Pki) -> OwnCertificate:
    try:
        return pki.own_certificate()
    except CertificateFileError as error:
        raise _Failed(_("error.certificate_file", path=error.path, problem=error.problem)) from (
            error
        )


def format_certificate(number: int, entry: ServerCertificate, trusted_at: Path | None) -> str:
    """Return one server certificate's details in the current language."""
    info = describe(entry.certificate)
    issuer = _("self_signed") if info.issuer == info.subject else info.issuer
    validity = _("validity.range", start=_time(info.not_before), end=_time(info.not_after))
    lines = [
        _("certificate", number=number),
        f"  {_('subject')}: {info.subject}",
        f"  {_('issuer')}: {issuer}",
        f"  {_('validity')}: {validity}",
    ]
    now = datetime.now(UTC)
    if info.not_after < now:
        lines.append(f"  {_('expired')}")
    elif info.not_before > now:
        lines.append(f"  {_('not_yet_valid')}")
    lines.append(f"  SHA-256: {info.fingerprint}")
    if info.application_uri is not None:
        lines.append(f"  {_('application_uri')}: {info.application_uri}")
    lines.append(f"  {_('offers')}: {', '.join(entry.offers)}")
    status = _("status.untrusted") if trusted_at is None else _("status.trusted", path=trusted_at)
    lines.append(f"  {_('status')}: {status}")
    return "\n".join(lines)


def format_own_certificate(own: OwnCertificate) -> str:
    """Return the agent's certificate path and fingerprint in the current language."""
    created = f" ({_('own.created')})" if own.created else ""
    return "\n".join(
        [
            _("own"),
            f"  {_('file')}: {own.certificate_path}{created}",
            f"  SHA-256: {own.fingerprint}",
            f"  {_('application_uri')}: {own.application_uri}",
        ]
    )


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _confirm(count: int) -> bool:
    """Prompt on the terminal; a reply other than y, yes, t or tak (or no input) declines."""
    typer.echo(_("compare"))
    question = _("question.one") if count == 1 else _("question.many", count=count)
    try:
        answer = typer.prompt(question, default="", show_default=False, prompt_suffix=" ")
    except typer.Abort:
        return False
    return answer.strip().lower() in _YES_ANSWERS
