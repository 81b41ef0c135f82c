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

import click
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
from agent.opcua_messages import OPCUA_CLIENT_MESSAGES
from kooperant.i18n import Catalog

EXIT_TRUSTED = 0
EXIT_DECLINED = 1
EXIT_ERROR = 2
DEFAULT_TIMEOUT_SECONDS: float = OpcUaSettings.model_fields["timeout_seconds"].default
_YES_ANSWERS = {"y", "yes", "t", "tak"}

_ = Catalog(
    {
        **OPCUA_CLIENT_MESSAGES,
        "help": {
            "pl": "Pokaż certyfikat serwera OPC UA (podmiot, wystawca, ważność, odcisk SHA-256, "
            "oferowane zabezpieczenia) i po potwierdzeniu dodaj go do zaufanych certyfikatów "
            "agenta. Pokazuje też certyfikat agenta, któremu musi zaufać serwer. Kod wyjścia: "
            "0 zaufany, 1 odmowa, 2 błąd.",
            "en": "Show an OPC UA server's certificate (subject, issuer, validity, SHA-256 "
            "fingerprint, security offered) and, on confirmation, add it to the agent's trusted "
            "certificates. Also shows the agent's certificate, which the server must trust. "
            "Exit status: 0 trusted, 1 declined, 2 error.",
        },
        "config.help": {
            "pl": "Plik konfiguracji agenta (YAML); folder PKI to pki_dir adaptera opcua o tym "
            "adresie url.",
            "en": "The agent's config file (YAML); the PKI folder is the pki_dir of the opcua "
            "adapter with this url.",
        },
        "adapter.help": {
            "pl": "Nazwa adaptera opcua w --config, gdy jego url różni się od podanego adresu.",
            "en": "Name of the opcua adapter in --config, when its url differs from URL.",
        },
        "pki_dir.help": {
            "pl": "Folder PKI agenta (zamiast --config).",
            "en": "The agent's PKI folder (instead of --config).",
        },
        "yes.help": {
            "pl": "Zaufaj bez pytania, np. w skryptach.",
            "en": "Trust without asking, e.g. in scripts.",
        },
        "timeout.help": {
            "pl": "Limit czasu połączenia i zapytania, w sekundach.",
            "en": "Time limit of connecting and of the request, in seconds.",
        },
        "where.missing": {
            "pl": "Nie wiadomo, gdzie zapisać certyfikat: podaj --config PLIK_AGENTA albo "
            "--pki-dir FOLDER.",
            "en": "Unknown where to store the certificate: give --config AGENT_CONFIG or "
            "--pki-dir FOLDER.",
        },
        "where.both": {
            "pl": "Podaj --config albo --pki-dir, nie oba naraz.",
            "en": "Give either --config or --pki-dir, not both.",
        },
        "adapter.without_config": {
            "pl": "--adapter wymaga --config, bo nazwa adaptera pochodzi z konfiguracji agenta.",
            "en": "--adapter needs --config, because the adapter name comes from the agent config.",
        },
        "config.invalid": {
            "pl": "Błędna konfiguracja (plik, wiersz, klucz: problem):\n{details}\n"
            "Popraw wskazane miejsca i spróbuj ponownie.",
            "en": "Invalid configuration (file, line, key: problem):\n{details}\n"
            "Correct the places listed and try again.",
        },
        "adapter.unknown": {
            "pl": "W {config} nie ma adaptera opcua o nazwie {name!r}. Adaptery opcua: {known}.",
            "en": "{config} has no opcua adapter named {name!r}. opcua adapters: {known}.",
        },
        "adapter.no_match": {
            "pl": "W {config} żaden adapter opcua nie ma url {url}. Adaptery opcua: {known}. "
            "Wskaż adapter przez --adapter NAZWA.",
            "en": "No opcua adapter in {config} has url {url}. opcua adapters: {known}. Name the "
            "adapter with --adapter NAME.",
        },
        "adapter.ambiguous": {
            "pl": "W {config} kilka adapterów opcua ma url {url}, z różnymi pki_dir: {known}. "
            "Wskaż adapter przez --adapter NAZWA.",
            "en": "Several opcua adapters in {config} have url {url}, with different pki_dir: "
            "{known}. Name the adapter with --adapter NAME.",
        },
        "none": {"pl": "brak", "en": "none"},
        "error.failed": {
            "pl": "Serwer {url} zgłosił błąd przy odczycie punktów końcowych ({detail}). "
            "Sprawdź dziennik serwera i spróbuj ponownie.",
            "en": "Server {url} reported an error when asked for its endpoints ({detail}). "
            "Check the server's log and try again.",
        },
        "error.no_certificate": {
            "pl": "Serwer {url} nie przesłał żadnego certyfikatu; jego punkty końcowe: {detail}. "
            "Zabezpieczenia nie są na nim skonfigurowane, więc nie ma czemu zaufać.",
            "en": "Server {url} sent no certificate; its endpoints: {detail}. Security is not "
            "configured on it, so there is nothing to trust.",
        },
        "error.invalid_certificate": {
            "pl": "Serwer {url} przesłał błędny certyfikat ({detail}). Sprawdź certyfikat "
            "skonfigurowany na serwerze.",
            "en": "Server {url} sent an invalid certificate ({detail}). Check the certificate "
            "configured on the server.",
        },
        "error.certificate_file": {
            "pl": "Problem z plikiem {path}: {problem}",
            "en": "Problem with the file {path}: {problem}",
        },
        "error.write": {
            "pl": "Nie można zapisać certyfikatu w {folder}: {reason}. Sprawdź uprawnienia.",
            "en": "Cannot store the certificate in {folder}: {reason}. Check the permissions.",
        },
        "heading": {
            "pl": "Serwer {url}, folder zaufanych certyfikatów {folder}",
            "en": "Server {url}, trusted certificates folder {folder}",
        },
        "certificate": {"pl": "Certyfikat {number}:", "en": "Certificate {number}:"},
        "subject": {"pl": "podmiot", "en": "subject"},
        "issuer": {"pl": "wystawca", "en": "issuer"},
        "self_signed": {"pl": "(samopodpisany)", "en": "(self-signed)"},
        "validity": {"pl": "ważny", "en": "valid"},
        "validity.range": {"pl": "od {start} do {end}", "en": "from {start} to {end}"},
        "expired": {
            "pl": "UWAGA: certyfikat wygasł; serwer powinien dostać nowy",
            "en": "WARNING: the certificate has expired; the server should get a new one",
        },
        "not_yet_valid": {
            "pl": "UWAGA: certyfikat nie jest jeszcze ważny; sprawdź zegar serwera i agenta",
            "en": "WARNING: the certificate is not valid yet; check the server's and the "
            "agent's clocks",
        },
        "application_uri": {"pl": "URI aplikacji", "en": "application URI"},
        "offers": {"pl": "zabezpieczenia", "en": "security"},
        "status": {"pl": "stan", "en": "status"},
        "status.trusted": {"pl": "już zaufany ({path})", "en": "already trusted ({path})"},
        "status.untrusted": {"pl": "jeszcze niezaufany", "en": "not trusted yet"},
        "own": {
            "pl": "Certyfikat agenta (serwer musi mu zaufać, aby przyjąć bezpieczne połączenie):",
            "en": "The agent's certificate (the server must trust it to accept secured "
            "connections):",
        },
        "own.created": {"pl": "utworzony teraz", "en": "created now"},
        "file": {"pl": "plik", "en": "file"},
        "compare": {
            "pl": "Porównaj odcisk SHA-256 z tym, który pokazuje serwer (np. w jego panelu), "
            "zanim zaufasz certyfikatowi.",
            "en": "Compare the SHA-256 fingerprint with the one the server shows (e.g. in its "
            "management screen) before you trust the certificate.",
        },
        "question.one": {
            "pl": "Zaufać temu certyfikatowi? [t/N]",
            "en": "Trust this certificate? [y/N]",
        },
        "question.many": {
            "pl": "Zaufać tym {count} certyfikatom? [t/N]",
            "en": "Trust these {count} certificates? [y/N]",
        },
        "already": {
            "pl": "Wszystkie certyfikaty serwera są już zaufane.",
            "en": "Every certificate of the server is trusted already.",
        },
        "trusted": {"pl": "Zaufano: zapisano {path}", "en": "Trusted: stored {path}"},
        "declined": {
            "pl": "Nie zaufano certyfikatowi; niczego nie zapisano.",
            "en": "The certificate was not trusted; nothing was stored.",
        },
    }
)

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
    except click.exceptions.Abort:
        return False
    return answer.strip().lower() in _YES_ANSWERS
