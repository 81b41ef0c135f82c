"""``kooperant agent withdraw`` and ``restore``: take a resource's offer back, or share it again.

``withdraw`` records the owner's withdrawal in the agent's local SQLite file, where a running
agent notices it within a second, and queues the clear of the resource's retained offer and a
retained withdrawal in the agent's outbox in the same file. A running agent sends them within a
second; otherwise they wait until the agent starts. ``restore`` deletes the record, and the agent
publishes the offer again in its next cycle, if the policy permits it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from agent.audit import AuditLog
from agent.config import AgentConfig, load_config
from agent.errors import AuditLogError, ConfigError
from agent.outbox import Outbox
from agent.resource_ids import known_ids, resolve_resource
from agent.retained import RetainedTopics
from agent.withdrawals import WithdrawalNotice, WithdrawalTable
from kooperant.i18n import Catalog
from kooperant.protocol import WithdrawalReason

EXIT_USAGE_ERROR = 2

_ = Catalog(
    {
        "withdraw.help": {
            "pl": "Wycofaj ofertę zasobu: agent przestaje ją publikować, a broker i agregator "
            "ją usuwają. Działa także przy uruchomionym agencie.",
            "en": "Withdraw a resource's offer: the agent stops publishing it, and the broker and "
            "the aggregator remove it. Works while the agent runs, too.",
        },
        "restore.help": {
            "pl": "Cofnij wycofanie zasobu: agent znów publikuje jego ofertę, jeśli polityka "
            "na to pozwala.",
            "en": "Undo a withdrawal: the agent publishes the resource's offer again if the "
            "policy permits it.",
        },
        "resource.help": {
            "pl": "Identyfikator zasobu: wewnętrzny (z konfiguracji) lub publiczny (publish_as).",
            "en": "Resource id: the internal one (from the config) or the public one (publish_as).",
        },
        "delete_history.help": {
            "pl": "Poproś agregator o usunięcie także historii ofert tego zasobu.",
            "en": "Ask the aggregator to delete the resource's offer history too.",
        },
        "config.help": {
            "pl": "Plik konfiguracji agenta (YAML), np. config/agent.example.yaml.",
            "en": "The agent's config file (YAML), e.g. config/agent.example.yaml.",
        },
        "config.invalid": {
            "pl": "Błędna konfiguracja (plik, wiersz, klucz: problem):\n{details}\n"
            "Popraw wskazane miejsca i spróbuj ponownie.",
            "en": "Invalid configuration (file, line, key: problem):\n{details}\n"
            "Correct the places listed and try again.",
        },
        "log.failed": {
            "pl": "Nie można użyć lokalnego pliku agenta: {error}",
            "en": "Cannot use the agent's local file: {error}",
        },
        "resource.unknown": {
            "pl": "Nieznany zasób {resource!r}: nie ma go w konfiguracji {config}, w polityce "
            "ani w dzienniku audytu. Znane zasoby: {known}.",
            "en": "Unknown resource {resource!r}: it is not in the config {config}, in the "
            "policy or in the audit log. Known resources: {known}.",
        },
        "none": {"pl": "brak", "en": "none"},
        "withdrawn.recorded": {
            "pl": "Zapisano wycofanie {resource}{history}. Jeśli agent działa, przestaje "
            "publikować tę ofertę w ciągu sekundy; jeśli nie, wyśle wycofanie przy następnym "
            "uruchomieniu.",
            "en": "Recorded the withdrawal of {resource}{history}. If the agent is running, it "
            "stops publishing the offer within a second; otherwise it sends the withdrawal at "
            "its next start.",
        },
        "history": {
            "pl": " z prośbą o usunięcie historii",
            "en": " with a request to delete its history",
        },
        "withdrawn.queued": {
            "pl": "Dodano do kolejki wiadomości dla brokera: {topics}. Działający agent wyśle je "
            "w ciągu sekundy od połączenia z brokerem; jeśli agent nie działa, wyśle je przy "
            "następnym uruchomieniu.",
            "en": "Queued for the broker: {topics}. A running agent sends them within a second "
            "of reaching the broker; otherwise the agent sends them at its next start.",
        },
        "withdrawn.nothing": {
            "pl": "Według dziennika audytu i kolejki broker nie przechowuje oferty tego zasobu, "
            "więc niczego nie dodano do kolejki.",
            "en": "According to the audit log and the queue the broker keeps no offer of this "
            "resource, so nothing was queued.",
        },
        "restore.none": {
            "pl": "Zasób {resource!r} nie jest wycofany. Wycofane zasoby: {withdrawn}.",
            "en": "Resource {resource!r} is not withdrawn. Withdrawn resources: {withdrawn}.",
        },
        "restored": {
            "pl": "Usunięto wycofanie {resource}. Jeśli agent działa, opublikuje ofertę ponownie "
            "w następnym cyklu, a jeśli nie, przy następnym uruchomieniu, o ile polityka na to "
            "pozwala.",
            "en": "Removed the withdrawal of {resource}. If the agent is running, it publishes "
            "the offer again in its next cycle, otherwise at its next start, as far as the "
            "policy permits it.",
        },
    }
)

WITHDRAW_HELP = _("withdraw.help")
RESTORE_HELP = _("restore.help")

ResourceArgument = Annotated[
    str, typer.Argument(metavar="RESOURCE", help=_("resource.help"), show_default=False)
]
ConfigOption = Annotated[Path, typer.Option("--config", "-c", help=_("config.help"))]


def withdraw(
    resource: ResourceArgument,
    config: ConfigOption,
    delete_history: Annotated[
        bool, typer.Option("--delete-history", help=_("delete_history.help"))
    ] = False,
) -> None:
    loaded = _load_config(config)
    now = datetime.now(UTC)
    try:
        with (
            AuditLog(loaded.audit_log_path) as log,
            WithdrawalTable(log.path) as table,
            Outbox(log.path, loaded.outbox.limits()) as outbox,
        ):
            resolved = resolve_resource(loaded, log, resource)
            if resolved is None:
                _fail_unknown(loaded, log, resource, config)
            table.add(resolved.key, delete_history, now)
            history = _("history") if delete_history else ""
            typer.echo(_("withdrawn.recorded", resource=resolved.key, history=history))

            retained = RetainedTopics.rebuild(log, outbox, loaded.cluster, loaded.member)
            notice = WithdrawalNotice(WithdrawalReason.WITHDRAWN, delete_history)
            messages = [
                message
                for public_id in sorted(resolved.ids)
                for message in retained.withdraw(public_id, notice, now)
            ]
            if not messages:
                typer.echo(_("withdrawn.nothing"))
                return
            # NOTE: a running agent that reads the new record before this write may queue the same
            # clear and withdrawal too. The aggregator then receives both, with different ids.
            queued = outbox.enqueue(messages)
            topics = ", ".join(message.topic for message in queued)
            typer.echo(_("withdrawn.queued", topics=topics))
    except AuditLogError as error:
        _fail(_("log.failed", error=error), error)


def restore(resource: ResourceArgument, config: ConfigOption) -> None:
    loaded = _load_config(config)
    try:
        with AuditLog(loaded.audit_log_path) as log, WithdrawalTable(log.path) as table:
            resolved = resolve_resource(loaded, log, resource)
            candidates = {resource} if resolved is None else {resolved.key, *resolved.ids}
            removed = [key for key in sorted(candidates) if table.remove(key)]
            if not removed:
                withdrawn = ", ".join(sorted(table.read())) or _("none")
                _fail(_("restore.none", resource=resource, withdrawn=withdrawn))
    except AuditLogError as error:
        _fail(_("log.failed", error=error), error)
    typer.echo(_("restored", resource=", ".join(removed)))


def _load_config(path: Path) -> AgentConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        _fail(_("config.invalid", details=error), error)


def _fail_unknown(config: AgentConfig, log: AuditLog, value: str, path: Path) -> NoReturn:
    known = known_ids(config, log)
    _fail(_("resource.unknown", resource=value, config=path, known=", ".join(sorted(known))))


def _fail(message: str, cause: BaseException | None = None) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_USAGE_ERROR) from cause
