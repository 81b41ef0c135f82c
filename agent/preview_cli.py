"""``kooperant agent preview``: show what the agent would publish now, without publishing it."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.config import AgentConfig, load_config
from agent.errors import ConfigError
from agent.preview import DEFAULT_WAIT_SECONDS, Preview, PreviewEntry, preview_offers
from kooperant.i18n import Catalog
from kooperant.protocol.offer import OPTIONAL_FIELDS

_ = Catalog(
    {
        "help": {
            "pl": "Pokaż tematy i treść ofert, które agent opublikowałby teraz, oraz regułę "
            "polityki dla każdego zasobu; nie łączy się z brokerem i niczego nie wysyła.",
            "en": "Show the topics and payloads the agent would publish now and the policy rule "
            "behind each resource; connects to no broker and sends nothing.",
        },
        "config.help": {
            "pl": "Plik konfiguracji agenta (YAML), np. config/agent.example.yaml.",
            "en": "The agent's config file (YAML), e.g. config/agent.example.yaml.",
        },
        "wait.help": {
            "pl": "Maksymalny czas oczekiwania na dane adapterów, w sekundach.",
            "en": "Maximum time to wait for the adapters' data, in seconds.",
        },
        "json.help": {
            "pl": "Wypisz jeden dokument JSON zamiast tekstu.",
            "en": "Print one JSON document instead of text.",
        },
        "wait.invalid": {
            "pl": "Błędna wartość --wait: {value}. Podaj liczbę sekund od 0 wzwyż, np. --wait 5.",
            "en": "Invalid value for --wait: {value}. Give a number of seconds from 0 up, "
            "e.g. --wait 5.",
        },
        "shared": {
            "pl": "✔ {resource} → {topic} (reguła {number}{location}; pola: {fields}; "
            "usunięte: {removed})",
            "en": "✔ {resource} → {topic} (rule {number}{location}; fields: {fields}; "
            "removed: {removed})",
        },
        "none": {"pl": "brak", "en": "none"},
        "withheld.resource": {
            "pl": "✘ {resource}: wstrzymany, żadna reguła polityki nie wymienia tego zasobu",
            "en": "✘ {resource}: withheld, no rule names this resource",
        },
        "withheld.kind": {
            "pl": "✘ oferty rodzaju {kind} wstrzymane: {reason}",
            "en": "✘ {kind} offers withheld: {reason}",
        },
        "nothing": {
            "pl": "Brak zasobów: adaptery niczego nie zgłosiły, a konfiguracja nie opisuje "
            "żadnego zasobu w sekcji resources.",
            "en": "No resources: the adapters reported nothing and the config describes no "
            "resource in its resources section.",
        },
        "not_ready": {
            "pl": "Uwaga: nie wszystkie adaptery miały dane po {seconds} s, więc podgląd może być "
            "niepełny. Zwiększ --wait albo sprawdź źródła danych.",
            "en": "Note: not every adapter had data after {seconds} s, so the preview may be "
            "incomplete. Increase --wait or check the data sources.",
        },
    }
)

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

    result = asyncio.run(preview_offers(loaded, wait_seconds=wait))

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
    rule = entry.decision.rule
    if rule is None or entry.payload is None:
        return [_("withheld.resource", resource=entry.resource)]

    location = f", {rule.location}" if rule.source is not None else ""
    removed = ", ".join(entry.decision.removed) or _("none")
    heading = _(
        "shared",
        resource=entry.resource,
        topic=entry.topic,
        number=rule.number,
        location=location,
        fields=", ".join(_ordered(rule.fields)) or _("none"),
        removed=removed,
    )
    payload = json.dumps(json.loads(entry.payload), ensure_ascii=False, indent=2)
    return [heading, payload]


def _entry_document(entry: PreviewEntry) -> dict[str, Any]:
    decision = entry.decision
    rule = None
    if decision.rule is not None:
        rule = {
            "number": decision.rule.number,
            "file": None if decision.rule.source is None else str(decision.rule.source),
            "line": decision.rule.line,
            "fields": _ordered(decision.rule.fields),
        }
    return {
        "resource": entry.resource,
        "kind": entry.kind.value,
        "shared": decision.shared,
        "topic": entry.topic,
        "reason": decision.reason,
        "rule": rule,
        "removed": list(decision.removed),
        "payload": None if entry.payload is None else json.loads(entry.payload),
    }


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
