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

_ = Catalog.for_module(__name__)

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
