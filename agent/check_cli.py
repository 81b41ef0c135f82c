"""``kooperant agent check``: validate the config and policy, then lint the policy.

Exit status: 0 when the policy is valid and has no warnings, 1 when it has warnings or an adapter
withholds a whole kind of offers, 2 when the config or the policy is invalid (or an option is).
Nothing connects to the broker.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from agent.broker_session import check_broker_tls
from agent.check import CheckResult, check_policy
from agent.config import AgentConfig, load_config
from agent.errors import ConfigError, Problem
from agent.policy.lint import PolicyWarning
from agent.preview import DEFAULT_WAIT_SECONDS
from kooperant.i18n import Catalog

EXIT_WARNINGS = 1

_ = Catalog(
    {
        "help": {
            "pl": "Sprawdź konfigurację agenta i politykę udostępniania: błędy z plikiem i "
            "wierszem, potem ostrzeżenia o regułach, które zapewne nie działają tak, jak "
            "zamierzono, oraz (bez --offline) o rodzajach ofert wstrzymanych przez adaptery. "
            "Kod wyjścia: 0 bez uwag, 1 ostrzeżenia, 2 błędy. Nie łączy się z brokerem.",
            "en": "Check the agent's config and sharing policy: errors with file and line, then "
            "warnings about rules that probably do not work as meant and (without --offline) "
            "about kinds of offers the adapters withhold. Exit status: 0 clean, 1 warnings, "
            "2 errors. Connects to no broker.",
        },
        "config.help": {
            "pl": "Plik konfiguracji agenta (YAML), np. config/agent.example.yaml.",
            "en": "The agent's config file (YAML), e.g. config/agent.example.yaml.",
        },
        "wait.help": {
            "pl": "Maksymalny czas oczekiwania na dane adapterów, w sekundach.",
            "en": "Maximum time to wait for the adapters' data, in seconds.",
        },
        "offline.help": {
            "pl": "Nie uruchamiaj adapterów; sprawdź politykę tylko wobec zasobów z sekcji "
            "resources konfiguracji.",
            "en": "Start no adapters; check the policy only against the resources in the "
            "config's resources section.",
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
        "invalid": {
            "pl": "Błędna konfiguracja lub polityka (plik, wiersz, klucz: problem):\n{details}\n"
            "Popraw wskazane miejsca i uruchom sprawdzenie ponownie.",
            "en": "Invalid configuration or policy (file, line, key: problem):\n{details}\n"
            "Correct the places listed and run the check again.",
        },
        "not_ready": {
            "pl": "Uwaga: nie wszystkie adaptery miały dane po {seconds} s, więc lista zasobów "
            "może być niepełna. Zwiększ --wait albo sprawdź źródła danych.",
            "en": "Note: not every adapter had data after {seconds} s, so the list of resources "
            "may be incomplete. Increase --wait or check the data sources.",
        },
        "source.failed": {
            "pl": "⚠ adapter {adapter}, źródło {source}: {detail}",
            "en": "⚠ adapter {adapter}, source {source}: {detail}",
        },
        "conflict.kinds": {
            "pl": "⚠ zasób {resource} zgłaszają adaptery {adapters} jako różne rodzaje ({kinds}); "
            "nadaj w ustawieniach jednego z nich inny identyfikator (items, warehouses, machines "
            "lub teams).",
            "en": "⚠ resource {resource} is reported by the adapters {adapters} as different kinds "
            "({kinds}); give one of them another id in its settings (items, warehouses, machines "
            "or teams).",
        },
        "conflict.amounts": {
            "pl": "⚠ zasób {resource} zgłaszają adaptery {adapters}, każdy z własnymi ilościami "
            "rodzaju {kinds}, które zostałyby zmieszane w jednej ofercie; nadaj w ustawieniach "
            "jednego z nich inny identyfikator (items, warehouses, machines lub teams).",
            "en": "⚠ resource {resource} is reported by the adapters {adapters}, each with its own "
            "{kinds} amounts, which would be mixed in one offer; give one of them another id in "
            "its settings (items, warehouses, machines or teams).",
        },
        "source.stale": {
            "pl": "⚠ adapter {adapter}, źródło {source}: dane są nieaktualne (starsze niż "
            "stale_after_hours); agent publikuje je dalej, dopóki nie przeczyta nowszego eksportu.",
            "en": "⚠ adapter {adapter}, source {source}: the data is stale (older than "
            "stale_after_hours); the agent keeps publishing it until it reads a newer export.",
        },
        "withheld.kind": {
            "pl": "⚠ oferty rodzaju {kind} wstrzymane: {reason}. Agent nie opublikuje żadnej "
            "oferty tego rodzaju, dopóki adapter nie ma danych; sprawdź źródło danych. Znane są "
            "tylko zasoby tego rodzaju opisane w konfiguracji.",
            "en": "⚠ {kind} offers withheld: {reason}. The agent publishes no offer of this kind "
            "until the adapter has its data; check the data source. Only resources of this kind "
            "declared in the config are known.",
        },
        "warning": {"pl": "⚠ {place}", "en": "⚠ {place}"},
        "summary.clean": {
            "pl": "✔ Polityka {policy} jest poprawna i bez ostrzeżeń; sprawdzone zasoby "
            "({count}): {resources}.",
            "en": "✔ Policy {policy} is valid and has no warnings; resources checked "
            "({count}): {resources}.",
        },
        "summary.warnings": {
            "pl": "Polityka {policy} jest poprawna, ale sprawdzenie zgłosiło ostrzeżenia: "
            "{warnings}; sprawdzone zasoby ({count}): {resources}.",
            "en": "Policy {policy} is valid, but the check found warnings: {warnings}; "
            "resources checked ({count}): {resources}.",
        },
        "none": {"pl": "brak", "en": "none"},
        # One message per warning code of agent.policy.lint; the values are the warning's.
        "lint.no_match": {
            "pl": "reguła {number} nie pasuje do żadnego znanego zasobu (znane: {known}); "
            "sprawdź jej selektory",
            "en": "rule {number} matches no known resource (known: {known}); check its selectors",
        },
        "lint.shadowed": {
            "pl": "reguła {number} nigdy nie obejmie: {resources}, bo wcześniej pasuje reguła "
            "{first} ({first_location})",
            "en": "rule {number} never applies to {resources}, because rule {first} "
            "({first_location}) matches first",
        },
        "lint.shadowed_until": {
            "pl": "reguła {number} obejmie {resources} dopiero po wygaśnięciu reguły {first} "
            "({first_location}) o {expires_at}",
            "en": "rule {number} applies to {resources} only after rule {first} "
            "({first_location}) expires at {expires_at}",
        },
        "lint.expired": {
            "pl": "reguła {number} wygasła {expires_at} i jest pomijana; usuń ją albo zmień "
            "expires",
            "en": "rule {number} expired at {expires_at} and is skipped; remove it or change "
            "expires",
        },
        "lint.horizon": {
            "pl": "horizon_days {days} przekracza horizon_days agenta ({agent_days}), więc "
            "niczego nie ogranicza; zmniejsz je albo usuń",
            "en": "horizon_days {days} is beyond the agent's horizon_days {agent_days}, so it "
            "limits nothing; lower it or remove it",
        },
        "lint.band_unlisted": {
            "pl": "bands.{quantity} nie działa, bo pola {field} nie ma w fields; dodaj {field} "
            "do fields albo usuń przedział",
            "en": "bands.{quantity} has no effect because {field} is not in fields; add {field} "
            "to fields or remove the band",
        },
        "lint.band_intervals": {
            "pl": "free_hours jest podane jako przedział, ale free_intervals jest udostępniane "
            "i z niego da się zsumować dokładne godziny; usuń free_intervals albo przedział",
            "en": "free_hours is shown as a band, but free_intervals is shared and its exact "
            "hours can be summed; remove free_intervals or the band",
        },
        "lint.name_unlisted": {
            "pl": "nazwa „{name}” nie zostanie wysłana, bo pola name nie ma w fields; dodaj "
            "name do fields albo usuń nazwę",
            "en": "name “{name}” never leaves because 'name' is not in fields; add name to "
            "fields or remove the name",
        },
        "lint.no_fields": {
            "pl": "reguła {number} nie wymienia żadnych pól, ale jej oferty i tak wychodzą z "
            "kopertą (identyfikator publiczny, rodzaj, generated_at), która zdradza, że zasoby "
            "istnieją; wymień pola do udostępnienia albo usuń regułę, żeby niczego nie "
            "publikować",
            "en": "rule {number} lists no fields, but its offers still leave with the envelope "
            "(public id, kind, generated_at), which shows that the resources exist; list the "
            "fields to share, or remove the rule to publish nothing",
        },
        "lint.public_id": {
            "pl": "zasoby {resources} byłyby publikowane jako „{public_id}” i nadpisywałyby "
            "sobie oferty; nadaj im różne identyfikatory publiczne",
            "en": "resources {resources} would all be published as “{public_id}” and overwrite "
            "each other's offer; give them different public ids",
        },
    }
)

HELP = _("help")


def check(
    config: Annotated[Path, typer.Option("--config", "-c", help=_("config.help"))],
    wait: Annotated[float, typer.Option("--wait", help=_("wait.help"))] = DEFAULT_WAIT_SECONDS,
    offline: Annotated[bool, typer.Option("--offline", help=_("offline.help"))] = False,
    json_output: Annotated[bool, typer.Option("--json", help=_("json.help"))] = False,
) -> None:
    if not math.isfinite(wait) or wait < 0:
        typer.echo(_("wait.invalid", value=wait), err=True)
        raise typer.Exit(_exit_errors())
    try:
        loaded = load_config(config)
        check_broker_tls(loaded)
    except ConfigError as error:
        if json_output:
            typer.echo(json.dumps(error_document(error), ensure_ascii=False, indent=2))
        else:
            typer.echo(_("invalid", details=error), err=True)
        raise typer.Exit(_exit_errors()) from error

    result = asyncio.run(check_policy(loaded, offline=offline, wait_seconds=wait))

    if json_output:
        typer.echo(json.dumps(check_document(loaded, result), ensure_ascii=False, indent=2))
    else:
        typer.echo(format_check(loaded, result, wait))
    if not result.clean:
        raise typer.Exit(EXIT_WARNINGS)


def format_check(config: AgentConfig, result: CheckResult, wait_seconds: float) -> str:
    """Return the check's report in the current language."""
    lines: list[str] = []
    if not result.ready:
        lines.append(_("not_ready", seconds=f"{wait_seconds:g}"))
    for kind, reason in result.withheld_kinds.items():
        lines.append(_("withheld.kind", kind=kind.value, reason=reason))
    for problem in result.source_problems:
        if problem.detail is not None:
            lines.append(
                _(
                    "source.failed",
                    adapter=problem.adapter,
                    source=problem.source,
                    detail=problem.detail,
                )
            )
        if problem.stale:
            lines.append(_("source.stale", adapter=problem.adapter, source=problem.source))
    for conflict in result.conflicts:
        key = "conflict.kinds" if len(conflict.kinds) > 1 else "conflict.amounts"
        adapters = ", ".join(conflict.adapters)
        kinds = ", ".join(conflict.kinds)
        lines.append(_(key, resource=conflict.resource, adapters=adapters, kinds=kinds))
    for warning in result.warnings:
        place = Problem(warning.line, warning.key, localized_reason(warning))
        lines.append(_("warning", place=place.format(config.policy_path)))

    policy = config.policy_path
    count = len(result.resources)
    resources = ", ".join(result.resources) or _("none")
    if result.clean:
        lines.append(_("summary.clean", policy=policy, count=count, resources=resources))
    else:
        warnings = len(result.warnings) + len(result.withheld_kinds) + len(result.source_problems)
        summary = _(
            "summary.warnings", policy=policy, count=count, resources=resources, warnings=warnings
        )
        lines.append(summary)
    return "\n".join(lines)


def localized_reason(problem: Problem) -> str:
    """Return the reason of a lint warning in the current language."""
    if isinstance(problem, PolicyWarning) and problem.code:
        return _(f"lint.{problem.code}", None, **problem.values)
    return problem.reason


def check_document(config: AgentConfig, result: CheckResult) -> dict[str, Any]:
    """Return the check's result as one JSON-ready document, messages in English."""
    return {
        "config": str(config.source),
        "policy": str(config.policy_path),
        "valid": True,
        "clean": result.clean,
        "ready": result.ready,
        "resources": {resource: kind.value for resource, kind in result.resources.items()},
        "withheld_kinds": [
            {"kind": kind.value, "reason": reason} for kind, reason in result.withheld_kinds.items()
        ],
        "source_problems": [
            {
                "adapter": problem.adapter,
                "source": problem.source,
                "detail": problem.detail,
                "stale": problem.stale,
            }
            for problem in result.source_problems
        ],
        "conflicts": [
            {
                "resource": conflict.resource,
                "adapters": list(conflict.adapters),
                "kinds": list(conflict.kinds),
                "message": conflict.message(),
            }
            for conflict in result.conflicts
        ],
        "errors": [],
        "warnings": [_problem_document(config.policy_path, item) for item in result.warnings],
    }


def error_document(error: ConfigError) -> dict[str, Any]:
    """Return an invalid config or policy as the JSON document of the check, in English."""
    return {
        "valid": False,
        "errors": [_problem_document(error.path, problem) for problem in error.problems],
        "warnings": [],
    }


def _problem_document(path: Path, problem: Problem) -> dict[str, Any]:
    document: dict[str, Any] = {
        "file": str(path),
        "line": problem.line,
        "key": problem.key,
        "message": problem.reason,
    }
    if isinstance(problem, PolicyWarning):
        document["code"] = problem.code
    return document


def _exit_errors() -> int:
    # Imported here because agent.cli imports this module to register the command.
    from agent.cli import EXIT_CONFIG_ERROR

    return EXIT_CONFIG_ERROR
