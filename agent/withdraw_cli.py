"""``kooperant agent withdraw`` and ``restore``: take a resource's offer back, or share it again.

``withdraw`` records the owner's withdrawal in the agent's local SQLite file, where a running
agent notices it within a second, and then clears the resource's retained offer and sends a
retained withdrawal itself when the broker responds within ``SEND_TIMEOUT_SECONDS``. Otherwise the
agent sends them, when it runs. ``restore`` deletes the record, and the agent publishes the offer
again in its next cycle, if the policy permits it.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, NoReturn

import aiomqtt
import typer

from agent.audit import AuditLog
from agent.config import AgentConfig, load_config
from agent.errors import AuditLogError, ConfigError
from agent.publisher import mqtt_client
from agent.resource_ids import known_ids, resolve_resource
from agent.retained import RetainedMessage, RetainedTopics
from agent.withdrawals import WithdrawalNotice, WithdrawalTable
from kooperant.i18n import Catalog
from kooperant.protocol import WithdrawalReason

EXIT_USAGE_ERROR = 2
SEND_TIMEOUT_SECONDS = 5.0

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
        "withdrawn.sent": {
            "pl": "Wysłano teraz do brokera: {topics}.",
            "en": "Sent to the broker now: {topics}.",
        },
        "withdrawn.nothing": {
            "pl": "Według dziennika audytu broker nie przechowuje oferty tego zasobu, więc "
            "niczego nie wysłano.",
            "en": "According to the audit log the broker keeps no offer of this resource, so "
            "nothing was sent.",
        },
        "withdrawn.unsent": {
            "pl": "Broker {broker} nie odpowiedział ({error}). Jeśli agent działa, wyśle "
            "wycofanie, gdy tylko połączy się z brokerem; jeśli nie, wyśle je przy następnym "
            "uruchomieniu.",
            "en": "Broker {broker} did not answer ({error}). If the agent is running, it sends "
            "the withdrawal as soon as it reaches the broker; otherwise it sends it at its next "
            "start.",
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
        with AuditLog(loaded.audit_log_path) as log, WithdrawalTable(log.path) as table:
            resolved = resolve_resource(loaded, log, resource)
            if resolved is None:
                _fail_unknown(loaded, log, resource, config)
            table.add(resolved.key, delete_history, now)
            history = _("history") if delete_history else ""
            typer.echo(_("withdrawn.recorded", resource=resolved.key, history=history))

            retained = RetainedTopics.from_audit_log(log, loaded.cluster, loaded.member)
            notice = WithdrawalNotice(WithdrawalReason.WITHDRAWN, delete_history)
            messages = [
                message
                for public_id in sorted(resolved.ids)
                for message in retained.withdraw(public_id, notice, now)
            ]
            if not messages:
                typer.echo(_("withdrawn.nothing"))
                return
            _send_or_explain(loaded, log, messages, now)
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


def _send_or_explain(
    config: AgentConfig, log: AuditLog, messages: list[RetainedMessage], now: datetime
) -> None:
    try:
        asyncio.run(_send(config, log, messages, now))
    except (aiomqtt.MqttError, TimeoutError) as error:
        broker = f"{config.broker.host}:{config.broker.port}"
        reason = str(error) or f"no answer within {SEND_TIMEOUT_SECONDS:g} s"
        typer.echo(_("withdrawn.unsent", broker=broker, error=reason))
        return
    typer.echo(_("withdrawn.sent", topics=", ".join(message.topic for message in messages)))


async def _send(
    config: AgentConfig, log: AuditLog, messages: list[RetainedMessage], now: datetime
) -> None:
    # The agent's own client id with a suffix, so neither a running agent nor another withdraw
    # command running at the same moment is disconnected by the broker.
    client_id = f"{config.client_id}-withdraw-{os.getpid()}"
    async with asyncio.timeout(SEND_TIMEOUT_SECONDS):
        async with mqtt_client(config.broker, client_id, SEND_TIMEOUT_SECONDS) as client:
            for message in messages:
                # With QoS 1, publish returns only after the broker's PUBACK.
                await client.publish(message.topic, message.payload, qos=1, retain=True)
                log.record(message.topic, message.payload, now)


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
