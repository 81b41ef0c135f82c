"""``kooperant agent preview``: show what the agent would publish now, without publishing it."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.config import AgentConfig, load_config
from agent.errors import ConfigError
from agent.export_progress import export_progress_display
from agent.policy import Decision, Note, Rule, WithheldReason
from agent.preview import DEFAULT_WAIT_SECONDS, Preview, PreviewEntry, preview_offers
from agent.reasons import plural_text
from kooperant.i18n import Catalog, current_language
from kooperant.protocol.offer import OPTIONAL_FIELDS

_ = Catalog.for_module(__name__)

HELP = _("help")


def preview(
    config: Annotated[Path, typer.Option("--config", "-c", help=_("config.help"))],
    wait: Annotated[float, typer.Option("--wait", help=_("wait.help"))] = DEFAULT_WAIT_SECONDS,
    json_output: Annotated[bool, typer.Option("--json", help=_("json.help"))] = False,
) -> None:
    loaded = _load_config_or_exit(config)
    if not math.isfinite(wait) or wait < 0:
        typer.echo(_("wait.invalid", value=wait), err=True)
        raise typer.Exit(_exit_config_error())

    if loaded.overrides:
        # On stderr, so that the preview on stdout stays the same with and without --json.
        typer.echo(_("overrides", names=", ".join(loaded.overrides)), err=True)
    with export_progress_display(enabled=not json_output) as read_progress:
        result = asyncio.run(preview_offers(loaded, wait_seconds=wait, read_progress=read_progress))

    if json_output:
        document = preview_document(loaded, result)
        typer.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        typer.echo(format_preview(result, wait))


def format_preview(result: Preview, wait_seconds: float) -> str:
    """Return the human-readable preview in the current language."""
    lines: list[str] = []
    if not result.ready:
        lines.append(_("not_ready", seconds=f"{wait_seconds:g}"))
    for entry in result.entries:
        lines.extend(_entry_lines(entry))
    for kind, reason in result.withheld_kinds.items():
        lines.append(_("withheld.kind", kind=kind.value, reason=reason))
    if not result.entries and not result.withheld_kinds:
        lines.append(_("nothing"))
    return "\n".join(lines)


def format_note(note: Note) -> str:
    """Return one transformation note in the current language."""
    values = dict(note.values)
    for key in ("rounding", "grid"):
        if key in values:
            values[key] = _(f"unit.{values[key]}")
    for key in ("days", "minutes"):
        if key in values:
            forms = _(f"noun.{key}")
            values[f"{key}_counted"] = plural_text(int(values[key]), forms, current_language())
    return _(f"note.{note.code}", None, **values)


def preview_document(config: AgentConfig, result: Preview) -> dict[str, Any]:
    """Return the preview as one JSON-ready document, each payload parsed into JSON."""
    return {
        "cluster": config.cluster,
        "member": config.member,
        "ready": result.ready,
        "resources": [_entry_document(entry) for entry in result.entries],
        "withheld_kinds": [
            {"kind": kind.value, "reason": reason} for kind, reason in result.withheld_kinds.items()
        ],
    }


def _entry_lines(entry: PreviewEntry) -> list[str]:
    decision = entry.decision
    rule = decision.rule
    if entry.withdrawal is not None:
        moment = entry.withdrawal.withdrawn_at.astimezone().strftime("%Y-%m-%d %H:%M")
        return [_("withheld.withdrawn", resource=entry.resource, date=moment)]
    if rule is None:
        return [_("withheld.resource", resource=entry.resource)]
    if decision.withheld is WithheldReason.EXPIRED or entry.payload is None:
        return [
            _(
                "withheld.expired",
                resource=entry.resource,
                public_id=decision.public_resource,
                date=_expiry_text(rule),
                number=rule.number,
                location=_location(rule),
            )
        ]

    heading = _(
        "shared",
        resource=entry.resource,
        topic=entry.topic,
        number=rule.number,
        location=_location(rule),
        fields=", ".join(_ordered(rule.fields)) or _("none"),
        removed=", ".join(decision.removed) or _("none"),
    )
    notes = [f"  • {format_note(note)}" for note in decision.notes]
    payload = json.dumps(json.loads(entry.payload), ensure_ascii=False, indent=2)
    return [heading, *notes, payload]


def _entry_document(entry: PreviewEntry) -> dict[str, Any]:
    decision = entry.decision
    return {
        "resource": entry.resource,
        "kind": entry.kind.value,
        "shared": entry.payload is not None,
        "public_resource": decision.public_resource,
        "topic": entry.topic,
        "withheld": None if decision.withheld is None else decision.withheld.value,
        "reason": decision.reason,
        "rule": _rule_document(decision),
        "removed": list(decision.removed),
        "transformations": list(decision.transformations),
        "payload": None if entry.payload is None else json.loads(entry.payload),
        "withdrawn": _withdrawal_document(entry),
    }


def _withdrawal_document(entry: PreviewEntry) -> dict[str, Any] | None:
    withdrawal = entry.withdrawal
    if withdrawal is None:
        return None
    return {
        "at": withdrawal.withdrawn_at.isoformat(),
        "delete_history": withdrawal.delete_history,
    }


def _rule_document(decision: Decision) -> dict[str, Any] | None:
    rule = decision.rule
    if rule is None:
        return None
    return {
        "number": rule.number,
        "file": None if rule.source is None else str(rule.source),
        "line": rule.line,
        "fields": _ordered(rule.fields),
        "expires": None if rule.expires is None else rule.expires.isoformat(),
        "requests": rule.accepts_requests,
        "expired_at": None if decision.expired_at is None else decision.expired_at.isoformat(),
    }


def _location(rule: Rule) -> str:
    return f", {rule.location}" if rule.source is not None else ""


def _expiry_text(rule: Rule) -> str:
    expires: date | datetime | None = rule.expires
    return "" if expires is None else expires.isoformat()


def _ordered(fields: frozenset[str]) -> list[str]:
    return [name for name in OPTIONAL_FIELDS if name in fields]


def _load_config_or_exit(path: Path) -> AgentConfig:
    # Imported here because agent.cli imports this module to register the command.
    from agent.cli import _ as run_messages

    try:
        return load_config(path)
    except ConfigError as error:
        typer.echo(run_messages("config.invalid", details=error), err=True)
        raise typer.Exit(_exit_config_error()) from error


def _exit_config_error() -> int:
    from agent.cli import EXIT_CONFIG_ERROR

    return EXIT_CONFIG_ERROR
