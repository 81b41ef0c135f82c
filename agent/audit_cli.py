"""``kooperant agent audit``: show, export and verify the agent's local audit log."""

from __future__ import annotations

import json
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from agent.audit import DEFAULT_QUERY_LIMIT, AuditLog
from agent.audit_records import AuditRecord
from agent.config import AgentConfig, load_config
from agent.errors import AuditLogError, ConfigError
from agent.resource_ids import resolve_resource
from kooperant.i18n import Catalog

EXIT_MISMATCH = 1
EXIT_USAGE_ERROR = 2
HASH_PREFIX_LENGTH = 12

_ = Catalog.for_module(__name__)

HELP = _("help")


def audit(
    config: Annotated[Path, typer.Option("--config", "-c", help=_("config.help"))],
    resource: Annotated[str | None, typer.Option(help=_("resource.help"))] = None,
    since: Annotated[str | None, typer.Option(help=_("since.help"))] = None,
    until: Annotated[str | None, typer.Option(help=_("until.help"))] = None,
    limit: Annotated[int, typer.Option(min=1, help=_("limit.help"))] = DEFAULT_QUERY_LIMIT,
    as_json: Annotated[bool, typer.Option("--json", help=_("json.help"))] = False,
    verify: Annotated[bool, typer.Option("--verify", help=_("verify.help"))] = False,
) -> None:
    try:
        loaded = load_config(config)
    except ConfigError as error:
        _fail(_("config.invalid", details=error), error)

    zone = loaded.zone
    start = _parse_time("--since", since, zone)
    end = _parse_time("--until", until, zone)
    if start is not None and end is not None and start >= end:
        _fail(_("range.empty", since=since, until=until))

    path = loaded.audit_log_path
    if not path.is_file():
        _fail(_("log.missing", path=path, config=config))
    try:
        with AuditLog(path) as log:
            if verify:
                _verify(log, zone)
            else:
                ids = None if resource is None else _searched_ids(loaded, log, resource, as_json)
                records = log.query(ids, start, end, limit)
                _print_records(records, zone, as_json)
    except AuditLogError as error:
        _fail(_("log.failed", error=error), error)


def _parse_time(option: str, value: str | None, zone: tzinfo) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        _fail(_("time.invalid", option=option, value=value), error)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _searched_ids(config: AgentConfig, log: AuditLog, resource: str, as_json: bool) -> set[str]:
    # The log stores the public id of each topic, so an internal id renamed by publish_as would
    # find nothing on its own.
    resolved = resolve_resource(config, log, resource)
    ids = {resource} if resolved is None else {resource, *resolved.ids}

    # JSON lines stay parseable because the note goes to stderr.
    note = _("resource.searched", resource=resource, ids=", ".join(sorted(ids)))
    typer.echo(note, err=as_json)
    return ids


def _print_records(records: list[AuditRecord], zone: tzinfo, as_json: bool) -> None:
    if as_json:
        for record in records:
            typer.echo(json.dumps(_to_json(record), ensure_ascii=False))
        return
    if not records:
        typer.echo(_("empty"))
        return

    header = (
        _("column.time", zone=zone),
        _("column.topic"),
        "sha256",
        _("column.size"),
    )
    rows = [
        (
            _local_time(record, zone),
            record.topic,
            record.sha256[:HASH_PREFIX_LENGTH],
            str(len(record.payload_bytes)),
        )
        for record in records
    ]
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(3)]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        typer.echo("  ".join([*cells, row[3].rjust(len(header[3]))]))


def _verify(log: AuditLog, zone: tzinfo) -> None:
    count = log.count()
    mismatched = list(log.mismatched())
    for record in mismatched:
        typer.echo(_mismatch_message(record, zone))
    if mismatched:
        typer.echo(_("verify.failed", mismatched=len(mismatched), count=count), err=True)
        raise typer.Exit(EXIT_MISMATCH)
    typer.echo(_("verify.ok", count=count))


def _mismatch_message(record: AuditRecord, zone: tzinfo) -> str:
    time = _local_time(record, zone)
    if record.not_text:
        columns = ", ".join(f"{column}: {kind}" for column, kind in record.not_text.items())
        return _("verify.not_text", id=record.id, time=time, topic=record.topic, columns=columns)
    return _("verify.mismatch", id=record.id, time=time, topic=record.topic, sha256=record.sha256)


def _to_json(record: AuditRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "published_at": record.published_at.isoformat(),
        "topic": record.topic,
        "resource": record.resource,
        "kind": record.kind,
        "sha256": record.sha256,
        "payload": record.payload,
    }


def _local_time(record: AuditRecord, zone: tzinfo) -> str:
    return record.published_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _fail(message: str, cause: BaseException | None = None) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(EXIT_USAGE_ERROR) from cause
